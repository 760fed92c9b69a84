package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/waggle-bpf/waggle/apps/firewall"
	"github.com/waggle-bpf/waggle/kernel"
)

// defaultFirewallPin is where apply pins the firewall unless told.
const defaultFirewallPin = "/sys/fs/bpf/waggle-firewall"

func (e *env) firewallApplyCmd() *cobra.Command {
	var config, iface, mode, pin string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "apply --config FILE --iface IF",
		Short: "Attach the firewall to an interface's XDP hook, or reload its configuration in place",
		Long: `Compile the configuration, load the firewall into the kernel with its maps
already filled, attach it to the interface's XDP hook and pin the link, the
program and the maps under --pin, so that it stays after the command
(waggle detach DIR removes it). If --pin holds a firewall already, apply
reloads it: the pinned maps change in place, new and changed prefixes first,
then the limits and options, then the removal of prefixes the configuration
no longer has; the program stays attached throughout. If this waggle's
firewall program differs from the attached one, the new one (sharing the
pinned maps) replaces it through the link in one atomic update.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, err := firewall.LoadConfig(config)
			if err != nil {
				return err
			}
			comp, err := firewall.Compile(cfg)
			if err != nil {
				return fmt.Errorf("%s: %w", config, err)
			}
			m, err := kernel.ParseXDPMode(mode)
			if err != nil {
				return fmt.Errorf("--mode: %w", err)
			}
			res, err := firewall.Apply(comp, firewall.ApplyOptions{Interface: iface, Mode: m, PinDir: pin})
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			if res.Reloaded {
				fmt.Fprintf(e.stdout, "reloaded %s: %d prefixes added, %d changed, %d removed\n", pin, res.Added, res.Changed, res.Removed)
				if res.Swapped {
					fmt.Fprintln(e.stdout, "the program was replaced through the link by this version's")
				}
				fmt.Fprintf(e.stdout, "SYN protection: %s\n", res.SYNProtection)
				return nil
			}
			fmt.Fprintf(e.stdout, "firewall attached to %s (XDP %s), pinned under %s\n", iface, m, pin)
			fmt.Fprintf(e.stdout, "SYN protection: %s\n", res.SYNProtection)
			return nil
		},
	}
	cmd.Flags().StringVarP(&config, "config", "c", "", "the firewall's YAML configuration")
	cmd.Flags().StringVar(&iface, "iface", "", "the network interface (needed for a first apply)")
	cmd.Flags().StringVar(&mode, "mode", "auto", "XDP mode: auto, generic or driver")
	cmd.Flags().StringVar(&pin, "pin", defaultFirewallPin, "the bpffs directory the firewall is pinned under")
	cmd.Flags().BoolVarP(&asJSON, "json", "j", false, "print JSON")
	cmd.MarkFlagRequired("config")
	return cmd
}

// namingConfig compiles the applied configuration, to name its rules, or
// an empty one (only the fixed rules named) when config is "".
func namingConfig(config string) (*firewall.Compiled, error) {
	cfg := &firewall.Config{}
	if config != "" {
		var err error
		if cfg, err = firewall.LoadConfig(config); err != nil {
			return nil, err
		}
	}
	comp, err := firewall.Compile(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config, err)
	}
	return comp, nil
}

// openApplied opens the firewall pinned under pin, with the rules of the
// configuration applied (config, "" for the fixed rules only) to name them.
func openApplied(config, pin string) (*firewall.Compiled, *firewall.Pinned, error) {
	comp, err := namingConfig(config)
	if err != nil {
		return nil, nil, err
	}
	p, err := firewall.OpenPinned(pin)
	if err != nil {
		return nil, nil, err
	}
	return comp, p, nil
}

// firewallStatus is status --json.
type firewallStatus struct {
	Rules       []firewall.RuleCount `json:"rules"`
	UnderAttack bool                 `json:"under_attack"`
	// SYNProtection is the SYN protection in force.
	SYNProtection string `json:"syn_protection"`
	// SamplesLost counts the samples the ring buffer had no room for.
	SamplesLost uint64      `json:"samples_lost"`
	TopTalkers  []talkerRow `json:"top_talkers"`
}

// talkerRow is a top talker with its last rule named.
type talkerRow struct {
	firewall.Talker
	RuleName string `json:"rule_name"`
}

func (e *env) firewallStatusCmd() *cobra.Command {
	var config, pin string
	var top int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--config FILE] [--top N]",
		Short: "Per-rule counters and top talkers of an applied firewall",
		Long: `Read the per-rule counters (per CPU, summed) of the firewall pinned under
--pin, whether it is under attack (its limits tightened), and its top
talkers: the --top N source addresses that sent the most packets, with the
rule that decided the last packet of each. The program counts every IP
packet by source in an LRU hash of 16384 addresses: in a flood of more
sources than that, the least recently seen are forgotten. With --config (the
file applied), the configuration's rules are named; without it only the
fixed rules are.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			comp, p, err := openApplied(config, pin)
			if err != nil {
				return err
			}
			defer p.Close()
			counters, err := p.Counters()
			if err != nil {
				return err
			}
			st := firewallStatus{Rules: []firewall.RuleCount{}, TopTalkers: []talkerRow{}}
			for id, c := range counters {
				info, ok := comp.Rule(id)
				if !ok {
					info = firewall.RuleInfo{ID: id, Name: comp.RuleName(id)}
				}
				st.Rules = append(st.Rules, firewall.RuleCount{RuleInfo: info, Counter: c})
			}
			slices.SortFunc(st.Rules, func(a, b firewall.RuleCount) int { return int(a.ID) - int(b.ID) })
			if st.UnderAttack, err = p.UnderAttack(); err != nil {
				return err
			}
			if st.SYNProtection, err = p.SYNProtection(); err != nil {
				return err
			}
			if st.SamplesLost, err = p.SamplesLost(); err != nil {
				return err
			}
			if top > 0 {
				ts, err := p.TopTalkers(top)
				if err != nil {
					return err
				}
				for _, t := range ts {
					st.TopTalkers = append(st.TopTalkers, talkerRow{Talker: t, RuleName: comp.RuleName(t.Rule)})
				}
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			fmt.Fprintf(e.stdout, "%-5s %-24s %-7s %12s %14s\n", "id", "rule", "action", "packets", "bytes")
			for _, r := range st.Rules {
				fmt.Fprintf(e.stdout, "%-5d %-24s %-7s %12d %14d\n", r.ID, r.Name, r.Action, r.Packets, r.Bytes)
			}
			if st.UnderAttack {
				fmt.Fprintln(e.stdout, "under attack: the limits are tightened")
			}
			fmt.Fprintf(e.stdout, "SYN protection: %s\n", st.SYNProtection)
			if st.SamplesLost != 0 {
				fmt.Fprintf(e.stdout, "samples lost: %d (the ring buffer was full: its reader too slow for options.sample_every)\n", st.SamplesLost)
			}
			if top > 0 {
				fmt.Fprintf(e.stdout, "\ntop talkers:\n%-40s %12s %14s  %s\n", "source", "packets", "bytes", "last rule")
				for _, t := range st.TopTalkers {
					fmt.Fprintf(e.stdout, "%-40s %12d %14d  %s\n", t.Addr, t.Packets, t.Bytes, t.RuleName)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&config, "config", "c", "", "the applied configuration, to name its rules")
	cmd.Flags().StringVar(&pin, "pin", defaultFirewallPin, "the bpffs directory the firewall is pinned under")
	cmd.Flags().IntVar(&top, "top", 10, "show the N sources that sent the most packets (0: none)")
	cmd.Flags().BoolVarP(&asJSON, "json", "j", false, "print JSON")
	return cmd
}

func (e *env) firewallExporterCmd() *cobra.Command {
	var config, pin, listen string
	var top int
	cmd := &cobra.Command{
		Use:   "exporter [--listen ADDR] [--config FILE]",
		Short: "Serve an applied firewall's counters, attack state and top talkers as Prometheus metrics",
		Long: `Serve /metrics on --listen (Prometheus's text format) until Ctrl-C. Every
scrape reads the maps of the firewall pinned under --pin: nothing is polled
in between. The metrics:

  waggle_firewall_rule_packets_total{id,rule,verdict}  per-rule counters
  waggle_firewall_rule_bytes_total{id,rule,verdict}
  waggle_firewall_verdict_packets_total{verdict}       pass and drop totals
  waggle_firewall_verdict_bytes_total{verdict}
  waggle_firewall_under_attack                          1 while tightened
  waggle_firewall_samples_lost_total                    samples the ring had no room for
  waggle_firewall_talker_packets{source,rule}          the --top sources
  waggle_firewall_talker_bytes{source,rule}

With --config (the file applied), the configuration's rules are named.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			comp, p, err := openApplied(config, pin)
			if err != nil {
				return err
			}
			defer p.Close()
			reg := prometheus.NewRegistry()
			if err := reg.Register(firewall.NewCollector(p, comp, top)); err != nil {
				return err
			}
			mux := http.NewServeMux()
			mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			go func() {
				<-ctx.Done()
				shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(shut)
			}()
			fmt.Fprintf(e.stderr, "serving http://%s/metrics\n", ln.Addr())
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&config, "config", "c", "", "the applied configuration, to name its rules")
	cmd.Flags().StringVar(&pin, "pin", defaultFirewallPin, "the bpffs directory the firewall is pinned under")
	cmd.Flags().StringVar(&listen, "listen", ":9108", "the address to serve /metrics on")
	cmd.Flags().IntVar(&top, "top", firewall.DefaultTopTalkers, "export the N sources that sent the most packets")
	return cmd
}

func (e *env) firewallCaptureCmd() *cobra.Command {
	var dropped, all, pin string
	var duration time.Duration
	cmd := &cobra.Command{
		Use:   "capture (--dropped FILE | --all FILE)",
		Short: "Write the sampled packets of an applied firewall to a pcap: its drops, or every verdict",
		Long: `Read the ring buffer of samples of the firewall pinned under --pin and
write each sampled packet (its first 128 bytes, with its length on the wire)
to a pcap file, until Ctrl-C or --duration. Each line on stderr gives a
packet's verdict and the rule that decided it.

--dropped writes the dropped packets: one in options.sample_every (0: none).
--all writes every verdict's sample, whatever the action: it needs a
configuration with options.sample_all, which samples one packet in
sample_every, dropped or not; with sample_every 1 that is every packet.

Samples the ring buffer had no room for while the capture ran (the reader
too slow for the sampling rate) are counted and reported at the end; they
are missing from the file.

Timestamps are the firewall's own clock when it decided each packet
(bpf_ktime_get_ns, CLOCK_MONOTONIC), in nanoseconds, shifted by a whole
number of seconds to read as the wall clock (to within half a second). The
whole second keeps the one-second attack windows where the kernel had them,
and the rate limits compare only differences of times: so replay and
explain over an --all capture of every packet (sample_every 1) decide the
rate limits as the kernel did, for the packets of at most 128 bytes (the
longer ones are cut, and a cut packet replays as malformed).`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if (dropped == "") == (all == "") {
				return errors.New("capture: give --dropped FILE or --all FILE")
			}
			out, capture, what := dropped, firewall.CaptureDropped, "dropped"
			if all != "" {
				out, capture, what = all, firewall.CaptureAll, "sampled"
			}
			shift, err := firewall.WallClockShift()
			if err != nil {
				return err
			}
			f, err := os.Create(out)
			if err != nil {
				return err
			}
			defer f.Close()
			write, flush, err := firewall.NewCaptureWriter(f)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			lost := func() uint64 { return 0 }
			if p, perr := firewall.OpenPinned(pin); perr == nil {
				defer p.Close()
				lost = func() uint64 {
					n, _ := p.SamplesLost()
					return n
				}
			}
			lost0 := lost()
			n := 0
			err = capture(ctx, pin, func(s firewall.Sample) error {
				n++
				fmt.Fprintf(e.stderr, "%d: %s by rule %d, %d bytes\n", n, firewall.ActionName(s.Action), s.Rule, s.Length)
				return write(firewall.Packet{Data: s.Data, Time: s.Timestamp(shift)}, s.Length)
			})
			if ferr := flush(); err == nil {
				err = ferr
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%d %s packets written to %s\n", n, what, out)
			if l := lost() - lost0; l != 0 {
				fmt.Fprintf(e.stdout, "%d samples lost: the ring buffer was full (raise options.sample_every, or read faster)\n", l)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dropped, "dropped", "", "write the sampled drops to this pcap file")
	cmd.Flags().StringVar(&all, "all", "", "write every sampled packet (options.sample_all) to this pcap file")
	cmd.Flags().StringVar(&pin, "pin", defaultFirewallPin, "the bpffs directory the firewall is pinned under")
	cmd.Flags().DurationVar(&duration, "duration", 0, "stop after this long (0: at Ctrl-C)")
	cmd.MarkFlagsMutuallyExclusive("dropped", "all")
	return cmd
}
