package firewall

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/apps/firewall/trafficgen"
	"github.com/waggle-bpf/waggle/internal/capture"
)

// The target of issue 10: at least this share of every attack class
// dropped, at most this share of legitimate packets.
const (
	minAttackDropped = 0.99
	maxLegitDropped  = 0.001
)

// The committed attack capture, its labels, hosts and configuration.
const (
	attacksPcap    = "testdata/attacks.pcap"
	attacksLabels  = "testdata/attacks.labels.jsonl"
	attacksHosts   = "testdata/attacks.hosts.json"
	attacksConfig  = "testdata/attacks.yaml"
	clientsRule    = "clients"
	resolversRule  = "resolvers"
	ntpServersRule = "ntp-servers"
)

// labelled is a capture's packets and their labels, in capture order.
type labelled struct {
	pkts   []Packet
	labels []trafficgen.Label
}

// readLabelled reads a pcap and its labels file.
func readLabelled(tb testing.TB, pcapPath, labelsPath string) labelled {
	tb.Helper()
	data, err := os.ReadFile(pcapPath)
	if err != nil {
		tb.Fatal(err)
	}
	rd, err := capture.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		tb.Fatal(err)
	}
	var l labelled
	for {
		p, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatalf("%s: %v", pcapPath, err)
		}
		l.pkts = append(l.pkts, Packet{Data: bytes.Clone(p.Data), Time: p.Timestamp})
	}
	f, err := os.Open(labelsPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if l.labels, err = trafficgen.ReadLabels(f, 0); err != nil {
		tb.Fatalf("%s: %v", labelsPath, err)
	}
	if len(l.labels) != len(l.pkts) {
		tb.Fatalf("%s: %d labels for %d packets", labelsPath, len(l.labels), len(l.pkts))
	}
	return l
}

// generate runs trafficgen on s: its packets, labels and hosts.
func generate(tb testing.TB, s trafficgen.Scenario) (labelled, trafficgen.Hosts) {
	tb.Helper()
	g, err := trafficgen.New(s)
	if err != nil {
		tb.Fatal(err)
	}
	var l labelled
	for {
		p, err := g.Next()
		if errors.Is(err, io.EOF) {
			return l, g.Hosts()
		}
		if err != nil {
			tb.Fatal(err)
		}
		l.pkts = append(l.pkts, Packet{Data: p.Data, Time: p.Time})
		l.labels = append(l.labels, p.Label)
	}
}

func readHosts(tb testing.TB, path string) trafficgen.Hosts {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var h trafficgen.Hosts
	if err := json.Unmarshal(data, &h); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return h
}

// hostRules are the rules of attacks.yaml that name a scenario's hosts.
func hostRules(h trafficgen.Hosts) map[string][]netip.Addr {
	return map[string][]netip.Addr{
		resolversRule:  h.Resolvers,
		ntpServersRule: h.NTPServers,
		clientsRule:    append(slices.Clone(h.Clients4), h.Clients6...),
	}
}

