package firewall

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
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

// TestApply_attacks attaches attacks.yaml's firewall to a veth, with
// options.sample_all and sample_every 1, sends a capture through the
// peer from one thread pinned to one CPU, and reads every verdict's sample
// from the ring buffer: the rule, the action and the kernel's clock
// (bpf_ktime_get_ns) it was decided by. It then replays the sent packets
// (whole) with those times as their timestamps: per packet the same action
// and rule, per rule the same packets and bytes, and the same state after
// (the attack window, the sampling cadence, the rate-limit buckets, the
// top talkers). Every rule is compared, the rate limits too: with the
// kernel's clock the replay sees the pace the packets really had.
func TestApply_attacks(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("no kernel BPF here: %v", err)
	}
	cfg := loadAttacksConfig(t)
	committed := readLabelled(t, attacksPcap, attacksLabels)
	t.Run("committed", func(t *testing.T) { attachedReplay(t, cfg, committed) })
	t.Run("committed-without-clients", func(t *testing.T) {
		attachedReplay(t, withoutRule(t, cfg, clientsRule), committed)
	})
	// One generated capture, the IPv6-heavy one (15,000 packets, 12,700
	// sources: the talkers map's 16,384 hold them all, so that no LRU
	// eviction, which the kernel does its own way, decides what is kept);
	// the others add time and no rule.
	for _, sc := range attackScenarios() {
		if sc.name != "seed3-ipv6" {
			continue
		}
		t.Run(sc.name, func(t *testing.T) {
			l, hosts := generate(t, sc.s)
			attachedReplay(t, withHosts(t, cfg, hosts), l)
		})
	}
}

// sendChunk is how many packets attachedReplay sends before it waits for
// their samples: 4,096 samples of 160 bytes (struct sample and the ring
// buffer's header) fill 640 KiB of the 1 MiB ring.
const sendChunk = 4096

