package waggle_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	casm "github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
)

// stateProgram returns a program that reads a value v with load (r6 = v,
// from the packet length or the context), then: v == 60 writes a secret to
// the stack and returns 1; v == 61 writes the secret and faults; otherwise
// it returns v plus the uninitialised stack word, which must be 0 however
// earlier runs ended.
func stateProgram(tb testing.TB, load string) casm.Instructions {
	tb.Helper()
	prog, err := asm.Parse(load + `
		if r6 == 60 goto secret
		if r6 == 61 goto fault
		r0 = *(u64 *)(r10 - 8)
		r0 += r6
		exit
	secret:
		r1 = 0x5ec2e7
		*(u64 *)(r10 - 8) = r1
		r0 = 1
		exit
	fault:
		r1 = 0x5ec2e7
		*(u64 *)(r10 - 8) = r1
		r1 = 0
		r0 = *(u64 *)(r1 + 0)
		exit`)
	if err != nil {
		tb.Fatal(err)
	}
	insns, err := casm.AppendInstructions(nil, bytes.NewReader(isa.Encode(prog)), binary.LittleEndian, "linux")
	if err != nil {
		tb.Fatal(err)
	}
	return insns
}

// StateHook is the context of the user hook of TestRuns_interleaved.
type StateHook struct{ V uint64 }

// TestRuns_interleaved: on every program type, runs that fail (an input
// Linux refuses with EINVAL, a fault in the middle of the program after it
// wrote its stack) interleaved with good runs leave the good runs'
// answers exactly what a fresh collection gives, and no run reads a stack
// word an earlier run wrote.
func TestRuns_interleaved(t *testing.T) {
	const skbLen = "r6 = *(u32 *)(r1 + 0)\n" // __sk_buff.len
	packet := func(n int) *waggle.RunOptions { return &waggle.RunOptions{Data: make([]byte, n)} }
	ctx := func(v uint64, n int) *waggle.RunOptions {
		b := make([]byte, max(n, 8))
		binary.LittleEndian.PutUint64(b, v)
		return &waggle.RunOptions{Context: b[:n]}
	}
	tp := func(v uint64) *waggle.RunOptions {
		b := make([]byte, 16)
		binary.LittleEndian.PutUint64(b[8:], v)
		return &waggle.RunOptions{Context: b}
	}
	for _, tc := range []struct {
		name    string
		typ     ebpf.ProgramType
		load    string
		good    []*waggle.RunOptions // returning v, the values 40, 50, 64...
		want    []uint32
		bad     *waggle.RunOptions // refused with EINVAL
		secret  *waggle.RunOptions // v == 60
		faulted *waggle.RunOptions // v == 61
	}{
		{"xdp", ebpf.XDP, "r2 = *(u32 *)(r1 + 4)\nr3 = *(u32 *)(r1 + 0)\nr6 = r2\nr6 -= r3\n",
			[]*waggle.RunOptions{packet(40), packet(50), packet(64)}, []uint32{40, 50, 64}, packet(10), packet(60), packet(61)},
		{"tc", ebpf.SchedCLS, skbLen,
			[]*waggle.RunOptions{packet(40), packet(50), packet(64)}, []uint32{40, 50, 64}, packet(10), packet(60), packet(61)},
		// skb->len starts after the Ethernet header for these two.
		{"socket_filter", ebpf.SocketFilter, skbLen,
			[]*waggle.RunOptions{packet(40), packet(50), packet(64)}, []uint32{26, 36, 50}, packet(10), packet(74), packet(75)},
		{"cgroup_skb", ebpf.CGroupSKB, skbLen,
			[]*waggle.RunOptions{packet(40), packet(50), packet(64)}, []uint32{26, 36, 50}, packet(10), packet(74), packet(75)},
		{"kprobe", ebpf.Kprobe, "r6 = *(u64 *)(r1 + 0)\n",
			[]*waggle.RunOptions{ctx(5, 168), ctx(7, 168)}, []uint32{5, 7}, ctx(5, 4096), ctx(60, 168), ctx(61, 168)},
		{"perf_event", ebpf.PerfEvent, "r6 = *(u64 *)(r1 + 0)\n",
			[]*waggle.RunOptions{ctx(5, 8), ctx(7, 8)}, []uint32{5, 7}, packet(20), ctx(60, 8), ctx(61, 8)},
		{"raw_tracepoint", ebpf.RawTracepoint, "r6 = *(u64 *)(r1 + 0)\n",
			[]*waggle.RunOptions{ctx(5, 8), ctx(7, 8)}, []uint32{5, 7}, ctx(5, 0), ctx(60, 8), ctx(61, 8)},
		{"tracepoint", ebpf.TracePoint, "r6 = *(u64 *)(r1 + 8)\n",
			[]*waggle.RunOptions{tp(5), tp(7)}, []uint32{5, 7}, packet(20), tp(60), tp(61)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
				"p": {Name: "p", Type: tc.typ, License: "GPL", Instructions: stateProgram(t, tc.load)},
			}}
			used, err := waggle.NewCollection(spec, &waggle.CollectionOptions{Unverified: true})
			if err != nil {
				t.Fatal(err)
			}
			defer used.Close()
			p := used.Programs["p"]
			good := func(i int) {
				t.Helper()
				fresh, err := waggle.NewCollection(spec, &waggle.CollectionOptions{Unverified: true})
				if err != nil {
					t.Fatal(err)
				}
				defer fresh.Close()
				want, werr := fresh.Programs["p"].Run(tc.good[i])
				got, err := p.Run(tc.good[i])
				if err != nil || werr != nil || got != want || got != tc.want[i] {
					t.Fatalf("good input %d: %d, %v; a fresh collection gives %d, %v; want %d", i, got, err, want, werr, tc.want[i])
				}
			}
			for round := range 3 {
				for i := range tc.good {
					good(i)
					if _, err := p.Run(tc.bad); !errors.Is(err, maps.EINVAL) {
						t.Fatalf("round %d: bad input: %v, want EINVAL", round, err)
					}
					good((i + 1) % len(tc.good))
					if ret, err := p.Run(tc.secret); err != nil || ret != 1 {
						t.Fatalf("secret: %d, %v", ret, err)
					}
					good(i)
					if _, err := p.Run(tc.faulted); !errors.Is(err, waggle.ErrMemory) {
						t.Fatalf("fault: %v, want a memory fault", err)
					}
					good(i)
				}
			}
		})
	}
	t.Run("hook", func(t *testing.T) {
		hook, err := progtype.NewHook[StateHook]("state")
		if err != nil {
			t.Fatal(err)
		}
		spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
			"p": {Name: "p", SectionName: "waggle/state", Type: ebpf.UnspecifiedProgram, License: "GPL", Instructions: stateProgram(t, "r6 = *(u64 *)(r1 + 0)\n")},
		}}
		coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{Unverified: true, Hooks: map[string]*progtype.Kind{"p": hook.Kind()}})
		if err != nil {
			t.Fatal(err)
		}
		defer coll.Close()
		exec := coll.Programs["p"].Exec()
		for round := range 3 {
			for _, v := range []uint64{5, 60, 7, 61, 5} {
				r0, err := hook.Run(exec, &StateHook{V: v}, progtype.Input{})
				switch v {
				case 60:
					if err != nil || r0 != 1 {
						t.Fatalf("round %d: secret: %d, %v", round, r0, err)
					}
				case 61:
					if !errors.Is(err, waggle.ErrMemory) {
						t.Fatalf("round %d: fault: %v", round, err)
					}
				default:
					if err != nil || r0 != v {
						t.Fatalf("round %d: %d: %d, %v", round, v, r0, err)
					}
				}
				if _, err := hook.Run(exec, &StateHook{V: 5}, progtype.Input{Data: []byte{1}}); !errors.Is(err, maps.EINVAL) {
					t.Fatalf("a hook run with a packet: %v, want EINVAL", err)
				}
			}
		}
	})
}

