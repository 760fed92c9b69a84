package kernel

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/internal/ktest"
)

// TestAttachFile_objects attaches every program of the examples, and of
// xdp-tools' objects where the package is installed, whose section names
// a hook on an interface (xdp, tc, tcx, socket) to a veth, pins it, and
// detaches it. It logs a table: what attached, pinned and detached, and
// why the rest did not. An example that fails is an error; xdp-tools'
// objects only say why (some need libxdp's loader: freplace programs, or
// map definitions cilium/ebpf alone does not read, until attach loads
// through waggle's normalising loader).
func TestAttachFile_objects(t *testing.T) {
	mustSupported(t)
	examples, _ := filepath.Glob("../examples/*/*.o")
	xdptools, _ := filepath.Glob("/usr/lib/*/bpf/*.o")
	v := ktest.NewVeth(t)
	fs := ktest.BPFFS(t)
	type row struct{ obj, prog, result string }
	var rows []row
	ok := map[bool]int{}
	total := map[bool]int{}
	for _, obj := range append(examples, xdptools...) {
		example := strings.HasPrefix(obj, "../examples/")
		spec, err := ebpf.LoadCollectionSpec(obj)
		if err != nil {
			rows = append(rows, row{obj, "*", "not read by cilium/ebpf: " + err.Error()})
			total[example]++
			if example {
				t.Errorf("%s: %v", obj, err)
			}
			continue
		}
		names := make([]string, 0, len(spec.Programs))
		for n := range spec.Programs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			h, err := ParseSection(spec.Programs[name].SectionName)
			if err != nil {
				continue
			}
			switch h.Kind {
			case HookXDP, HookSocket:
			case HookTCX:
				if h.Direction == DirectionNone {
					h.Direction = Ingress
				}
			default:
				continue
			}
			h.Interface = v.Host
			total[example]++
			result := "attached, pinned, detached"
			func() {
				a, err := AttachFile(obj, AttachOptions{Program: name, Hook: h})
				if err != nil {
					result = fmt.Sprintf("%v", err)
					return
				}
				defer a.Close()
				if h.Kind == HookSocket {
					result = "attached, detached (a socket filter is not pinned)"
					return
				}
				dir := filepath.Join(fs, fmt.Sprintf("o%d", len(rows)))
				if _, err := a.Pin(dir); err != nil {
					result = "pin: " + err.Error()
					return
				}
				a.Close()
				if _, err := Detach(dir); err != nil {
					result = "detach: " + err.Error()
				}
			}()
			if strings.HasPrefix(result, "attached") {
				ok[example]++
			} else if example {
				t.Errorf("%s %s: %s", obj, name, result)
			}
			rows = append(rows, row{obj, name, result})
		}
	}
	for _, r := range rows {
		t.Logf("%-50s %-24s %s", r.obj, r.prog, r.result)
	}
	t.Logf("examples: %d of %d programs attached, pinned and detached; xdp-tools: %d of %d", ok[true], total[true], ok[false], total[false])
	if ok[true] == 0 {
		t.Error("no example attached")
	}
	if len(xdptools) == 0 {
		t.Log("xdp-tools' objects are not installed (apt-get install xdp-tools)")
	}
}
