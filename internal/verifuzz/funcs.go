package verifuzz

import (
	"fmt"
	"slices"

	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/loader"
)

// progFuncs returns the functions of p with their BTF, when p takes the
// address of a callback (a lddw of BPF_PSEUDO_FUNC, for bpf_loop), which
// Linux and waggle's verifier allow only in programs with BTF func info
// (check_ld_imm); nil otherwise, so that other programs load exactly as
// before. The entry function is global, as clang makes it, and every
// other function static, as bpf-to-bpf callees and callbacks are: a
// global one would be verified on its own. Each has the prototype "int
// f(void)", which the verifier does not check for static functions.
func progFuncs(p *fuzzgen.PtrProgram) []loader.Func {
	starts := []int{0}
	callback := false
	for pc := 0; pc < len(p.Insns); pc++ {
		ins := p.Insns[pc]
		switch {
		case ins.IsLocalCall():
			starts = append(starts, pc+1+int(ins.Imm))
		case ins.IsLoadImm64() && ins.Src == isa.PseudoFunc:
			starts = append(starts, pc+1+int(ins.Imm))
			callback = true
		}
		if ins.IsLoadImm64() {
			pc++
		}
	}
	if !callback {
		return nil
	}
	slices.Sort(starts)
	starts = slices.Compact(starts)
	proto := &btf.FuncProto{Return: &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}}
	funcs := make([]loader.Func, len(starts))
	for i, s := range starts {
		fn := &btf.Func{Name: fmt.Sprintf("f%d", s), Type: proto, Linkage: btf.StaticFunc}
		if i == 0 {
			fn.Name, fn.Linkage = "prog", btf.GlobalFunc
		}
		funcs[i] = loader.Func{Name: fn.Name, Start: s, BTF: fn}
	}
	return funcs
}

// funcInfo returns the BTF of funcs and their struct bpf_func_info
// records ({insn_off, type_id}, little-endian), for BPF_PROG_LOAD.
func funcInfo(funcs []loader.Func) (*btf.Builder, []byte, error) {
	b, err := btf.NewBuilder(nil, nil)
	if err != nil {
		return nil, nil, err
	}
	var recs []byte
	for _, f := range funcs {
		id, err := b.Add(f.BTF)
		if err != nil {
			return nil, nil, fmt.Errorf("BTF of %s: %w", f.Name, err)
		}
		for _, v := range []uint32{uint32(f.Start), uint32(id)} {
			recs = append(recs, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
		}
	}
	return b, recs, nil
}
