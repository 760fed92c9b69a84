package firewall

import (
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/internal/capture"
	"github.com/waggle-bpf/waggle/kernel"
)

// kernelFirewall loads the firewall into the kernel with comp's maps, in
// replay mode.
func kernelFirewall(tb testing.TB, comp *Compiled) (*ebpf.Collection, *ebpf.Program) {
	tb.Helper()
	if err := kernel.Supported(); err != nil {
		tb.Skipf("no kernel BPF here: %v", err)
	}
	spec, err := Spec()
	if err != nil {
		tb.Fatal(err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		tb.Fatalf("the kernel refused the firewall: %+v", err)
	}
	tb.Cleanup(func() { coll.Close() })
	if err := comp.Fill(func(name string) Putter {
		if m := coll.Maps[name]; m != nil {
			return m
		}
		return nil
	}, true); err != nil {
		tb.Fatal(err)
	}
	return coll, coll.Programs[ProgramName]
}

// kernelRun runs one packet through BPF_PROG_TEST_RUN.
func kernelRun(prog *ebpf.Program, p Packet, out []byte) (Verdict, error) {
	data, md := ReplayInput(p)
	opts := &ebpf.RunOptions{Data: data, Context: md, DataOut: out}
	ret, err := prog.Run(opts)
	if err != nil {
		return Verdict{}, err
	}
	rule, err := RuleOf(opts.DataOut)
	return Verdict{Action: ret, Rule: rule}, err
}

// countersOf is the per-rule counters of a firewall loaded in the kernel.
func countersOf(tb testing.TB, coll *ebpf.Collection) map[uint32]Counter {
	tb.Helper()
	out, err := kernelCounters(coll.Maps[MapCounters])
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestKernel_agrees runs the cases through the kernel's BPF_PROG_TEST_RUN
// and through waggle: the same verdicts, rules and counters.
func TestKernel_agrees(t *testing.T) {
	comp := mustCompile(t, testConfig)
	cs := firewallCases(t)
	pkts := casePackets(cs)
	coll, prog := kernelFirewall(t, comp)
	kv := make([]Verdict, len(pkts))
	out := make([]byte, 4096)
	for i, p := range pkts {
		v, err := kernelRun(prog, p, out)
		if err != nil {
			t.Fatalf("packet %d (%s): %v", i+1, cs[i].name, err)
		}
		kv[i] = v
	}
	checkVerdicts(t, comp, cs, kv)
	kc := countersOf(t, coll)
	checkCounters(t, comp, kc, expectedCounters(t, comp, cs))

	r, err := NewReplayer(comp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	uv := make([]Verdict, len(pkts))
	if err := r.Run(pkts, uv); err != nil {
		t.Fatal(err)
	}
	for i := range pkts {
		if kv[i] != uv[i] {
			t.Errorf("packet %d (%s): kernel %+v, waggle %+v", i+1, cs[i].name, kv[i], uv[i])
		}
	}
	uc, err := r.Counters()
	if err != nil {
		t.Fatal(err)
	}
	checkCounters(t, comp, uc, kc)
}

// TestKernel_synCookieFallback loads the firewall as Apply does on a
// kernel without the SYN cookie helpers (fw_cookie_helpers cleared): with
// syn_cookies auto the cookie flag is cleared and the per-source SYN rate
// is in force, the kernel loads the program (the calls are dead code) and
// a SYN under attack meets the SYN rate; with on, Apply refuses. It also
// records whether this kernel has the helpers.
func TestKernel_synCookieFallback(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("no kernel BPF here: %v", err)
	}
	have, err := haveCookieHelpers()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("this kernel has the SYN cookie helpers in XDP: %v", have)
	if _, err := mustCompile(t, cookieConfig).forHelpers(mustSpec(t), false); err == nil {
		t.Error("syn_cookies on without the helpers: no error")
	}
	comp := mustCompile(t, strings.Replace(cookieConfig, "syn_cookies: on", "syn_cookies: auto", 1))
	spec := mustSpec(t)
	conf, err := comp.forHelpers(spec, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := SYNProtection(conf); got != SYNRateOnly {
		t.Errorf("auto without the helpers: %q, want %q", got, SYNRateOnly)
	}
	fallback := *comp
	fallback.Config = conf
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		t.Fatalf("the kernel refused the firewall without cookie helpers: %+v", err)
	}
	defer coll.Close()
	if err := fallback.Fill(func(name string) Putter {
		if m := coll.Maps[name]; m != nil {
			return m
		}
		return nil
	}, true); err != nil {
		t.Fatal(err)
	}
	k := kernelRunner{coll.Programs[ProgramName]}
	now := time.Unix(1_700_000_000, 0)
	k.run(t, Packet{Data: build(t, pkt{src: "198.51.100.200", dst: "203.0.113.1", proto: "udp", sport: 1, dport: 2}), Time: now})
	for i, want := range []Verdict{{XDPPass, RuleDefault}, {XDPDrop, RuleSYNRate}} {
		v, _ := k.run(t, Packet{Data: synPacket(t, "198.51.100.7", "203.0.113.1", uint16(40000+i), 1, 0, 1460), Time: now.Add(time.Duration(i+1) * time.Millisecond)})
		if v != want {
			t.Errorf("SYN %d under attack: %s by %d, want %s by %d", i+1, ActionName(v.Action), v.Rule, ActionName(want.Action), want.Rule)
		}
	}
	if info, err := coll.Programs[ProgramName].Info(); err == nil {
		if n, ok := info.VerifiedInstructions(); ok {
			t.Logf("the kernel verified %d instructions without the cookie branch", n)
		}
	}
}

// mustSpec is Spec or the end of the test.
func mustSpec(tb testing.TB) *ebpf.CollectionSpec {
	tb.Helper()
	spec, err := Spec()
	if err != nil {
		tb.Fatal(err)
	}
	return spec
}

// TestKernel_agreesOnCapture replays a capture through the kernel and
// through waggle with tight limits, so that buckets and the attack window
// decide too: packet for packet the same.
func TestKernel_agreesOnCapture(t *testing.T) {
	comp := mustCompile(t, `
options: {drop_malformed: true, drop_fragments: true}
limits:
  prefix_v4: 24
  pps: {rate: 200, burst: 10}
  bps: {rate: 20000, burst: 4000}
  syn: {rate: 5, burst: 2}
  udp_amplification: {dns: {rate: 5, burst: 2}}
  attack_pps: 400
rules:
  - {name: some-lan, action: allow, cidrs: [192.168.1.0/24]}
  - {name: deny-10-0, action: deny, proto: udp, cidrs: [10.0.0.0/16]}
`)
	frames, err := capture.ReadFile("../../examples/traffic/traffic.pcap")
	if err != nil {
		t.Fatal(err)
	}
	pkts := make([]Packet, len(frames))
	for i, f := range frames {
		// 1000 packets over half a second: buckets empty and refill.
		pkts[i] = Packet{Data: f, Time: testTime.Add(time.Duration(i) * 500 * time.Microsecond)}
	}
	coll, prog := kernelFirewall(t, comp)
	r, err := NewReplayer(comp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	uv := make([]Verdict, len(pkts))
	if err := r.Run(pkts, uv); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 4096)
	rules := map[string]int{}
	for i, p := range pkts {
		kv, err := kernelRun(prog, p, out)
		if err != nil {
			t.Fatalf("packet %d: %v", i+1, err)
		}
		if kv != uv[i] {
			t.Errorf("packet %d: kernel %s by %s, waggle %s by %s", i+1, ActionName(kv.Action), comp.RuleName(kv.Rule), ActionName(uv[i].Action), comp.RuleName(uv[i].Rule))
		}
		rules[comp.RuleName(kv.Rule)]++
	}
	t.Logf("verdicts by rule: %v", rules)
	if len(rules) < 4 {
		t.Errorf("only rules %v decided: the capture should exercise more", rules)
	}
	uc, err := r.Counters()
	if err != nil {
		t.Fatal(err)
	}
	checkCounters(t, comp, uc, countersOf(t, coll))
}

// TestKernel_samplesLost: the kernel's ring buffer fills as waggle's does,
// and the firewall counts the same samples lost.
func TestKernel_samplesLost(t *testing.T) {
	comp := mustCompile(t, lostConfig)
	coll, prog := kernelFirewall(t, comp)
	ps, _ := lostPackets(t)
	out := make([]byte, 4096)
	for i, p := range ps {
		if _, err := kernelRun(prog, p, out); err != nil {
			t.Fatalf("packet %d: %v", i+1, err)
		}
	}
	var per []uint64
	if err := coll.Maps[mapDrops].Lookup(uint32(dropsLost), &per); err != nil {
		t.Fatal(err)
	}
	var kernelLost uint64
	for _, x := range per {
		kernelLost += x
	}
	r, err := NewReplayer(comp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Run(ps, make([]Verdict, len(ps))); err != nil {
		t.Fatal(err)
	}
	lost, err := r.SamplesLost()
	if err != nil {
		t.Fatal(err)
	}
	if kernelLost == 0 || kernelLost != lost {
		t.Errorf("the kernel lost %d samples, waggle %d", kernelLost, lost)
	}
}
