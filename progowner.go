package waggle

import (
	"fmt"
	"sync"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/loader"
	"github.com/waggle-bpf/waggle/maps"
)

// bpfFXDPHasFrags is BPF_F_XDP_HAS_FRAGS: an XDP program that handles
// multi-buffer packets ("xdp.frags" sections).
const bpfFXDPHasFrags = 1 << 5

// bpfFSleepable is BPF_F_SLEEPABLE: a program that may sleep ("uprobe.s",
// "lsm.s" sections).
const bpfFSleepable = 1 << 4

// progOwner is what Linux records of the first program that uses a prog
// array or joins it (struct bpf_map_owner, __bpf_prog_map_compatible in
// kernel/bpf/core.c): every other program that uses or joins the array
// must have the same type, the same expected attach type and the same
// multi-buffer flag, so that a tail call never hands a program a context of
// another kind. Linux answers EINVAL otherwise, when loading a program that
// refers to the array or when updating the array.
type progOwner struct {
	typ    ebpf.ProgramType
	attach ebpf.AttachType
	frags  bool
	by     string // the program that made it the owner
}

func ownerOf(lp *loader.Program) progOwner {
	return progOwner{typ: lp.Type, attach: lp.AttachType, frags: lp.Flags&bpfFXDPHasFrags != 0, by: lp.Name}
}

// owners holds the owner of each prog array of a collection.
type owners struct {
	mu sync.Mutex
	m  map[maps.ProgramArray]progOwner
}

// claim makes o the owner of pa if it has none, and otherwise checks that
// o is compatible with the owner; mapName names pa in the error.
func (os *owners) claim(pa maps.ProgramArray, mapName string, o progOwner) error {
	os.mu.Lock()
	defer os.mu.Unlock()
	if os.m == nil {
		os.m = map[maps.ProgramArray]progOwner{}
	}
	cur, ok := os.m[pa]
	if !ok {
		os.m[pa] = o
		return nil
	}
	if cur.typ == o.typ && cur.attach == o.attach && cur.frags == o.frags {
		return nil
	}
	return fmt.Errorf("prog array %s holds %s programs (since %s used or joined it) and %s is %s; Linux refuses the mix (%w), so that a tail call never runs a program with another kind's context",
		mapName, cur.describe(), cur.by, o.by, o.describe(), maps.EINVAL)
}

func (o progOwner) describe() string {
	s := fmt.Sprintf("%s, expected attach type %s", o.typ, o.attach)
	if o.frags {
		s += ", multi-buffer (xdp.frags)"
	}
	return s
}

// progArraysUsed returns the indices in obj.Maps of the prog arrays lp's
// instructions refer to, in order, once each.
func progArraysUsed(obj *loader.Object, lp *loader.Program) []int {
	var out []int
	seen := map[int32]bool{}
	for k := 0; k+1 < len(lp.Insns); k++ {
		ins := lp.Insns[k]
		if !ins.IsLoadImm64() {
			continue
		}
		k++
		if ins.Src != isa.PseudoMapIdx || ins.Imm < 0 || int(ins.Imm) >= len(obj.Maps) || seen[ins.Imm] {
			continue
		}
		seen[ins.Imm] = true
		if obj.Maps[ins.Imm].Type == ebpf.ProgramArray {
			out = append(out, int(ins.Imm))
		}
	}
	return out
}
