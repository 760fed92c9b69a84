package firewall

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/internal/ktest"
	"github.com/waggle-bpf/waggle/kernel"
)

// waitCounters polls the pinned counters until rule has n packets.
func waitCounters(t *testing.T, dir string, comp *Compiled, rule string, n uint64) map[uint32]Counter {
	t.Helper()
	id, ok := comp.RuleID(rule)
	if !ok {
		t.Fatalf("no rule %s", rule)
	}
	var got map[uint32]Counter
	for range 200 {
		var err error
		if got, err = PinnedCounters(dir); err != nil {
			t.Fatal(err)
		}
		if got[id].Packets >= n {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("rule %s counted %d packets, want %d (counters %v)", rule, got[id].Packets, n, got)
	return nil
}

// TestApply_veth attaches the firewall to a veth whose peer is in a
// namespace, sends it packets, reloads a changed configuration in place,
// and reads drop samples.
func TestApply_veth(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("no kernel BPF here: %v", err)
	}
	v := ktest.NewVeth(t)
	dir := ktest.BPFFS(t) + "/fw"
	udp := build(t, pkt{src: "10.9.0.1", dst: "10.9.0.2", proto: "udp", sport: 1000, dport: 2000, payload: 10})
	tcp := build(t, pkt{src: "10.9.0.1", dst: "10.9.0.2", proto: "tcp", sport: 1000, dport: 22, ack: true})
	comp := mustCompile(t, `
options: {sample_every: 1}
rules:
  - {name: deny-udp, id: 20, action: deny, proto: udp, cidrs: [10.9.0.0/24]}
`)
	res, err := Apply(comp, ApplyOptions{Interface: v.Host, Mode: kernel.XDPGeneric, PinDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kernel.Detach(dir) })
	if res.Reloaded || len(res.Pinned) == 0 {
		t.Fatalf("first apply: %+v", res)
	}
	fd := v.SenderAtPeer(t)

	// Samples, read while the packets arrive.
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var samples []Sample
	done := make(chan error, 1)
	go func() {
		done <- CaptureDropped(ctx, dir, func(s Sample) error {
			mu.Lock()
			defer mu.Unlock()
			s.Data = bytes.Clone(s.Data)
			samples = append(samples, s)
			return nil
		})
	}()
	for range 3 {
		if _, err := unix.Write(fd, udp); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Write(fd, tcp); err != nil {
			t.Fatal(err)
		}
	}
	got := waitCounters(t, dir, comp, "deny-udp", 3)
	waitCounters(t, dir, comp, "default", 3)
	if got[20].Packets != 3 || got[20].Bytes != 3*uint64(len(udp)) {
		t.Errorf("deny-udp: %+v, want 3 packets of %d bytes", got[20], len(udp))
	}
	for range 200 {
		mu.Lock()
		n := len(samples)
		mu.Unlock()
		if n >= 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(samples) != 3 {
		t.Fatalf("%d samples, want 3", len(samples))
	}
	for _, s := range samples {
		if s.Rule != 20 || !bytes.Equal(s.Data, udp) {
			t.Errorf("sample of rule %d, %x; want rule 20, %x", s.Rule, s.Data, udp)
		}
	}

	// Reload: UDP is let through now, TCP/22 dropped.
	comp2 := mustCompile(t, `
rules:
  - {name: deny-ssh, id: 21, action: deny, proto: tcp, ports: "22", cidrs: [10.9.0.1/32]}
`)
	res, err = Apply(comp2, ApplyOptions{Interface: v.Host, PinDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reloaded || res.Added != 1 || res.Removed != 1 || res.Swapped {
		t.Fatalf("reload: %+v, want 1 added, 1 removed, the same program", res)
	}
	for range 2 {
		unix.Write(fd, udp)
		unix.Write(fd, tcp)
	}
	got = waitCounters(t, dir, comp2, "deny-ssh", 2)
	got = waitCounters(t, dir, comp2, "default", 5)
	if got[20].Packets != 3 {
		t.Errorf("deny-udp after the reload: %d packets, want still 3", got[20].Packets)
	}
}

// TestApply_swap: a reload by a binary whose program differs replaces the
// attached one through the link, keeping the maps and the counters.
func TestApply_swap(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("no kernel BPF here: %v", err)
	}
	v := ktest.NewVeth(t)
	dir := ktest.BPFFS(t) + "/fw"
	comp := mustCompile(t, "rules: [{name: deny-udp, id: 20, action: deny, proto: udp, cidrs: [10.9.0.0/24]}]\n")
	if _, err := Apply(comp, ApplyOptions{Interface: v.Host, Mode: kernel.XDPGeneric, PinDir: dir}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kernel.Detach(dir) })
	tagOf := func() string {
		p, err := ebpf.LoadPinnedProgram(filepath.Join(dir, "prog"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		info, err := p.Info()
		if err != nil {
			t.Fatal(err)
		}
		return info.Tag
	}
	before := tagOf()
	// Another version of the program: an instruction more at the start.
	spec, err := Spec()
	if err != nil {
		t.Fatal(err)
	}
	ps := spec.Programs[ProgramName]
	first := ps.Instructions[0]
	extra := asm.Mov.Imm(asm.R0, 0).WithMetadata(first.Metadata)
	first.Metadata = asm.Metadata{}
	ps.Instructions = append(asm.Instructions{extra, first}, ps.Instructions[1:]...)
	swapped, err := swapProgram(dir, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !swapped || tagOf() == before {
		t.Fatalf("swapped %v, tag %s then %s", swapped, before, tagOf())
	}
	udp := build(t, pkt{src: "10.9.0.1", dst: "10.9.0.2", proto: "udp", sport: 1, dport: 2})
	fd := v.SenderAtPeer(t)
	for range 2 {
		if _, err := unix.Write(fd, udp); err != nil {
			t.Fatal(err)
		}
	}
	waitCounters(t, dir, comp, "deny-udp", 2)
	// And back: the same binary's program swaps in again.
	res, err := Apply(comp, ApplyOptions{Interface: v.Host, PinDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Swapped || tagOf() != before {
		t.Fatalf("reload: %+v, tag %s, want %s", res, tagOf(), before)
	}
	unix.Write(fd, udp)
	waitCounters(t, dir, comp, "deny-udp", 3)
}
