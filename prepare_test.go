package waggle_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/verifier"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/prepare/prepare.c -o testdata/prepare/prepare.o

const prepareObj = "testdata/prepare/prepare.o"

// slotFrame is a 64-byte packet whose first byte selects entry's tail call.
func slotFrame(slot byte) []byte {
	b := make([]byte, 64)
	b[0] = slot
	return b
}

// TestCollection_perProgram: programs are prepared one by one, as Linux
// loads them. One that cannot be prepared fails only itself, the runs whose
// tail calls reach it, and prog array updates with it; its error names it.
func TestCollection_perProgram(t *testing.T) {
	coll, err := waggle.LoadCollection(prepareObj, nil)
	if err != nil {
		t.Fatalf("one bad program failed the collection: %v", err)
	}
	defer coll.Close()
	if len(coll.Programs) != 5 {
		t.Fatalf("programs %v", coll.Programs)
	}
	for _, tc := range []struct {
		prog    string
		slot    byte
		want    uint32 // XDP verdict
		wantErr string // the error names the program that cannot be prepared
		errProg string
	}{
		{prog: "entry", slot: 0, want: 1}, // tail call into good: XDP_DROP
		{prog: "entry", slot: 3, want: 2}, // empty slot: the tail call falls through, XDP_PASS
		{prog: "entry", slot: 1, wantErr: "xdp programs may not call bpf_skb_load_bytes", errProg: "bad"}, // tail call into bad
		{prog: "good", want: 1},  // typed by entry's prog array
		{prog: "other", want: 3}, // XDP_TX
		{prog: "bad", wantErr: "xdp programs may not call bpf_skb_load_bytes", errProg: "bad"},        // asked for
		{prog: "untyped", wantErr: `section "from-netdev" names no program type`, errProg: "untyped"}, // no type at all
		{prog: "entry", slot: 0, want: 1}, // the failed tail call did not break the program
	} {
		ret, _, err := coll.Programs[tc.prog].Test(slotFrame(tc.slot))
		if tc.wantErr == "" {
			if err != nil || ret != tc.want {
				t.Errorf("%s on slot %d: %d, %v; want %d", tc.prog, tc.slot, ret, err, tc.want)
			}
			continue
		}
		var pe *waggle.PrepareError
		if !errors.As(err, &pe) || pe.Program != tc.errProg || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "program "+tc.errProg) {
			t.Errorf("%s on slot %d: %v; want the PrepareError of %s (%q)", tc.prog, tc.slot, err, tc.errProg, tc.wantErr)
		}
	}
	// Prepare says the same, every time; the accessors of a program that
	// cannot run are empty.
	bad := coll.Programs["bad"]
	if err1, err2 := bad.Prepare(), bad.Prepare(); err1 == nil || err1 != err2 {
		t.Errorf("Prepare: %v, then %v", err1, err2)
	}
	if bad.Instructions() != nil || bad.Kind() != nil {
		t.Error("a program that cannot be prepared has instructions or a kind")
	}
	if coll.Programs["good"].Type() != ebpf.XDP || coll.Programs["untyped"].Type() != ebpf.UnspecifiedProgram {
		t.Errorf("types: good %s, untyped %s", coll.Programs["good"].Type(), coll.Programs["untyped"].Type())
	}
	// Linux takes only a loaded program's descriptor into a prog array.
	if err := coll.Maps["jmp"].Update(uint32(2), bad, waggle.UpdateAny); !errors.As(err, new(*waggle.PrepareError)) {
		t.Errorf("prog array update with a program that cannot be prepared: %v", err)
	}
	if err := coll.Maps["jmp"].Update(uint32(2), coll.Programs["other"], waggle.UpdateAny); err != nil {
		t.Fatal(err)
	}
	if ret, _, err := coll.Programs["entry"].Test(slotFrame(2)); err != nil || ret != 3 {
		t.Errorf("entry into other: %d, %v", ret, err)
	}

	// A type for the programs that have none.
	typed, err := waggle.LoadCollection(prepareObj, &waggle.CollectionOptions{DefaultProgramType: ebpf.SchedCLS})
	if err != nil {
		t.Fatal(err)
	}
	defer typed.Close()
	if p := typed.Programs["untyped"]; p.Type() != ebpf.SchedCLS || p.Prepare() != nil {
		t.Errorf("untyped with a default: %s, %v", p.Type(), p.Prepare())
	}
	if p := typed.Programs["good"]; p.Type() != ebpf.XDP {
		t.Errorf("good: %s; the type of its caller comes before the default", p.Type())
	}
}

