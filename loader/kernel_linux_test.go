package loader_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/loader"
)

// kernelTypes are the program types the cross-check loads: those the kernel
// verifies without an attach target.
var kernelTypes = map[ebpf.ProgramType]bool{
	ebpf.SocketFilter: true, ebpf.SchedCLS: true, ebpf.SchedACT: true, ebpf.XDP: true,
	ebpf.Kprobe: true, ebpf.TracePoint: true, ebpf.RawTracepoint: true, ebpf.PerfEvent: true,
	ebpf.CGroupSKB: true,
}

// TestLoad_kernel loads every program of every test object into the running
// kernel twice: waggle's linked instructions, exactly as the loader made
// them (map indices turned into the fds of real maps), and, when
// cilium/ebpf can load the object, cilium/ebpf's own program. The kernel
// must accept waggle's, and both must translate to the same instructions
// (BPF_OBJ_GET_INFO_BY_FD's xlated code, map ids compared by map name).
// Root only; skips cleanly otherwise.
func TestLoad_kernel(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skip(err)
	}
	files, err := filepath.Glob("testdata/*.o")
	if err != nil || len(files) == 0 {
		t.Fatal("no test objects")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			obj, err := loader.LoadFile(path, loader.Options{ProgramType: overrides(path), DefaultType: defaultType(path)})
			if err != nil {
				t.Fatal(err)
			}
			var coll *ebpf.Collection
			refused := map[string]*ebpf.ProgramSpec{}
			if spec, err := ebpf.LoadCollectionSpec(path); err != nil {
				t.Logf("cilium/ebpf cannot parse it: %v", err)
			} else {
				for name, p := range spec.Programs {
					if t, ok := overrides(path)[p.SectionName]; ok {
						p.Type = t
					}
					if lp := obj.Program(name); lp != nil && lp.TypeFrom == loader.TypeFromTailCall {
						// The type and attach type of its caller: since
						// Linux 6.17 a tail call needs both to match.
						p.Type, p.AttachType = lp.Type, lp.AttachType
					}
					if p.Type == ebpf.UnspecifiedProgram {
						p.Type = defaultType(path)
					}
					if !kernelTypes[p.Type] || kernel.ProgramSpecSupported(p) != nil {
						delete(spec.Programs, name)
					}
					if _, ok := loader.Unresolvable[filepath.Base(path)][name]; ok {
						refused[name] = p
						delete(spec.Programs, name)
					}
				}
				coll, err = ebpf.NewCollection(spec)
				if err != nil {
					// Legacy maps of maps and iproute2 definitions: give
					// cilium/ebpf the map specs the loader made.
					t.Logf("cilium/ebpf cannot load it: %v", err)
					for name := range spec.Maps {
						spec.Maps[name] = obj.Maps[obj.MapIndex(name)].Copy()
					}
					coll, err = ebpf.NewCollection(spec)
					if err != nil {
						t.Logf("... nor with the loader's map specs: %v", err)
					} else {
						t.Log("... but it can with the loader's map specs")
					}
				}
				if coll != nil {
					defer coll.Close()
				}
			}
			fds, closeMaps := mapFDs(t, obj, coll)
			defer closeMaps()
			loaded, compared := 0, 0
			for _, p := range obj.Programs {
				if !kernelTypes[p.Type] {
					continue
				}
				if p.Err != nil {
					// A program the loader fails: the kernel refuses
					// what cilium/ebpf makes of it.
					if _, ok := loader.Unresolvable[filepath.Base(path)][p.Name]; !ok {
						t.Errorf("%s: %v", p.Name, p.Err)
						continue
					}
					ps := refused[p.Name]
					if ps == nil {
						t.Errorf("%s: not in cilium/ebpf's spec", p.Name)
						continue
					}
					if kp, err := ebpf.NewProgram(ps); err == nil {
						kp.Close()
						t.Errorf("%s: the kernel loads what the loader refuses (%v)", p.Name, p.Err)
					} else {
						t.Logf("%s: refused by both: %s", p.Name, strings.SplitN(err.Error(), "\n", 2)[0])
					}
					continue
				}
				if hasCallback(p) {
					// The kernel wants BTF func_info for callbacks, and
					// kernel.Load passes no BTF.
					t.Logf("%s: has callbacks, skipped", p.Name)
					continue
				}
				if err := kernel.HelpersSupported(kernel.ProgType(p.Type), p.Insns); err != nil {
					t.Logf("%s: skipped: %v", p.Name, err)
					continue
				}
				kp, err := kernel.Load(withFDs(t, p.Insns, fds), kernel.LoadOptions{
					Type:               kernel.ProgType(p.Type),
					License:            p.License,
					Name:               p.Name,
					ExpectedAttachType: uint32(p.AttachType),
					Flags:              p.Flags,
				})
				if err != nil {
					t.Errorf("%s: the kernel rejects waggle's program: %v", p.Name, err)
					continue
				}
				loaded++
				mine, err := kp.Xlated()
				if err != nil {
					t.Fatal(err)
				}
				var cp *ebpf.Program
				if coll != nil {
					cp = coll.Programs[p.Name]
				}
				if cp == nil || slices.ContainsFunc(p.Externs, func(e loader.Extern) bool { return e.Kind == loader.Ksym }) {
					// cilium/ebpf writes a kernel symbol's address,
					// which waggle cannot know and leaves 0.
					kp.Close()
					continue
				}
				compared++
				info, err := cp.Info()
				if err != nil {
					t.Fatal(err)
				}
				theirs, err := info.Instructions()
				if err != nil {
					t.Fatal(err)
				}
				a, b := describe(t, isaToAsm(t, mine)), describe(t, theirs)
				if len(a) != len(b) {
					t.Errorf("%s: %d translated instructions, cilium/ebpf's program %d", p.Name, len(a), len(b))
				}
				for i := range min(len(a), len(b)) {
					if a[i] != b[i] {
						t.Errorf("%s: translated instruction %d: waggle's %s, cilium/ebpf's %s", p.Name, i, a[i], b[i])
						break
					}
				}
				kp.Close()
			}
			t.Logf("%d programs loaded, %d compared with cilium/ebpf's", loaded, compared)
		})
	}
}

