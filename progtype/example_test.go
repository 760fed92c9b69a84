package progtype_test

import (
	"fmt"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/progtype"
)

// interpExec runs a rewritten program on the interpreter: r1 is the
// context, the run's memory its regions, the run the helpers' hook state.
func interpExec(p engine.Program) progtype.Exec {
	return func(r *progtype.Run) (uint64, error) {
		var regions []engine.Region
		for _, reg := range r.Regions() {
			regions = append(regions, engine.Region(reg))
		}
		return p.Engine().NewMachine().Run(p, &engine.Args{
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
	ip, err := checked.Load(p.Insns, engine.Options{ContextVariants: p.Variants, ContextFaults: p.Faults})
	if err != nil {
		panic(err)
	}
	for _, path := range []string{"/admin/users", "/index.html"} {
		req := Request{PID: 7, Path: []byte(path)}
		r0, err := hook.Run(interpExec(ip), &req, progtype.Input{})
		fmt.Println(path, r0, req.Verdict, err)
	}

	// A program may not write what the hook keeps read-only: the verifier
	// finds the access, and its conversion refuses it.
	bad, _ := asm.Parse("*(u32 *)(r1 + 0) = 1\nexit")
	_, err = hook.Kind().Convert(bad, []int{0})
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

// xdpExample adjusts the packet's head and writes 4 bytes at its new
// start: slots 3 and 4 load xdp_md.data and data_end.
const xdpExample = `
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
		exit`

// An XDP program runs on a packet as BPF_PROG_TEST_RUN runs it: the
// rewrite turns the 4-byte loads of xdp_md.data and data_end, which the
// verifier found (verifier.Result.CtxAccesses), into 8-byte pointer loads,
// the run lays the packet out with 256 bytes of headroom, and Finish
// returns the verdict and the packet.
func ExampleKind_Convert() {
	k, _ := progtype.Lookup(progtype.XDP)
	prog, _ := asm.Parse(xdpExample)
	p, err := k.Convert(prog, []int{3, 4})
	if err != nil {
		panic(err)
	}
	for _, a := range p.Accesses {
		fmt.Printf("%d: %s became %s\n", a.Insn, a.Field, a.Rewritten)
	}
	ip, _ := checked.Load(p.Insns, engine.Options{Helpers: k.HelperTable("GPL").Funcs})
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

// Without the verifier, which loads and stores reach the context is
// decided at run time: every access whose conversion changes it runs
// converted when its base holds the context (Variants), and one the
// context's rules refuse faults there (Faults). The store at slot 10 goes
// to the packet here; through the context it would write xdp_md.data,
// which is read-only.
func ExampleKind_Rewrite() {
	k, _ := progtype.Lookup(progtype.XDP)
	prog, _ := asm.Parse(xdpExample)
	p, _ := k.Rewrite(prog)
	for _, pc := range []int{3, 4} {
		fmt.Printf("%d: on the context %s\n", pc, p.Variants[pc])
	}
	fmt.Printf("10: on the context, %v\n", p.Faults[10])
	ip, _ := checked.Load(p.Insns, engine.Options{Helpers: k.HelperTable("GPL").Funcs, ContextVariants: p.Variants, ContextFaults: p.Faults})
	run, _ := p.NewRun(progtype.Input{Data: make([]byte, 14)})
	r0, err := interpExec(ip)(run)
	if err != nil {
		panic(err)
	}
	out, _ := run.Finish(r0)
	fmt.Printf("verdict %d, %d bytes: %x\n", out.Retval, len(out.Data), out.Data)
	// Output:
	// 3: on the context r2 = *(u64 *)(r6 + 0x0)
	// 4: on the context r3 = *(u64 *)(r6 + 0x8)
	// 10: on the context, instruction 10: write to xdp_md.data: xdp_md is read-only
	// verdict 3, 18 bytes: ddccbbaa0000000000000000000000000000
}