// TestCollection_perProgramKernel loads the object into Linux with
// cilium/ebpf, one program at a time as waggle prepares them: the kernel
// refuses bad and untyped (no type) and loads the rest, and the programs
// both load give the same verdicts.
func TestCollection_perProgramKernel(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("kernel comparison: %v", err)
	}
	spec, err := ebpf.LoadCollectionSpec(prepareObj)
	if err != nil {
		t.Fatal(err)
	}
	coll, err := waggle.LoadCollection(prepareObj, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	jmp, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer jmp.Close()
	kprogs := map[string]*ebpf.Program{}
	for name, ps := range spec.Programs {
		ps = ps.Copy()
		ps.Type = coll.Programs[name].Type() // good and bad take entry's type, as waggle gives it
		if ps.Type == ebpf.XDP {
			ps.AttachType = ebpf.AttachXDP
		}
		if name != "bad" && name != "untyped" {
			if err := kernel.ProgramSpecSupported(ps); err != nil {
				t.Skipf("kernel comparison: %v", err)
			}
		}
		if err := ps.Instructions.AssociateMap("jmp", jmp); err != nil && name == "entry" {
			t.Fatal(err)
		}
		kp, kerr := ebpf.NewProgram(ps)
		werr := coll.Programs[name].Prepare()
		if (kerr == nil) != (werr == nil) {
			t.Errorf("%s: the kernel says %v, waggle %v", name, kerr, werr)
		}
		if kerr == nil {
			kprogs[name] = kp
			defer kp.Close()
		}
	}
	if kprogs["good"] == nil || kprogs["entry"] == nil {
		t.Fatal("the kernel refused good or entry")
	}
	if err := jmp.Put(uint32(0), kprogs["good"]); err != nil {
		t.Fatal(err)
	}
	for _, slot := range []byte{0, 3} {
		kret, _, err := kprogs["entry"].Test(slotFrame(slot))
		if err != nil {
			t.Fatal(err)
		}
		wret, _, err := coll.Programs["entry"].Test(slotFrame(slot))
		if err != nil || wret != kret {
			t.Errorf("entry on slot %d: waggle %d, %v; the kernel %d", slot, wret, err, kret)
		}
	}
}

// TestCollection_externs: a program that refers to a map another object
// defines (declared extern) cannot be prepared, and its error names the
// symbol; the programs of the object that refer to nothing undefined run.
func TestCollection_externs(t *testing.T) {
	coll, err := waggle.LoadCollection("loader/testdata/externs.o", nil)
	if err != nil {
		t.Fatalf("one unresolvable map reference failed the collection: %v", err)
	}
	defer coll.Close()
	err = coll.Programs["uses_extern_map"].Prepare()
	var pe *waggle.PrepareError
	if !errors.As(err, &pe) || pe.Program != "uses_extern_map" || !strings.Contains(err.Error(), `"shared_counts"`) {
		t.Errorf("uses_extern_map: %v, want a PrepareError naming shared_counts", err)
	}
	if ret, _, err := coll.Programs["uses_own_map"].Test(make([]byte, 64)); err != nil || ret != 2 {
		t.Errorf("uses_own_map: %d, %v; want XDP_PASS", ret, err)
	}
	if ret, _, err := coll.Programs["uses_asm_symbol"].Test(make([]byte, 64)); err != nil || ret != 2 {
		t.Errorf("uses_asm_symbol: %d, %v; want XDP_PASS (the symbol is 0)", ret, err)
	}
}

