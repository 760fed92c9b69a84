package progtype_test

import (
	"fmt"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/interp"
	"github.com/waggle-bpf/waggle/progtype"
)

// interpExec runs a rewritten program on the interpreter: r1 is the
// context, the run's memory its regions, the run the helpers' hook state.
func interpExec(p *interp.Program) progtype.Exec {
	return func(r *progtype.Run) (uint64, error) {
		var regions []interp.Region
		for _, reg := range r.Regions() {
			regions = append(regions, interp.Region(reg))
		}
		return interp.NewMachine().Run(p, &interp.Args{
			Regs:    [5]uint64{r.Ctx()},
			Regions: regions,
			Packet:  r.Packet(),
			State:   &helpers.State{Hook: r},
		})
	}
}

// A Go program defines its own hook point: the context is a Go struct,
// which programs see as the C struct with the same layout. Fields are
// read-only unless tagged rw; a byte slice becomes two pointers, as
// xdp_md's data and data_end.
func ExampleNewHook() {
	type Request struct {
		PID     uint32 `bpf:"pid"`
		Method  [8]byte
		Path    []byte
		Verdict int32 `bpf:"verdict,rw"`
	}
	hook, err := progtype.NewHook[Request]("http_request")
	if err != nil {
		panic(err)
	}
	for _, f := range hook.Kind().Context().Fields {
		fmt.Printf("%2d %-8s %d bytes\n", f.Off, f.Name, f.Size)
	}

	// Deny requests for /admin: set verdict to -1 and return 1.
	prog, err := asm.Parse(`
		r2 = *(u64 *)(r1 + 16)      // path
		r3 = *(u64 *)(r1 + 24)      // path_end
		r4 = r2
		r4 += 6
		if r4 > r3 goto allow
		r4 = *(u32 *)(r2 + 0)
		if r4 != 0x6d64612f goto allow  // "/adm"
		r4 = *(u16 *)(r2 + 4)
		if r4 != 0x6e69 goto allow      // "in"
		*(u32 *)(r1 + 32) = -1
		r0 = 1
		exit
	allow:
		r0 = 0
		exit`)
	if err != nil {
		panic(err)
	}
	p, err := hook.Kind().Rewrite(prog)
	if err != nil {
		panic(err)
	}
	ip, err := interp.Load(p.Insns, interp.Options{})
	if err != nil {
		panic(err)
	}
	for _, path := range []string{"/admin/users", "/index.html"} {
		req := Request{PID: 7, Path: []byte(path)}
		r0, err := hook.Run(interpExec(ip), &req, progtype.Input{})
		fmt.Println(path, r0, req.Verdict, err)
	}

	// A program may not write what the hook keeps read-only.
	bad, _ := asm.Parse("*(u32 *)(r1 + 0) = 1\nexit")
	_, err = hook.Kind().Rewrite(bad)
	fmt.Println(err)
	// Output:
	//  0 pid      4 bytes
	//  4 method   8 bytes
	// 16 path     8 bytes
	// 24 path_end 8 bytes
	// 32 verdict  4 bytes
	// /admin/users 1 -1 <nil>
	// /index.html 0 0 <nil>
	// instruction 0: write to http_request.pid: the field is read-only (tag it `bpf:",rw"` or set HookField.Writable)
}

// An XDP program runs on a packet as BPF_PROG_TEST_RUN runs it: the
// rewrite turns the 4-byte loads of xdp_md.data and data_end into 8-byte
// pointer loads, the run lays the packet out with 256 bytes of headroom,
// and Finish returns the verdict and the packet.
func ExampleKind_Rewrite() {
	k, _ := progtype.Lookup(progtype.XDP)
	prog, _ := asm.Parse(`
		r6 = r1
		r2 = -4
		call 44              // bpf_xdp_adjust_head(ctx, -4)
		r2 = *(u32 *)(r6 + 0)
		r3 = *(u32 *)(r6 + 4)
		r4 = r2
		r4 += 4
		r0 = 1               // XDP_DROP
		if r4 > r3 goto out
		r4 = 0xaabbccdd
		*(u32 *)(r2 + 0) = r4
		r0 = 3               // XDP_TX
	out:
		exit`)
	p, err := k.Rewrite(prog)
	if err != nil {
		panic(err)
	}
	for _, a := range p.Accesses {
		fmt.Printf("%d: %s became %s\n", a.Insn, a.Field, a.Rewritten)
	}
	table := helpers.Table{}
	for _, d := range k.Helpers() {
		table[d.ID] = d.Func
	}
	ip, _ := interp.Load(p.Insns, interp.Options{Helpers: table})
	run, err := p.NewRun(progtype.Input{Data: make([]byte, 14)})
	if err != nil {
		panic(err)
	}
	r0, err := interpExec(ip)(run)
	if err != nil {
		panic(err)
	}
	out, _ := run.Finish(r0)
	fmt.Printf("verdict %d, %d bytes: %x\n", out.Retval, len(out.Data), out.Data)
	// Output:
	// 3: xdp_md.data became r2 = *(u64 *)(r6 + 0x0)
	// 4: xdp_md.data_end became r3 = *(u64 *)(r6 + 0x8)
	// verdict 3, 18 bytes: ddccbbaa0000000000000000000000000000
}

// ContextAccesses follows the context pointer from r1 through moves,
// spills and calls; the verifier will supply the same list.
func ExampleContextAccesses() {
	prog, _ := asm.Parse(`
		*(u64 *)(r10 - 8) = r1     // spill the context
		r1 = 0
		call 5                     // bpf_ktime_get_ns clobbers r1-r5
		r6 = *(u64 *)(r10 - 8)     // fill it back
		r0 = *(u32 *)(r6 + 12)     // a context access
		r2 = r10
		r0 = *(u32 *)(r2 - 8)      // a stack access
		exit`)
	at, err := progtype.ContextAccesses(prog)
	fmt.Println(at, err)

	mixed, _ := asm.Parse(`
		r2 = r1
		if r0 == 0 goto l
		r2 = r10
	l:
		r0 = *(u32 *)(r2 - 8)
		exit`)
	_, err = progtype.ContextAccesses(mixed)
	fmt.Println(err)
	// Output:
	// [4] <nil>
	// instruction 3: cannot tell whether r2 points to the context: it does on some paths and not on others, and one rewrite cannot serve both (the kernel: same insn cannot be used with different pointers)
}