// overrides gives the iproute2 objects' programs the type tc gives them.
func overrides(path string) map[string]ebpf.ProgramType {
	switch filepath.Base(path) {
	case "iproute2.o":
		return map[string]ebpf.ProgramType{"ingress": ebpf.SchedCLS, "1/0": ebpf.SchedCLS, "1/1": ebpf.SchedCLS}
	case "iproute2_old.o":
		return map[string]ebpf.ProgramType{"2/0": ebpf.SchedCLS}
	}
	return nil
}

// defaultType is the type of the programs whose sections name none.
func defaultType(path string) ebpf.ProgramType {
	switch filepath.Base(path) {
	case "ovs_oldclang.o":
		return ebpf.SchedCLS
	case "textonly.o", "textonly_nobtf.o", "inherit.o":
		return ebpf.XDP
	}
	return ebpf.UnspecifiedProgram
}

// mapFDs returns a kernel map for every map of obj: cilium/ebpf's when it
// loaded the collection (so both programs refer to the same maps), else
// one made from the loader's MapSpec.
func mapFDs(t *testing.T, obj *loader.Object, coll *ebpf.Collection) ([]int, func()) {
	t.Helper()
	var made []*ebpf.Map
	fds := make([]int, len(obj.Maps))
	for i, ms := range obj.Maps {
		if coll != nil {
			if m := coll.Maps[ms.Name]; m != nil {
				fds[i] = m.FD()
				continue
			}
		}
		m, err := ebpf.NewMap(ms)
		if err != nil {
			t.Fatalf("map %s: %v", ms.Name, err)
		}
		made = append(made, m)
		fds[i] = m.FD()
	}
	return fds, func() {
		for _, m := range made {
			m.Close()
		}
	}
}

// withFDs does what the runtime will do with real maps: map indices become
// file descriptors (BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE).
func withFDs(t *testing.T, prog []isa.Instruction, fds []int) []isa.Instruction {
	t.Helper()
	out := append([]isa.Instruction(nil), prog...)
	for i, ins := range out {
		if !ins.IsLoadImm64() {
			continue
		}
		switch ins.Src {
		case isa.PseudoMapIdx:
			out[i].Src = isa.PseudoMapFD
		case isa.PseudoMapIdxValue:
			out[i].Src = isa.PseudoMapValue
		default:
			continue
		}
		out[i].Imm = int32(fds[ins.Imm])
	}
	return out
}

func isaToAsm(t *testing.T, prog []isa.Instruction) asm.Instructions {
	t.Helper()
	insns, err := asm.AppendInstructions(nil, bytes.NewReader(isa.Encode(prog)), binary.LittleEndian, "linux")
	if err != nil {
		t.Fatal(err)
	}
	return insns
}

// describe prints translated instructions with map ids replaced by names.
func describe(t *testing.T, insns asm.Instructions) []string {
	t.Helper()
	out := make([]string, len(insns))
	for i, ins := range insns {
		if ins.IsLoadFromMap() {
			name, err := mapName(ebpf.MapID(uint32(ins.Constant)))
			if err != nil {
				t.Fatal(err)
			}
			out[i] = fmt.Sprintf("%v map %s + %d", ins.OpCode, name, ins.Constant>>32)
			continue
		}
		ins.Metadata = asm.Metadata{}
		out[i] = fmt.Sprintf("%v dst %v src %v off %d imm %d", ins.OpCode, ins.Dst, ins.Src, ins.Offset, ins.Constant)
	}
	return out
}

func mapName(id ebpf.MapID) (string, error) {
	m, err := ebpf.NewMapFromID(id)
	if err != nil {
		return "", fmt.Errorf("map id %d: %w", id, err)
	}
	defer m.Close()
	info, err := m.Info()
	if err != nil {
		return "", errors.Join(fmt.Errorf("map id %d", id), err)
	}
	return info.Name, nil
}

func hasCallback(p *loader.Program) bool {
	for _, ins := range p.Insns {
		if ins.IsLoadImm64() && ins.Src == isa.PseudoFunc {
			return true
		}
	}
	return false
}
