package waggle_test

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	casm "github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/maps"
)

// tailCaller is a program of type typ (and attach type at) that tail-calls
// slot 0 of the prog array "jt", and returns 1 when the slot is empty.
func tailCaller(name string, typ ebpf.ProgramType, at ebpf.AttachType) *ebpf.ProgramSpec {
	return &ebpf.ProgramSpec{Name: name, Type: typ, AttachType: at, License: "GPL", Instructions: casm.Instructions{
		casm.LoadMapPtr(casm.R2, 0).WithReference("jt"), casm.Mov.Imm(casm.R3, 0),
		casm.FnTailCall.Call(), casm.Mov.Imm(casm.R0, 1), casm.Return(),
	}}
}

func returns(name string, typ ebpf.ProgramType, at ebpf.AttachType, r0 int32) *ebpf.ProgramSpec {
	return &ebpf.ProgramSpec{Name: name, Type: typ, AttachType: at, License: "GPL", Instructions: casm.Instructions{
		casm.Mov.Imm(casm.R0, r0), casm.Return(),
	}}
}

func jtSpec(progs ...*ebpf.ProgramSpec) *ebpf.CollectionSpec {
	spec := &ebpf.CollectionSpec{
		Maps:     map[string]*ebpf.MapSpec{"jt": {Name: "jt", Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 2}},
		Programs: map[string]*ebpf.ProgramSpec{},
	}
	for _, p := range progs {
		spec.Programs[p.Name] = p
	}
	return spec
}

// TestProgArrayOwner: a prog array holds programs of one kind, as Linux's
// bpf_map_owner decides: the first program that uses or joins it sets the
// type, expected attach type and multi-buffer flag, and a program of
// another kind may neither use it nor join it (EINVAL), so that a tail
// call never hands an XDP program's context to a tc program. As root the
// same programs and updates go to the kernel, which must agree.
func TestProgArrayOwner(t *testing.T) {
	cases := []struct {
		name   string
		caller *ebpf.ProgramSpec // uses jt
		joins  *ebpf.ProgramSpec // put in jt's slot 0
		ok     bool
	}{
		{"same kind", tailCaller("caller", ebpf.XDP, ebpf.AttachXDP), returns("callee", ebpf.XDP, ebpf.AttachXDP, 2), true},
		{"tc into xdp", tailCaller("caller", ebpf.XDP, ebpf.AttachXDP), returns("callee", ebpf.SchedCLS, ebpf.AttachNone, 2), false},
		{"xdp into tc", tailCaller("caller", ebpf.SchedCLS, ebpf.AttachNone), returns("callee", ebpf.XDP, ebpf.AttachXDP, 2), false},
		{"attach type", tailCaller("caller", ebpf.XDP, ebpf.AttachXDP), returns("callee", ebpf.XDP, ebpf.AttachNone, 2), false},
		{"cgroup ingress into egress", tailCaller("caller", ebpf.CGroupSKB, ebpf.AttachCGroupInetEgress), returns("callee", ebpf.CGroupSKB, ebpf.AttachCGroupInetIngress, 1), false},
	}
	kernelErr := kernel.Supported()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The caller alone, then the callee joining from another
			// collection (Map.Update).
			a, err := waggle.NewCollection(jtSpec(c.caller), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if err := a.Programs["caller"].Prepare(); err != nil {
				t.Fatal(err)
			}
			b, err := waggle.NewCollection(jtSpec(c.joins), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			err = a.Maps["jt"].Update(uint32(0), b.Programs["callee"], waggle.UpdateAny)
			if got := err == nil; got != c.ok || (err != nil && !errors.Is(err, maps.EINVAL)) {
				t.Fatalf("joining: %v, want ok=%v (or EINVAL)", err, c.ok)
			}
			if c.ok {
				if ret, err := a.Programs["caller"].Run(&waggle.RunOptions{Data: smallFrame()}); err != nil || ret != 2 {
					t.Errorf("tail call: %d, %v; want the callee's 2", ret, err)
				}
			}
			// Both in one collection, the callee declared in the array:
			// the object does not load (as cilium/ebpf's NewCollection
			// fails to fill the array).
			spec := jtSpec(c.caller, c.joins)
			spec.Maps["jt"].Contents = []ebpf.MapKV{{Key: uint32(0), Value: "callee"}}
			_, err = waggle.NewCollection(spec, nil)
			if got := err == nil; got != c.ok {
				t.Errorf("declared: %v, want ok=%v", err, c.ok)
			}
			// Both using the array: the second in the object's order
			// (the caller, whose ownership is then refused) cannot be
			// prepared; the first can.
			user := tailCaller("user", c.joins.Type, c.joins.AttachType)
			two, err := waggle.NewCollection(jtSpec(c.caller, user), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer two.Close()
			errCaller, errUser := two.Programs["caller"].Prepare(), two.Programs["user"].Prepare()
			if c.ok != (errCaller == nil && errUser == nil) || (errCaller != nil && errUser != nil) {
				t.Errorf("two users: caller %v, user %v; want ok=%v, one of them refused otherwise", errCaller, errUser, c.ok)
			}

			if kernelErr != nil {
				t.Skipf("kernel comparison: %v", kernelErr)
			}
			if c.caller.Type == c.joins.Type && c.caller.AttachType != c.joins.AttachType && !kernelChecksAttachType(t) {
				t.Skip("kernel comparison: this kernel lets a prog array hold programs of different expected attach types (the check came with Linux 6.17 and its stable backports)")
			}
			for _, ps := range []*ebpf.ProgramSpec{c.caller, c.joins} {
				if err := kernel.ProgramSpecSupported(ps); err != nil {
					t.Skipf("kernel comparison: %v", err)
				}
			}
			kc, err := ebpf.NewCollection(jtSpec(c.caller))
			if err != nil {
				t.Fatal(err)
			}
			defer kc.Close()
			kb, err := ebpf.NewCollection(jtSpec(c.joins))
			if err != nil {
				t.Fatal(err)
			}
			defer kb.Close()
			kerr := kc.Maps["jt"].Update(uint32(0), kb.Programs["callee"], ebpf.UpdateAny)
			if got := kerr == nil; got != c.ok {
				t.Errorf("the kernel: joining: %v, want ok=%v", kerr, c.ok)
			}
			_, kerr = ebpf.NewCollection(spec)
			if got := kerr == nil; got != c.ok {
				t.Errorf("the kernel: declared: %v, want ok=%v", kerr, c.ok)
			}
		})
	}
}

// kernelChecksAttachType reports whether the kernel refuses to put a
// program of another expected attach type in a prog array (Linux 6.17 and
// the stable releases it was backported to).
func kernelChecksAttachType(t *testing.T) bool {
	t.Helper()
	kc, err := ebpf.NewCollection(jtSpec(tailCaller("caller", ebpf.XDP, ebpf.AttachXDP)))
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	defer kc.Close()
	kb, err := ebpf.NewCollection(jtSpec(returns("callee", ebpf.XDP, ebpf.AttachNone, 2)))
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	defer kb.Close()
	return kc.Maps["jt"].Update(uint32(0), kb.Programs["callee"], ebpf.UpdateAny) != nil
}
