//go:build linux

package mapjson

import (
	"bytes"
	"fmt"
	"os/exec"
	"sort"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/kernel"
)

// TestFormat_bpftool loads the test object into the kernel, fills its maps
// with the sample elements, and requires that `bpftool map dump id N -j`
// print every map exactly as AppendEntry formats the same bytes: hex,
// per-CPU values and the BTF-formatted key and value, number for number.
func TestFormat_bpftool(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("kernel comparison: %v", err)
	}
	bpftool, err := exec.LookPath("bpftool")
	if err != nil {
		t.Skip("bpftool is not installed (apt-get install bpftool)")
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	spec := loadSpec(t)
	all := samples(t, spec, cpus)
	kc, err := ebpf.NewCollection(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	names := make([]string, 0, len(spec.Maps))
	for name := range spec.Maps {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			km := kc.Maps[name]
			m := describe(spec.Maps[name], cpus)
			for _, e := range all[name] {
				var err error
				if m.PerCPU() {
					var vs [][]byte
					for cpu := range cpus {
						vs = append(vs, m.cpuValue(e.value, cpu))
					}
					err = km.Update(e.key, vs, ebpf.UpdateAny)
				} else {
					err = km.Update(e.key, e.value, ebpf.UpdateAny)
				}
				if err != nil {
					t.Fatalf("update % x: %v", e.key, err)
				}
			}
			// What the kernel holds, in its order, formatted here.
			var held []element
			var key any // nil: the first key
			for {
				next, err := km.NextKeyBytes(key)
				if err != nil {
					t.Fatal(err)
				}
				if next == nil {
					break
				}
				v, err := km.LookupBytes(next)
				if err != nil {
					t.Fatal(err)
				}
				held, key = append(held, element{next, v}), next
			}
			ours := formatAll(t, m, held)
			info, err := km.Info()
			if err != nil {
				t.Fatal(err)
			}
			id, _ := info.ID()
			out, err := exec.Command(bpftool, "map", "dump", "id", fmt.Sprint(id), "-j").Output()
			if err != nil {
				t.Fatalf("bpftool: %v", err)
			}
			theirs, err := ParseNode(bytes.TrimSpace(out))
			if err != nil {
				t.Fatalf("bpftool's output: %v\n%s", err, out)
			}
			mine, err := ParseNode(ours)
			if err != nil {
				t.Fatalf("our output: %v\n%s", err, ours)
			}
			if path, got, want, same := diff(mine, theirs); !same {
				t.Fatalf("at %s: waggle prints %s, bpftool %s\nwaggle: %s\nbpftool: %s", path, got, want, ours, out)
			}
			if len(held) == 0 {
				t.Fatal("no elements compared")
			}
			t.Logf("%d elements agree", len(held))
		})
	}
}