// TestCollection_attachTypes: a program whose section names neither its
// type nor its attach type (Cilium v1.10's "connect4") prepares and runs
// with both given, as bpftool's "prog load ... type cgroup/connect4" gives
// them, and not with the type alone (writing user_ip4 needs an IPv4
// connect or sendmsg attach type), as in the kernel.
func TestCollection_attachTypes(t *testing.T) {
	const obj = "loader/testdata/untyped.o"
	types := map[string]ebpf.ProgramType{"connect4": ebpf.CGroupSockAddr}
	attach := map[string]ebpf.AttachType{"connect4": ebpf.AttachCGroupInet4Connect}
	coll, err := waggle.LoadCollection(obj, &waggle.CollectionOptions{ProgramTypes: types, AttachTypes: attach})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	p := coll.Programs["sock4_connect"]
	if err := p.Prepare(); err != nil {
		t.Fatalf("with its attach type: %v", err)
	}
	// struct bpf_sock_addr: user_ip4 at 4, user_port at 24, family 28.
	ctx := make([]byte, 72)
	ctx[24], ctx[25] = 0, 80
	ctx[28] = 2
	out := make([]byte, len(ctx))
	if ret, err := p.Run(&waggle.RunOptions{Context: ctx, ContextOut: out}); err != nil || ret != 1 {
		t.Fatalf("run: %d, %v", ret, err)
	}
	if got := out[4:8]; string(got) != "\x0a\x00\x00\x01" {
		t.Errorf("user_ip4 %x after the run, want 0a000001", got)
	}

	typeOnly, err := waggle.LoadCollection(obj, &waggle.CollectionOptions{ProgramTypes: types})
	if err != nil {
		t.Fatal(err)
	}
	defer typeOnly.Close()
	werr := typeOnly.Programs["sock4_connect"].Prepare()
	if werr == nil || !strings.Contains(werr.Error(), "attach type") {
		t.Errorf("without its attach type: %v, want an error naming the attach type", werr)
	}
	if _, err := waggle.LoadCollection(obj, &waggle.CollectionOptions{AttachTypes: map[string]ebpf.AttachType{"connect6": ebpf.AttachCGroupInet6Connect}}); err == nil || !strings.Contains(err.Error(), `"connect6"`) {
		t.Errorf("an attach type for a section the object lacks: %v, want an error naming it", err)
	}

	if err := kernel.Supported(); err != nil {
		t.Skipf("kernel comparison: %v", err)
	}
	for _, tc := range []struct {
		attach ebpf.AttachType
		loads  bool
	}{{ebpf.AttachCGroupInet4Connect, true}, {ebpf.AttachNone, false}} {
		spec, err := ebpf.LoadCollectionSpec(obj)
		if err != nil {
			t.Fatal(err)
		}
		ps := spec.Programs["sock4_connect"]
		ps.Type, ps.AttachType = ebpf.CGroupSockAddr, tc.attach
		kp, err := ebpf.NewProgram(ps)
		if err == nil {
			kp.Close()
		}
		if (err == nil) != tc.loads {
			t.Errorf("attach type %s: the kernel loads it: %v, want %v (%v)", tc.attach, err == nil, tc.loads, err)
		}
	}
}

// TestPrepareContext: a preparation whose context is done fails with the
// context's error, not a verdict, and the program stays unprepared: runs
// give that error.
func TestPrepareContext(t *testing.T) {
	coll, err := waggle.LoadCollection("examples/counter/counter.o", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	var prog *waggle.Program
	for _, p := range coll.Programs {
		prog = p
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = prog.PrepareContext(ctx)
	var ve *verifier.Error
	if !errors.Is(err, context.Canceled) || errors.As(err, &ve) {
		t.Fatalf("PrepareContext(canceled) = %v; want context.Canceled and no verdict", err)
	}
	if _, err := prog.Run(&waggle.RunOptions{Data: make([]byte, 64)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after a stopped preparation: %v", err)
	}
}
