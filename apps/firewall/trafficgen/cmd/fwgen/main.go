// Command fwgen writes a labelled attack capture for the firewall's tests:
// OUT.pcap, its labels as JSON lines (OUT.labels.jsonl) and, with -hosts,
// the addresses it chose (JSON), so a configuration can name them.
//
//	go run ./apps/firewall/trafficgen/cmd/fwgen [flags] OUT.pcap
//
// Rates are per second; 0 means the default (trafficgen.DefaultScenario)
// and -1 turns a class off. -preset NAME takes a named scenario instead
// (trafficgen.Preset); apps/firewall/testdata is -preset testdata.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"

	"github.com/waggle-bpf/waggle/apps/firewall/trafficgen"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fwgen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	var s trafficgen.Scenario
	fs := flag.NewFlagSet("fwgen", flag.ContinueOnError)
	fs.Uint64Var(&s.Seed, "seed", 1, "random seed")
	fs.DurationVar(&s.Duration, "duration", 0, "length of the capture (default 10s)")
	fs.DurationVar(&s.AttackStart, "attack-start", 0, "when the attacks start, from the capture's start")
	fs.DurationVar(&s.AttackEnd, "attack-end", 0, "when the attacks end (0: the end)")
	v4 := fs.String("victim4", "", "the victim's IPv4 address (default 203.0.113.10)")
	v6 := fs.String("victim6", "", "the victim's IPv6 address (default 2001:db8:ffff::10)")
	fs.IntVar(&s.Clients, "clients", 0, "legitimate clients (IPv4, and as many IPv6)")
	fs.Float64Var(&s.TCPFlows, "tcp", 0, "TCP connections to 22, 80, 8080 a second")
	fs.Float64Var(&s.HTTPSFlows, "https", 0, "TLS connections to 443 a second")
	fs.Float64Var(&s.IPv6Flows, "ipv6", 0, "TLS connections to 443 over IPv6 a second")
	fs.Float64Var(&s.DNSRate, "dns", 0, "the victim's DNS queries a second")
	fs.Float64Var(&s.NTPRate, "ntp", 0, "the victim's NTP polls a second")
	fs.Float64Var(&s.SYNFlood4, "synflood4", 0, "spoofed IPv4 SYNs a second")
	fs.Float64Var(&s.SYNFlood6, "synflood6", 0, "spoofed IPv6 SYNs a second")
	fs.Float64Var(&s.Amplification, "amp", 0, "amplified UDP responses a second")
	fs.IntVar(&s.Reflectors, "reflectors", 0, "amplification reflectors")
	fs.IntVar(&s.AmpPayload, "amp-payload", 0, "largest amplified UDP payload, bytes")
	fs.Float64Var(&s.ScanRate, "scan", 0, "port-scan probes a second")
	fs.IntVar(&s.ScanPorts, "scan-ports", 0, "ports scanned")
	fs.Float64Var(&s.Fragments, "fragments", 0, "IP fragments a second (off by default)")
	fs.Float64Var(&s.Malformed, "malformed", 0, "malformed packets a second (off by default)")
	kinds := fs.String("malformed-kinds", "", "comma-separated kinds of malformed packets: "+strings.Join(trafficgen.MalformedKinds(), ","))
	fs.BoolVar(&s.Outbound, "outbound", false, "also write the victim's own packets")
	fs.IntVar(&s.MaxPackets, "max-packets", 0, "refuse scenarios that could exceed this many packets (default 10,000,000)")
	preset := fs.String("preset", "", "start from a named scenario (default, testdata); only -seed with it")
	labelsPath := fs.String("labels", "", "labels file (default OUT without .pcap, plus .labels.jsonl)")
	hostsPath := fs.String("hosts", "", "also write the chosen addresses to this JSON file")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: fwgen [flags] OUT.pcap")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("want one output file, got %d arguments", fs.NArg())
	}
	for _, a := range []struct {
		text string
		addr *netip.Addr
	}{{*v4, &s.Victim4}, {*v6, &s.Victim6}} {
		if a.text == "" {
			continue
		}
		addr, err := netip.ParseAddr(a.text)
		if err != nil {
			return fmt.Errorf("victim: %w", err)
		}
		*a.addr = addr
	}
	if *preset != "" {
		var set []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "preset", "labels", "hosts", "seed":
			default:
				set = append(set, "-"+f.Name)
			}
		})
		if len(set) > 0 {
			return fmt.Errorf("-preset with %s: choose one", strings.Join(set, " "))
		}
		p, err := trafficgen.Preset(*preset)
		if err != nil {
			return err
		}
		p.Seed = s.Seed
		s = p
	}
	if *kinds != "" {
		s.MalformedKinds = strings.Split(*kinds, ",")
	}
	out := fs.Arg(0)
	if *labelsPath == "" {
		*labelsPath = strings.TrimSuffix(out, ".pcap") + ".labels.jsonl"
	}
	g, err := trafficgen.New(s) // validate before creating files
	if err != nil {
		return err
	}
	counts, err := writeFiles(s, out, *labelsPath)
	if err != nil {
		return err
	}
	if *hostsPath != "" {
		b, err := json.MarshalIndent(g.Hosts(), "", "\t")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*hostsPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	classes := make([]trafficgen.Class, 0, len(counts))
	for c := range counts {
		classes = append(classes, c)
	}
	sort.Slice(classes, func(i, j int) bool { return classes[i] < classes[j] })
	for _, c := range classes {
		fmt.Printf("%-14s %d\n", c, counts[c])
	}
	return nil
}

func writeFiles(s trafficgen.Scenario, pcapPath, labelsPath string) (trafficgen.Counts, error) {
	pf, err := os.Create(pcapPath)
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	lf, err := os.Create(labelsPath)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	counts, err := trafficgen.Write(s, pf, lf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pcapPath, err)
	}
	if err := pf.Close(); err != nil {
		return nil, err
	}
	return counts, lf.Close()
}
