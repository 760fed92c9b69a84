package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"time"

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
				return nil
			}
			fmt.Fprintf(e.stdout, "firewall attached to %s (XDP %s), pinned under %s\n", iface, m, pin)
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

func (e *env) firewallStatusCmd() *cobra.Command {
	var config, pin string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--config FILE]",
		Short: "Per-rule counters of an applied firewall",
		Long: `Read the per-rule counters (per CPU, summed) of the firewall pinned under
--pin. With --config (the file applied), the configuration's rules are named;
without it only the fixed rules are.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			comp := &firewall.Compiled{}
			if config != "" {
				cfg, err := firewall.LoadConfig(config)
				if err != nil {
					return err
				}
				if comp, err = firewall.Compile(cfg); err != nil {
					return fmt.Errorf("%s: %w", config, err)
				}
			} else {
				var err error
				if comp, err = firewall.Compile(&firewall.Config{}); err != nil {
					return err
				}
			}
			counters, err := firewall.PinnedCounters(pin)
			if err != nil {
				return err
			}
			var rows []firewall.RuleCount
			for id, c := range counters {
				info, ok := comp.Rule(id)
				if !ok {
					info = firewall.RuleInfo{ID: id, Name: comp.RuleName(id)}
				}
				rows = append(rows, firewall.RuleCount{RuleInfo: info, Counter: c})
			}
			slices.SortFunc(rows, func(a, b firewall.RuleCount) int { return int(a.ID) - int(b.ID) })
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			fmt.Fprintf(e.stdout, "%-5s %-24s %-7s %12s %14s\n", "id", "rule", "action", "packets", "bytes")
			for _, r := range rows {
				fmt.Fprintf(e.stdout, "%-5d %-24s %-7s %12d %14d\n", r.ID, r.Name, r.Action, r.Packets, r.Bytes)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&config, "config", "c", "", "the applied configuration, to name its rules")
	cmd.Flags().StringVar(&pin, "pin", defaultFirewallPin, "the bpffs directory the firewall is pinned under")
	cmd.Flags().BoolVarP(&asJSON, "json", "j", false, "print JSON")
	return cmd
}

func (e *env) firewallCaptureCmd() *cobra.Command {
	var dropped, pin string
	var duration time.Duration
	cmd := &cobra.Command{
		Use:   "capture --dropped FILE",
		Short: "Write the samples of dropped packets of an applied firewall to a pcap",
		Long: `Read the ring buffer of drop samples of the firewall pinned under --pin and
write each sampled packet (its first 128 bytes, with its length on the wire)
to a pcap file, until Ctrl-C or --duration. The configuration's
options.sample_every says which drops are sampled (0: none). The rule that
dropped each one goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			f, err := os.Create(dropped)
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
			n := 0
			err = firewall.CaptureDropped(ctx, pin, func(s firewall.Sample) error {
				n++
				fmt.Fprintf(e.stderr, "%d: rule %d, %d bytes\n", n, s.Rule, s.Length)
				return write(firewall.Packet{Data: s.Data, Time: time.Now()}, s.Length)
			})
			if ferr := flush(); err == nil {
				err = ferr
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%d dropped packets written to %s\n", n, dropped)
			return nil
		},
	}
	cmd.Flags().StringVar(&dropped, "dropped", "", "the pcap file to write")
	cmd.Flags().StringVar(&pin, "pin", defaultFirewallPin, "the bpffs directory the firewall is pinned under")
	cmd.Flags().DurationVar(&duration, "duration", 0, "stop after this long (0: at Ctrl-C)")
	cmd.MarkFlagRequired("dropped")
	return cmd
}