// loadAttacksConfig reads attacks.yaml.
func loadAttacksConfig(tb testing.TB) *Config {
	tb.Helper()
	cfg, err := LoadConfig(attacksConfig)
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// withHosts returns cfg with the host rules listing h's addresses, for a
// scenario other than the committed one.
func withHosts(tb testing.TB, cfg *Config, h trafficgen.Hosts) *Config {
	tb.Helper()
	c := *cfg
	c.Rules = slices.Clone(cfg.Rules)
	hr := hostRules(h)
	for i, r := range c.Rules {
		addrs, ok := hr[r.Name]
		if !ok {
			continue
		}
		c.Rules[i].CIDRs = nil
		for _, a := range addrs {
			c.Rules[i].CIDRs = append(c.Rules[i].CIDRs, a.String())
		}
		delete(hr, r.Name)
	}
	for name := range hr {
		tb.Fatalf("%s has no rule %s", attacksConfig, name)
	}
	return &c
}

// withoutRule returns cfg without the rule called name.
func withoutRule(tb testing.TB, cfg *Config, name string) *Config {
	tb.Helper()
	c := *cfg
	c.Rules = slices.DeleteFunc(slices.Clone(cfg.Rules), func(r Rule) bool { return r.Name == name })
	if len(c.Rules) == len(cfg.Rules) {
		tb.Fatalf("no rule %s", name)
	}
	return &c
}

func compileConfig(tb testing.TB, cfg *Config) *Compiled {
	tb.Helper()
	comp, err := Compile(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return comp
}

// replayAll runs the packets through a fresh Replayer: their verdicts
// and the per-rule counters.
func replayAll(tb testing.TB, comp *Compiled, pkts []Packet) ([]Verdict, map[uint32]Counter) {
	tb.Helper()
	r, err := NewReplayer(comp, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	vs := make([]Verdict, len(pkts))
	if err := r.Run(pkts, vs); err != nil {
		tb.Fatal(err)
	}
	counters, err := r.Counters()
	if err != nil {
		tb.Fatal(err)
	}
	return vs, counters
}

// classCount is how many packets of a class (or kind) the firewall saw,
// and dropped.
type classCount struct{ packets, dropped int }

func (c classCount) share() float64 {
	if c.packets == 0 {
		return 0
	}
	return float64(c.dropped) / float64(c.packets)
}

// dropRates counts the drops per class and per "class/kind".
func dropRates(labels []trafficgen.Label, vs []Verdict) (map[trafficgen.Class]classCount, map[string]classCount) {
	byClass, byKind := map[trafficgen.Class]classCount{}, map[string]classCount{}
	for i, l := range labels {
		kind := l.Class.String() + "/" + l.Kind
		c, k := byClass[l.Class], byKind[kind]
		c.packets++
		k.packets++
		if vs[i].Action == XDPDrop {
			c.dropped++
			k.dropped++
		}
		byClass[l.Class], byKind[kind] = c, k
	}
	return byClass, byKind
}

// rateTable prints the drops per class, per kind, and which rules decided
// each class's packets.
func rateTable(comp *Compiled, labels []trafficgen.Label, vs []Verdict) string {
	byClass, byKind := dropRates(labels, vs)
	var b strings.Builder
	fmt.Fprintf(&b, "%-26s %8s %8s %9s\n", "class", "packets", "dropped", "dropped%")
	for _, c := range trafficgen.Classes() {
		n := byClass[c]
		fmt.Fprintf(&b, "%-26s %8d %8d %8.3f%%\n", c, n.packets, n.dropped, 100*n.share())
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		n := byKind[k]
		fmt.Fprintf(&b, "  %-24s %8d %8d %8.3f%%\n", k, n.packets, n.dropped, 100*n.share())
	}
	rules := map[trafficgen.Class]map[string]int{}
	for i, l := range labels {
		if rules[l.Class] == nil {
			rules[l.Class] = map[string]int{}
		}
		rules[l.Class][comp.RuleName(vs[i].Rule)]++
	}
	for _, c := range trafficgen.Classes() {
		fmt.Fprintf(&b, "%s decided by %v\n", c, rules[c])
	}
	return b.String()
}

// checkTarget checks the target for the classes in hold (all if nil), and
// reports how the others fare.
func checkTarget(t *testing.T, labels []trafficgen.Label, vs []Verdict, hold []trafficgen.Class) {
	t.Helper()
	byClass, _ := dropRates(labels, vs)
	for _, c := range trafficgen.Classes() {
		n := byClass[c]
		if n.packets == 0 {
			t.Errorf("no %s packet in the capture", c)
			continue
		}
		ok := n.share() >= minAttackDropped
		want := fmt.Sprintf("at least %.1f%%", 100*minAttackDropped)
		if !c.IsAttack() {
			ok = n.share() <= maxLegitDropped
			want = fmt.Sprintf("at most %.1f%%", 100*maxLegitDropped)
		}
		switch {
		case ok:
		case hold == nil || slices.Contains(hold, c):
			t.Errorf("%s: dropped %d of %d (%.3f%%), want %s", c, n.dropped, n.packets, 100*n.share(), want)
		default:
			t.Logf("%s: dropped %d of %d (%.3f%%), short of %s, as expected of this configuration", c, n.dropped, n.packets, 100*n.share(), want)
		}
	}
}

// checkRuleCounters checks that the per-rule counters are the sums of the
// verdicts.
func checkRuleCounters(t *testing.T, comp *Compiled, pkts []Packet, vs []Verdict, got map[uint32]Counter) {
	t.Helper()
	want := map[uint32]Counter{}
	for i, v := range vs {
		c := want[v.Rule]
		c.Packets++
		c.Bytes += uint64(len(pkts[i].Data))
		want[v.Rule] = c
	}
	checkCounters(t, comp, got, want)
}

// TestAttacks_hosts: the host rules of attacks.yaml list the committed
// capture's hosts, so that the file as committed is what the tests check.
func TestAttacks_hosts(t *testing.T) {
	cfg := loadAttacksConfig(t)
	want := withHosts(t, cfg, readHosts(t, attacksHosts))
	for i, r := range cfg.Rules {
		if !slices.Equal(r.CIDRs, want.Rules[i].CIDRs) {
			t.Errorf("rule %s lists %v, want the hosts of %s: %v", r.Name, r.CIDRs, attacksHosts, want.Rules[i].CIDRs)
		}
	}
}

// TestAttacks_committed replays the committed attack capture through
// attacks.yaml: at least 99% of every attack class dropped, at most 0.1%
// of legitimate packets, and counters that add up.
func TestAttacks_committed(t *testing.T) {
	l := readLabelled(t, attacksPcap, attacksLabels)
	comp := compileConfig(t, loadAttacksConfig(t))
	vs, counters := replayAll(t, comp, l.pkts)
	t.Logf("%s through %s:\n%s", attacksPcap, attacksConfig, rateTable(comp, l.labels, vs))
	checkTarget(t, l.labels, vs, nil)
	checkRuleCounters(t, comp, l.pkts, vs, counters)
}

// TestAttacks_withoutClients shows what the client list buys: without it,
// every source that is not a resolver or NTP server is subject to the
// limits, and no SYN limit separates the flood's spoofed SYNs from the
// clients'. With per-source SYN buckets (/32, /64) the legitimate SYNs
// pass and the flood does too, as each spoofed source sends one SYN,
// which conforms; with the shared buckets of attacks.yaml (/1) the flood
// is dropped and so are the clients' SYNs. Either way the classes that do
// not depend on telling sources apart hold.
func TestAttacks_withoutClients(t *testing.T) {
	l := readLabelled(t, attacksPcap, attacksLabels)
	base := withoutRule(t, loadAttacksConfig(t), clientsRule)
	perSource := *base
	perSource.Limits.PrefixV4, perSource.Limits.PrefixV6 = 32, 64
	perSource.Limits.SYN = Rate{Rate: 5, Burst: 5}
	independent := []trafficgen.Class{trafficgen.Amplification, trafficgen.Fragment, trafficgen.Malformed}
	for _, tc := range []struct {
		name string
		cfg  *Config
		hold []trafficgen.Class
		miss []trafficgen.Class
	}{
		{"per-source", &perSource, append(independent, trafficgen.Legit), []trafficgen.Class{trafficgen.SYNFlood, trafficgen.PortScan}},
		{"shared", base, append(independent, trafficgen.SYNFlood, trafficgen.PortScan), []trafficgen.Class{trafficgen.Legit}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			comp := compileConfig(t, tc.cfg)
			vs, _ := replayAll(t, comp, l.pkts)
			t.Logf("%s without %s, %s SYN buckets:\n%s", attacksConfig, clientsRule, tc.name, rateTable(comp, l.labels, vs))
			checkTarget(t, l.labels, vs, tc.hold)
			// The explanation above must stay true: these classes miss.
			byClass, _ := dropRates(l.labels, vs)
			for _, c := range tc.miss {
				n := byClass[c]
				if c.IsAttack() && n.share() >= minAttackDropped || !c.IsAttack() && n.share() <= maxLegitDropped {
					t.Errorf("%s: dropped %.3f%%, meeting the target: update this test and attacks.yaml's notes", c, 100*n.share())
				}
			}
		})
	}
}

// attackScenarios are further captures, generated at test time: other
// seeds, higher rates, an IPv6-heavy mix.
func attackScenarios() []struct {
	name string
	s    trafficgen.Scenario
} {
	base := func(seed uint64) trafficgen.Scenario {
		s, _ := trafficgen.Preset("testdata")
		s.Seed = seed
		return s
	}
	heavy := base(2)
	heavy.SYNFlood4, heavy.SYNFlood6, heavy.Amplification, heavy.Reflectors = 3000, 1000, 2000, 500
	heavy.AmpPayload = 1400
	v6 := base(3)
	v6.TCPFlows, v6.HTTPSFlows, v6.IPv6Flows = 1, 1, 15
	v6.SYNFlood4, v6.SYNFlood6 = 100, 2000
	long := base(4)
	long.Duration, long.AttackStart, long.AttackEnd = 30*time.Second, 5*time.Second, 25*time.Second
	long.Clients, long.ScanRate = 200, 1
	return []struct {
		name string
		s    trafficgen.Scenario
	}{{"seed2-heavy", heavy}, {"seed3-ipv6", v6}, {"seed4-long", long}}
}

// TestAttacks_scenarios checks the target on generated captures, with
// attacks.yaml listing each capture's own hosts.
func TestAttacks_scenarios(t *testing.T) {
	cfg := loadAttacksConfig(t)
	for _, sc := range attackScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			l, hosts := generate(t, sc.s)
			comp := compileConfig(t, withHosts(t, cfg, hosts))
			vs, counters := replayAll(t, comp, l.pkts)
			t.Logf("%s, %d packets:\n%s", sc.name, len(l.pkts), rateTable(comp, l.labels, vs))
			checkTarget(t, l.labels, vs, nil)
			checkRuleCounters(t, comp, l.pkts, vs, counters)
		})
	}
}