// TestRuns_xdpRuntFrame is the regression case of the XDP run state: a
// valid frame, a 10-byte frame (EINVAL), then valid frames again, which
// panicked with "slice bounds out of range [4096:0]".
func TestRuns_xdpRuntFrame(t *testing.T) {
	coll, err := waggle.LoadCollection("examples/counter/counter.o", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	var p *waggle.Program
	for _, q := range coll.Programs {
		p = q
	}
	frame := make([]byte, 64)
	for i, data := range [][]byte{frame, make([]byte, 10), frame, frame, make([]byte, 10), make([]byte, 10), frame} {
		_, err := p.Run(&waggle.RunOptions{Data: data})
		if (len(data) == 10) != errors.Is(err, maps.EINVAL) || (len(data) != 10 && err != nil) {
			t.Fatalf("run %d (%d bytes): %v", i, len(data), err)
		}
	}
}

// TestRuns_rawTracepointReused: a reused run checks ctx_in against the
// program as the first run does.
func TestRuns_rawTracepointReused(t *testing.T) {
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"p": {Name: "p", Type: ebpf.RawTracepoint, License: "GPL", Instructions: stateProgram(t, "r6 = *(u64 *)(r1 + 8)\n")},
	}}
	coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{Unverified: true})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	for i, n := range []int{16, 8, 16, 8} {
		_, err := coll.Programs["p"].Run(&waggle.RunOptions{Context: make([]byte, n)})
		if (n == 8) != errors.Is(err, maps.EINVAL) {
			t.Fatalf("run %d, ctx_in of %d bytes: %v", i, n, err)
		}
	}
}
