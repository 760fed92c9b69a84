package firewall

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/internal/ktest"
	"github.com/waggle-bpf/waggle/kernel"
)

// TestApply_reloadWhilePacketsFlow applies the firewall on a veth and
// reloads it, over and over, while the peer sends a legitimate source's
// packets and another's: the legitimate source's allow prefix is
// narrowed, widened and given to another rule, every other IPv4 address
// denied. Every legitimate packet is passed by one of its allow rules,
// every other one dropped by the deny.
func TestApply_reloadWhilePacketsFlow(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("no kernel BPF here: %v", err)
	}
	v := ktest.NewVeth(t)
	dir := ktest.BPFFS(t) + "/fw"
	legit := build(t, pkt{src: "10.9.0.1", dst: "10.9.0.2", proto: "tcp", sport: 1000, dport: 443, ack: true, payload: 40})
	other := build(t, pkt{src: "10.8.0.66", dst: "10.9.0.2", proto: "udp", sport: 1000, dport: 53})
	const rest = "  - {name: rest, id: 50, action: deny, cidrs: [0.0.0.0/0]}\n"
	configs := []*Compiled{
		mustCompile(t, "rules:\n  - {name: clients, id: 30, action: allow, cidrs: [10.9.0.1/32]}\n"+rest),
		mustCompile(t, "limits: {pps: {rate: 1000000}}\nrules:\n  - {name: clients, id: 30, action: allow, cidrs: [10.9.0.0/24]}\n"+rest+
			"  - {name: blocked, id: 51, action: deny, cidrs: [192.0.2.0/24, 198.51.100.0/24]}\n"),
		mustCompile(t, "rules:\n  - {name: clients-b, id: 31, action: allow, cidrs: [10.9.0.1/32]}\n"+rest),
	}
	if _, err := Apply(configs[0], ApplyOptions{Interface: v.Host, Mode: kernel.XDPGeneric, PinDir: dir}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kernel.Detach(dir) })
	fd := v.SenderAtPeer(t)

	const packets = 3000
	var reloads atomic.Int64
	var failed atomic.Bool
	var sendErr error
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := range packets {
			for _, f := range [][]byte{legit, other} {
				if _, err := unix.Write(fd, f); err != nil {
					sendErr = err
					return
				}
			}
			// At least one reload every 100 packets.
			if i%100 == 99 {
				before := reloads.Load()
				for reloads.Load() == before && !failed.Load() {
					runtime.Gosched()
				}
			}
		}
	}()
	var changed, added, removed int
	for i := 1; ; i++ {
		select {
		case <-done:
		default:
			res, err := Apply(configs[i%len(configs)], ApplyOptions{PinDir: dir})
			if err != nil {
				failed.Store(true)
				wg.Wait()
				t.Fatal(err)
			}
			if !res.Reloaded {
				failed.Store(true)
				wg.Wait()
				t.Fatalf("apply %d did not reload: %+v", i, res)
			}
			added, changed, removed = added+res.Added, changed+res.Changed, removed+res.Removed
			reloads.Add(1)
			continue
		}
		break
	}
	wg.Wait()
	if sendErr != nil {
		t.Fatal(sendErr)
	}
	var got map[uint32]Counter
	for range 200 {
		var err error
		if got, err = PinnedCounters(dir); err != nil {
			t.Fatal(err)
		}
		if got[30].Packets+got[31].Packets+got[50].Packets >= 2*packets {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := got[30].Packets + got[31].Packets; n != packets {
		t.Errorf("the allow rules passed %d packets (%d and %d), want the %d legitimate ones", n, got[30].Packets, got[31].Packets, packets)
	}
	if got[50].Packets != packets {
		t.Errorf("rest dropped %d packets, want %d", got[50].Packets, packets)
	}
	if n := reloads.Load(); n < packets/100 || added == 0 || changed == 0 || removed == 0 {
		t.Errorf("%d reloads (want at least %d): %d prefixes added, %d changed, %d removed", n, packets/100, added, changed, removed)
	}
	t.Logf("%d reloads while %d packets flowed: clients %d, clients-b %d, rest %d", reloads.Load(), 2*packets, got[30].Packets, got[31].Packets, got[50].Packets)
}