// cookieAttacksConfig is attacks.yaml with SYN cookies instead of its
// client list and SYN rate.
func cookieAttacksConfig(tb testing.TB) *Config {
	cfg := withoutRule(tb, loadAttacksConfig(tb), clientsRule)
	cfg.Options.SYNCookies = "on"
	cfg.Limits.SYN = Rate{}
	return cfg
}

// TestAttacks_synCookies replays the committed capture through attacks.yaml
// without its client list and SYN rate, with syn_cookies on: while the attack is on,
// every SYN from a source no allow rule passes is answered from XDP
// (XDP_TX, syn-cookie) instead of reaching the stack, the flood's and the
// legitimate clients' alike; a legitimate SYN is counted as answered, not
// dropped (its handshake completes with the ACK the client sends back).
// The flood's SYNs before the attack mark is crossed meet the SYN rate.
func TestAttacks_synCookies(t *testing.T) {
	l := readLabelled(t, attacksPcap, attacksLabels)
	comp := compileConfig(t, cookieAttacksConfig(t))
	vs, counters := replayAll(t, comp, l.pkts)
	t.Logf("%s without %s, with SYN cookies:\n%s", attacksConfig, clientsRule, rateTable(comp, l.labels, vs))
	checkRuleCounters(t, comp, l.pkts, vs, counters)
	type count struct{ passed, answered, dropped int }
	by := map[trafficgen.Class]*count{}
	for i, lb := range l.labels {
		c := by[lb.Class]
		if c == nil {
			c = &count{}
			by[lb.Class] = c
		}
		switch vs[i].Action {
		case XDPPass:
			c.passed++
		case XDPTX:
			c.answered++
			if vs[i].Rule != RuleSYNCookie {
				t.Errorf("packet %d: XDP_TX by %s", i+1, comp.RuleName(vs[i].Rule))
			}
		case XDPDrop:
			c.dropped++
		}
	}
	for _, c := range trafficgen.Classes() {
		if n := by[c]; n != nil {
			t.Logf("%-24s passed %6d, answered %6d, dropped %6d", c, n.passed, n.answered, n.dropped)
		}
	}
	flood := by[trafficgen.SYNFlood]
	if flood == nil || flood.answered == 0 {
		t.Fatalf("no SYN of the flood answered: %+v", flood)
	}
	if flood.passed != 0 {
		t.Errorf("%d SYNs of the flood reached the stack", flood.passed)
	}
	if legit := by[trafficgen.Legit]; legit == nil || float64(legit.dropped) > maxLegitDropped*float64(legit.passed+legit.answered+legit.dropped) {
		t.Errorf("legitimate packets dropped: %+v", legit)
	}
}
