package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/waggle-bpf/waggle/apps/firewall"
)

func (e *env) firewallCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "firewall",
		Short: "The XDP firewall and DDoS dropper: attach it, watch it, replay captures and explain its verdicts",
		Long: `The firewall is one clang-built XDP program (apps/firewall/bpf/firewall.c),
configured by a YAML file of rules (allow and deny lists of CIDRs, inline or
from CIDR and ipset save files) and limits (per-source packets/s and bytes/s,
SYN rate, UDP amplification sources, an under-attack mark). apply attaches
it to an interface (or reloads it in place), status reads its per-rule
counters and top talkers, exporter serves them to Prometheus, capture
writes its samples (drops, or every verdict with options.sample_all) to a
pcap. replay and explain run it in user space, under waggle, over a
capture, with the capture's timestamps as the program's clock: the same
verdicts the kernel gives through BPF_PROG_TEST_RUN, and, over a capture
--all of every packet, the ones it gave attached.`,
	}
	cmd.AddCommand(e.firewallApplyCmd(), e.firewallStatusCmd(), e.firewallExporterCmd(), e.firewallCaptureCmd(), e.firewallReplayCmd(), e.firewallExplainCmd())
	return cmd
}

// openReplay compiles the configuration, loads the firewall into waggle
// and opens the capture.
func openReplay(config, pcap string) (*firewall.Replayer, *os.File, int64, error) {
	cfg, err := firewall.LoadConfig(config)
	if err != nil {
		return nil, nil, 0, err
	}
	comp, err := firewall.Compile(cfg)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%s: %w", config, err)
	}
	r, err := firewall.NewReplayer(comp, nil)
	if err != nil {
		return nil, nil, 0, err
	}
	f, err := os.Open(pcap)
	if err != nil {
		r.Close()
		return nil, nil, 0, err
	}
	size := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return r, f, size, nil
}

func (e *env) firewallReplayCmd() *cobra.Command {
	var config, out string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "replay --config FILE PCAP",
		Short: "Run the firewall over a capture in user space: verdict totals and per-rule counters",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, f, size, err := openReplay(config, args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			defer f.Close()
			var each func(int, firewall.Packet, firewall.Verdict) error
			var flush func() error
			if out != "" {
				of, err := os.Create(out)
				if err != nil {
					return err
				}
				defer of.Close()
				write, fl, err := firewall.NewCaptureWriter(of)
				if err != nil {
					return fmt.Errorf("--out %s: %w", out, err)
				}
				flush = fl
				each = func(_ int, p firewall.Packet, v firewall.Verdict) error {
					if v.Action != firewall.XDPPass {
						return nil
					}
					if err := write(p, len(p.Data)); err != nil {
						return fmt.Errorf("--out %s: %w", out, err)
					}
					return nil
				}
			}
			rep, err := r.ReplayCapture(f, size, each)
			if flush != nil {
				if ferr := flush(); ferr != nil && err == nil {
					err = fmt.Errorf("--out %s: %w", out, ferr)
				}
			}
			if rep == nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if jerr := enc.Encode(rep); jerr != nil {
					return jerr
				}
			} else {
				e.printFirewallReport(args[0], rep)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&config, "config", "c", "", "the firewall's YAML configuration")
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the packets the firewall passes to this pcap file")
	cmd.Flags().BoolVarP(&asJSON, "json", "j", false, "print JSON")
	cmd.MarkFlagRequired("config")
	return cmd
}

func (e *env) printFirewallReport(name string, rep *firewall.Report) {
	fmt.Fprintf(e.stdout, "%s: %d packets in %.3fs, %.0f packets/s\n", name, rep.Packets, rep.Seconds, rep.PacketsPerSec)
	for _, a := range []string{"XDP_PASS", "XDP_DROP", "XDP_ABORTED", "XDP_TX", "XDP_REDIRECT"} {
		if n, ok := rep.Verdicts[a]; ok {
			fmt.Fprintf(e.stdout, "  %-12s %d\n", a, n)
		}
	}
	fmt.Fprintf(e.stdout, "  %-5s %-24s %-7s %10s %12s\n", "id", "rule", "action", "packets", "bytes")
	for _, r := range rep.Rules {
		fmt.Fprintf(e.stdout, "  %-5d %-24s %-7s %10d %12d\n", r.ID, r.Name, r.Action, r.Packets, r.Bytes)
	}
	fmt.Fprintf(e.stdout, "  SYN protection: %s\n", rep.SYNProtection)
}

// explained is one line of explain --json.
type explained struct {
	Packet int    `json:"packet"`
	Time   string `json:"time"`
	Length int    `json:"length"`
	Action string `json:"action"`
	RuleID uint32 `json:"rule_id"`
	Rule   string `json:"rule"`
}

func (e *env) firewallExplainCmd() *cobra.Command {
	var config string
	var asJSON, dropsOnly bool
	cmd := &cobra.Command{
		Use:   "explain --config FILE PCAP",
		Short: "For every packet of a capture, the firewall's verdict and the rule that decided it",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, f, size, err := openReplay(config, args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			defer f.Close()
			comp := r.Compiled()
			enc := json.NewEncoder(e.stdout)
			_, err = r.ReplayCapture(f, size, func(n int, p firewall.Packet, v firewall.Verdict) error {
				if dropsOnly && v.Action == firewall.XDPPass {
					return nil
				}
				x := explained{Packet: n, Time: p.Time.UTC().Format("2006-01-02T15:04:05.000000000Z"), Length: len(p.Data),
					Action: firewall.ActionName(v.Action), RuleID: v.Rule, Rule: comp.RuleName(v.Rule)}
				if asJSON {
					return enc.Encode(x)
				}
				_, err := fmt.Fprintf(e.stdout, "%d\t%s\t%s\t%s (%d)\n", x.Packet, x.Time, x.Action, x.Rule, x.RuleID)
				return err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&config, "config", "c", "", "the firewall's YAML configuration")
	cmd.Flags().BoolVarP(&asJSON, "json", "j", false, "print one JSON object a packet")
	cmd.Flags().BoolVar(&dropsOnly, "drops", false, "only the packets the firewall drops")
	cmd.MarkFlagRequired("config")
	return cmd
}
