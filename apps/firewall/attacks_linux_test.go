package firewall

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/internal/ktest"
	"github.com/waggle-bpf/waggle/kernel"
)

// kernelReplay runs every packet through the kernel's BPF_PROG_TEST_RUN in
// replay mode (the packet's time in the metadata) and through waggle, and
// checks the same verdict and rule for each, and the same counters.
func kernelReplay(t *testing.T, comp *Compiled, l labelled) {
	t.Helper()
	coll, prog := kernelFirewall(t, comp)
	uv, uc := replayAll(t, comp, l.pkts)
	out := make([]byte, 4096)
	rules := map[string]int{}
	var diffs int
	for i, p := range l.pkts {
		kv, err := kernelRun(prog, p, out)
		if err != nil {
			t.Fatalf("packet %d: %v", i+1, err)
		}
		if kv != uv[i] {
			if diffs++; diffs <= 20 {
				t.Errorf("packet %d (%s/%s): kernel %s by %s, waggle %s by %s", i+1, l.labels[i].Class, l.labels[i].Kind,
					ActionName(kv.Action), comp.RuleName(kv.Rule), ActionName(uv[i].Action), comp.RuleName(uv[i].Rule))
			}
		}
		rules[comp.RuleName(kv.Rule)]++
	}
	if diffs > 0 {
		t.Errorf("%d of %d packets differ", diffs, len(l.pkts))
	}
	t.Logf("%d packets, the same verdict and rule for each; by rule: %v", len(l.pkts), rules)
	checkCounters(t, comp, uc, countersOf(t, coll))
}

// TestKernel_attacks replays the committed attack capture, and the
// generated ones, through the kernel and through waggle with attacks.yaml
// (and without its client list, so that the shared SYN buckets decide for
// the clients' packets too): packet for packet the same.
func TestKernel_attacks(t *testing.T) {
	cfg := loadAttacksConfig(t)
	committed := readLabelled(t, attacksPcap, attacksLabels)
	t.Run("committed", func(t *testing.T) { kernelReplay(t, compileConfig(t, cfg), committed) })
	t.Run("committed-without-clients", func(t *testing.T) {
		kernelReplay(t, compileConfig(t, withoutRule(t, cfg, clientsRule)), committed)
	})
	t.Run("committed-syn-cookies", func(t *testing.T) { kernelReplay(t, compileConfig(t, cookieAttacksConfig(t)), committed) })
	for _, sc := range attackScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			l, hosts := generate(t, sc.s)
			kernelReplay(t, compileConfig(t, withHosts(t, cfg, hosts)), l)
		})
	}
}

// TestApply_attacks attaches attacks.yaml's firewall to a veth, sends the
// committed capture through the peer, and compares the per-rule counters
// with a replay of the capture.
//
// Attached, the program's clock is bpf_ktime_get_ns, and the packets go
// out as fast as the socket takes them, not at the capture's pace. So the
// comparison is exact for the rules that do not depend on time (the allow
// and deny lists, fragments, malformed headers: packets and bytes of
// each), and for the rate limits it is exact for the packets that reach
// them (syn-rate plus default, packets and bytes) but not for how they
// split, which depends on the pace; the split is logged. With this
// configuration every legitimate packet is decided by an allow list, so
// its verdicts do not depend on the pace either.
func TestApply_attacks(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("no kernel BPF here: %v", err)
	}
	comp := compileConfig(t, loadAttacksConfig(t))
	l := readLabelled(t, attacksPcap, attacksLabels)
	_, want := replayAll(t, comp, l.pkts)

	v := ktest.NewVeth(t)
	// The peer's own IPv6 (router solicitations, MLD) would count too.
	ktest.Run(t, "ip", "netns", "exec", v.NS, "sysctl", "-qw", "net/ipv6/conf/"+v.Peer+"/disable_ipv6=1")
	dir := ktest.BPFFS(t) + "/fw"
	if _, err := Apply(comp, ApplyOptions{Interface: v.Host, Mode: kernel.XDPGeneric, PinDir: dir}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kernel.Detach(dir) })
	fd := v.SenderAtPeer(t)
	start := time.Now()
	for i, p := range l.pkts {
		if _, err := unix.Write(fd, p.Data); err != nil {
			t.Fatalf("packet %d (%d bytes): %v", i+1, len(p.Data), err)
		}
	}
	sent := time.Since(start)
	var got map[uint32]Counter
	for range 500 {
		var err error
		if got, err = PinnedCounters(dir); err != nil {
			t.Fatal(err)
		}
		var n uint64
		for _, c := range got {
			n += c.Packets
		}
		if n >= uint64(len(l.pkts)) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	limited := map[string]bool{"syn-rate": true, "default": true}
	var gotLimited, wantLimited Counter
	for _, id := range []map[uint32]Counter{got, want} {
		for r := range id {
			if _, ok := got[r]; !ok {
				got[r] = Counter{}
			}
			if _, ok := want[r]; !ok {
				want[r] = Counter{}
			}
		}
	}
	for id, w := range want {
		g, name := got[id], comp.RuleName(id)
		if limited[name] {
			gotLimited.Packets += g.Packets
			gotLimited.Bytes += g.Bytes
			wantLimited.Packets += w.Packets
			wantLimited.Bytes += w.Bytes
			t.Logf("%-12s attached %5d packets %8d bytes, replayed %5d packets %8d bytes (depends on the pace)", name, g.Packets, g.Bytes, w.Packets, w.Bytes)
			continue
		}
		if g != w {
			t.Errorf("%-12s attached %5d packets %8d bytes, replayed %5d packets %8d bytes", name, g.Packets, g.Bytes, w.Packets, w.Bytes)
		} else {
			t.Logf("%-12s attached and replayed %5d packets %8d bytes", name, g.Packets, g.Bytes)
		}
	}
	if gotLimited != wantLimited {
		t.Errorf("the rate limits saw %+v attached, %+v replayed", gotLimited, wantLimited)
	}
	t.Logf("%d packets sent in %v (the capture spans %v)", len(l.pkts), sent.Round(time.Millisecond),
		l.pkts[len(l.pkts)-1].Time.Sub(l.pkts[0].Time).Round(time.Millisecond))
}