// attachedReplay is TestApply_attacks for one configuration and capture.
func attachedReplay(t *testing.T, cfg *Config, l labelled) {
	all := *cfg
	all.Options.SampleAll, all.Options.SampleEvery = true, 1
	comp := compileConfig(t, &all)

	v := ktest.NewVeth(t)
	// The peer's own IPv6 (router solicitations, MLD) would count too.
	ktest.Run(t, "ip", "netns", "exec", v.NS, "sysctl", "-qw", "net/ipv6/conf/"+v.Peer+"/disable_ipv6=1")
	dir := ktest.BPFFS(t) + "/fw"
	if _, err := Apply(comp, ApplyOptions{Interface: v.Host, Mode: kernel.XDPGeneric, PinDir: dir}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kernel.Detach(dir) })
	fd := v.SenderAtPeer(t)

	// Every sample, in the order the one CPU decided the packets.
	ch := make(chan Sample, len(l.pkts)+64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- CaptureAll(ctx, dir, func(s Sample) error {
			s.Data = bytes.Clone(s.Data)
			select {
			case ch <- s:
				return nil
			default:
				return fmt.Errorf("more than %d samples", cap(ch))
			}
		})
	}()
	samples := make([]Sample, 0, len(l.pkts))
	cpu, err := sendOnOneCPU(fd, l.pkts, sendChunk, func(sent int) error {
		timeout := time.NewTimer(10 * time.Second)
		defer timeout.Stop()
		for len(samples) < sent {
			select {
			case s := <-ch:
				samples = append(samples, s)
			case err := <-done:
				return fmt.Errorf("capture ended early: %v", err)
			case <-timeout.C:
				return fmt.Errorf("%d samples for %d packets sent: the ring buffer lost some", len(samples), sent)
			}
		}
		return nil
	})
	cancel()
	if cerr := <-done; cerr != nil {
		t.Fatalf("capture: %v", cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	for len(ch) > 0 {
		s := <-ch
		t.Errorf("a sample after the last packet: %s by %s, %d bytes: %x", ActionName(s.Action), comp.RuleName(s.Rule), s.Length, s.Data)
	}

	// Pair the samples with the packets sent, and replay these with the
	// kernel's times.
	kv := make([]Verdict, len(l.pkts))
	timed := make([]Packet, len(l.pkts))
	for i, s := range samples {
		p := l.pkts[i].Data
		if s.Length != len(p) || !bytes.Equal(s.Data, p[:min(len(p), SampleBytes)]) {
			t.Fatalf("sample %d (%d bytes, %x...) is not packet %d (%d bytes, %x...)", i+1, s.Length, s.Data[:min(len(s.Data), 34)], i+1, len(p), p[:34])
		}
		if i > 0 && s.Time < samples[i-1].Time {
			t.Fatalf("sample %d: the kernel's clock went back, from %d to %d ns", i+1, samples[i-1].Time, s.Time)
		}
		kv[i] = Verdict{Action: s.Action, Rule: s.Rule}
		timed[i] = Packet{Data: p, Time: time.Unix(0, int64(s.Time))}
	}
	r, err := NewReplayer(comp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	uv := make([]Verdict, len(timed))
	if err := r.Run(timed, uv); err != nil {
		t.Fatal(err)
	}

	rules := map[string]int{}
	var diffs int
	for i := range kv {
		if kv[i] != uv[i] {
			if diffs++; diffs <= 20 {
				t.Errorf("packet %d (%s/%s): attached %s by %s, replayed %s by %s", i+1, l.labels[i].Class, l.labels[i].Kind,
					ActionName(kv[i].Action), comp.RuleName(kv[i].Rule), ActionName(uv[i].Action), comp.RuleName(uv[i].Rule))
			}
		}
		rules[comp.RuleName(kv[i].Rule)]++
	}
	if diffs > 0 {
		t.Errorf("%d of %d packets differ", diffs, len(kv))
	}
	t.Logf("%d packets on CPU %d over %v of the kernel's clock (the capture spans %v); attached, by rule: %v",
		len(kv), cpu, timed[len(timed)-1].Time.Sub(timed[0].Time).Round(time.Microsecond),
		l.pkts[len(l.pkts)-1].Time.Sub(l.pkts[0].Time).Round(time.Millisecond), rules)

	kc, err := PinnedCounters(dir)
	if err != nil {
		t.Fatal(err)
	}
	uc, err := r.Counters()
	if err != nil {
		t.Fatal(err)
	}
	checkCounters(t, comp, kc, uc)
	checkRuleCounters(t, comp, timed, kv, kc)
	checkPinnedState(t, dir, r, cpu, len(l.pkts))

	// The times as capture --all writes them, shifted to the wall clock by
	// a whole number of seconds: the same verdicts and counters.
	shift, err := WallClockShift()
	if err != nil {
		t.Fatal(err)
	}
	shifted := make([]Packet, len(timed))
	for i, s := range samples {
		shifted[i] = Packet{Data: timed[i].Data, Time: s.Timestamp(shift)}
	}
	sv, sc := replayAll(t, comp, shifted)
	if !slices.Equal(sv, kv) {
		t.Errorf("replayed with the kernel's times shifted by %v: other verdicts", shift)
	}
	checkCounters(t, comp, sc, kc)
}

// sendOnOneCPU writes the frames to fd from a thread pinned to one CPU,
// so that the kernel receives them (netif_rx, the CPU's backlog) and runs
// the firewall on them on that CPU, in order. After every chunk of
// frames, and after the last, it calls wait with the number sent so far.
// It returns the CPU.
func sendOnOneCPU(fd int, pkts []Packet, chunk int, wait func(sent int) error) (int, error) {
	type result struct {
		cpu int
		err error
	}
	res := make(chan result, 1)
	go func() {
		// Never unlocked: the thread, pinned, ends with the goroutine.
		runtime.LockOSThread()
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err != nil {
			res <- result{-1, fmt.Errorf("sched_getaffinity: %w", err)}
			return
		}
		if set.Count() == 0 {
			res <- result{-1, fmt.Errorf("sched_getaffinity: no CPU")}
			return
		}
		cpu := 0
		for !set.IsSet(cpu) {
			cpu++
		}
		set.Zero()
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			res <- result{cpu, fmt.Errorf("sched_setaffinity: %w", err)}
			return
		}
		for start := 0; start < len(pkts); start += chunk {
			end := min(start+chunk, len(pkts))
			for i, p := range pkts[start:end] {
				if _, err := unix.Write(fd, p.Data); err != nil {
					res <- result{cpu, fmt.Errorf("packet %d (%d bytes): %w", start+i+1, len(p.Data), err)}
					return
				}
			}
			if err := wait(end); err != nil {
				res <- result{cpu, err}
				return
			}
		}
		res <- result{cpu, nil}
	}()
	r := <-res
	return r.cpu, r.err
}

// checkPinnedState compares the state the attached firewall kept with
// the replay's: the sampling cadence (map drops: every packet, on cpu),
// the attack window, the rate-limit buckets and the top talkers.
func checkPinnedState(t *testing.T, dir string, r *Replayer, cpu, packets int) {
	t.Helper()
	um := r.Collection().Maps
	dm, err := openPinned(dir, mapDrops)
	if err != nil {
		t.Fatal(err)
	}
	defer dm.Close()
	var drops []uint64
	if err := dm.Lookup(uint32(0), &drops); err != nil {
		t.Fatal(err)
	}
	for c, n := range drops {
		want := uint64(0)
		if c == cpu {
			want = uint64(packets)
		}
		if n != want {
			t.Errorf("map %s: CPU %d counted %d sampling candidates, want %d", mapDrops, c, n, want)
		}
	}
	ud, err := um[mapDrops].LookupBytes(uint32(0))
	if err != nil {
		t.Fatal(err)
	}
	if n := ne.Uint64(ud); n != uint64(packets) {
		t.Errorf("replay's map %s: %d sampling candidates, want %d", mapDrops, n, packets)
	}

	am, err := openPinned(dir, MapAttack)
	if err != nil {
		t.Fatal(err)
	}
	defer am.Close()
	ka, err := am.LookupBytes(uint32(0))
	if err != nil {
		t.Fatal(err)
	}
	ua, err := um[MapAttack].LookupBytes(uint32(0))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ka, ua) {
		t.Errorf("attack window (second, packets, on): attached %v, replayed %v", attackWindow(ka), attackWindow(ua))
	}

	bm, err := openPinned(dir, MapBuckets)
	if err != nil {
		t.Fatal(err)
	}
	defer bm.Close()
	kb := map[string]string{}
	var k, val []byte
	it := bm.Iterate()
	for it.Next(&k, &val) {
		kb[fmt.Sprintf("%x", k)] = fmt.Sprintf("%x", val)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	ub := map[string]string{}
	for k, v := range um[MapBuckets].All() {
		ub[fmt.Sprintf("%x", k)] = fmt.Sprintf("%x", v)
	}
	if !maps.Equal(kb, ub) {
		t.Errorf("buckets: attached %v, replayed %v", kb, ub)
	}

	p, err := OpenPinned(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	kt, err := p.TopTalkers(0)
	if err != nil {
		t.Fatal(err)
	}
	ut, err := r.TopTalkers(0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(kt, ut) {
		n := 0
		for i := range min(len(kt), len(ut)) {
			if kt[i] != ut[i] {
				if n++; n <= 5 {
					t.Errorf("talker %d: attached %+v, replayed %+v", i+1, kt[i], ut[i])
				}
			}
		}
		t.Errorf("%d talkers attached, %d replayed, %d of the first differ", len(kt), len(ut), n)
	}
	t.Logf("attached state: %d buckets, attack window (second, packets, on) %v, %d talkers", len(kb), attackWindow(ka), len(kt))
}

// attackWindow decodes struct attack: second, packets, on.
func attackWindow(b []byte) [3]uint64 {
	return [3]uint64{ne.Uint64(b), ne.Uint64(b[8:]), ne.Uint64(b[16:])}
}
