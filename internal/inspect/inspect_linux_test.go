//go:build linux

package inspect

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/kernel"
)

// The tests in this file load their own programs and maps into the
// running kernel and compare what the package says about them with what
// bpftool says. They skip without root (kernel.Supported) or bpftool.

func mustKernel(tb testing.TB) {
	tb.Helper()
	if err := kernel.Supported(); err != nil {
		tb.Skip(err)
	}
}

// bpffs mounts a private bpffs in a temporary directory.
func bpffs(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, ""); err != nil {
		tb.Skipf("mounting a bpffs: %v", err)
	}
	tb.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// bpftool runs bpftool -j with args and decodes its output into v.
func bpftool(tb testing.TB, v any, args ...string) {
	tb.Helper()
	if _, err := exec.LookPath("bpftool"); err != nil {
		tb.Skip("bpftool is not installed")
	}
	out, err := exec.Command("bpftool", append([]string{"-j"}, args...)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			tb.Fatalf("bpftool %s: %v: %s", strings.Join(args, " "), err, ee.Stderr)
		}
		tb.Fatalf("bpftool %s: %v", strings.Join(args, " "), err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		tb.Fatalf("bpftool %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// asMap is v as JSON decodes it generically.
func asMap(tb testing.TB, v any) map[string]any {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// sameFields compares the fields of got named in keys with bpftool's.
func sameFields(tb testing.TB, what string, got any, want map[string]any, keys ...string) {
	tb.Helper()
	g := asMap(tb, got)
	for _, k := range keys {
		if !reflect.DeepEqual(g[k], want[k]) {
			tb.Errorf("%s: %s is %v, bpftool says %v", what, k, g[k], want[k])
		}
	}
}

// loadObject loads a committed object into the kernel with cilium/ebpf:
// the programs named, or all of them.
func loadObject(tb testing.TB, path string, progs ...string) *ebpf.Collection {
	tb.Helper()
	mustKernel(tb)
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		tb.Fatal(err)
	}
	if len(progs) > 0 {
		for name := range spec.Programs {
			if !slices.Contains(progs, name) {
				delete(spec.Programs, name)
			}
		}
	}
	if err := kernel.SpecSupported(spec); err != nil {
		tb.Skip(err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	tb.Cleanup(coll.Close)
	return coll
}

const blocklistObject = "../../examples/blocklist/blocklist.o"

func progID(tb testing.TB, p *ebpf.Program) uint32 {
	tb.Helper()
	info, err := p.Info()
	if err != nil {
		tb.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		tb.Fatal("no program id")
	}
	return uint32(id)
}

func mapID(tb testing.TB, m *ebpf.Map) uint32 {
	tb.Helper()
	info, err := m.Info()
	if err != nil {
		tb.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		tb.Fatal("no map id")
	}
	return uint32(id)
}

var progFields = []string{"id", "type", "name", "tag", "gpl_compatible", "loaded_at", "uid", "bytes_xlated", "jited", "bytes_jited", "bytes_memlock", "map_ids", "btf_id"}

func TestShowProgram_bpftool(t *testing.T) {
	coll := loadObject(t, blocklistObject)
	p := coll.Programs["xdp_blocklist"]
	id := progID(t, p)
	got, err := ShowProgram(Ref{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	bpftool(t, &want, "prog", "show", "id", fmt.Sprint(id))
	sameFields(t, "prog show", got, want, progFields...)
	if got.Name != "xdp_blocklist" || got.Type != "xdp" || len(got.MapIDs) != 2 {
		t.Errorf("program %+v", got)
	}

	// The same program by its pin, and in the list of every program.
	pin := filepath.Join(bpffs(t), "prog")
	if err := p.Pin(pin); err != nil {
		t.Fatal(err)
	}
	byPin, err := ShowProgram(Ref{Path: pin})
	if err != nil || !reflect.DeepEqual(byPin, got) {
		t.Errorf("by pin: %+v, %v; by id %+v", byPin, err, got)
	}
	all, err := Programs()
	if err != nil {
		t.Fatal(err)
	}
	var listed []Program
	for _, q := range all {
		if q.ID == id {
			listed = append(listed, q)
		}
	}
	if len(listed) != 1 || !reflect.DeepEqual(listed[0], got) {
		t.Errorf("listed as %+v, shown as %+v", listed, got)
	}
	var wantAll []map[string]any
	bpftool(t, &wantAll, "prog", "show")
	if len(all) < len(wantAll)/2 || len(all) == 0 {
		t.Errorf("%d programs listed, bpftool lists %d", len(all), len(wantAll))
	}
}

var mapFields = []string{"id", "type", "name", "flags", "bytes_key", "bytes_value", "max_entries", "bytes_memlock", "frozen", "btf_id"}

func TestShowMap_bpftool(t *testing.T) {
	coll := loadObject(t, blocklistObject)
	for name, m := range coll.Maps {
		id := mapID(t, m)
		got, err := ShowMap(Ref{ID: id})
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		bpftool(t, &want, "map", "show", "id", fmt.Sprint(id))
		sameFields(t, name, got, want, mapFields...)
		if got.Name != name {
			t.Errorf("map %s is named %q", name, got.Name)
		}
	}
	all, err := Maps()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, m := range all {
		if m.Name == "blocklist" || m.Name == "stats" {
			found++
		}
	}
	if found < 2 {
		t.Errorf("Maps lists %d of the object's 2 maps", found)
	}
}

// dumpJSON is a map's dump as EntryJSON prints it, decoded.
func dumpJSON(t *testing.T, h *MapHandle) []any {
	t.Helper()
	entries, err := h.Dump()
	if err != nil {
		t.Fatal(err)
	}
	out := []any{}
	for _, e := range entries {
		b, err := EntryJSON(h.Format, e)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestMapElements_bpftool changes maps with and without BTF, per-CPU or
// not, through their pins, and compares their dumps with bpftool's.
func TestMapElements_bpftool(t *testing.T) {
	coll := loadObject(t, blocklistObject)
	dir := bpffs(t)
	plain, err := ebpf.NewMap(&ebpf.MapSpec{Name: "plain", Type: ebpf.Hash, KeySize: 4, ValueSize: 3, MaxEntries: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	for _, tc := range []struct {
		name string
		m    *ebpf.Map
		// typed is whether the map has BTF: stats's enum key is refused
		// by some kernels, and loaders then create it without.
		typed   func(Map) bool
		updates [][2]string
	}{
		{"blocklist", coll.Maps["blocklist"], func(Map) bool { return true }, [][2]string{
			{`{"prefixlen": 32, "addr": [10, 0, 0, 1]}`, "5"},
			{"18 00 00 00 c0 a8 01 00", "01 00 00 00 00 00 00 00"},
		}},
		{"stats", coll.Maps["stats"], func(m Map) bool { return m.BTFID != 0 }, [][2]string{{"01 00 00 00", "07 00 00 00 00 00 00 00"}, {"02 00 00 00", "09 00 00 00 00 00 00 00"}}},
		{"plain", plain, func(Map) bool { return false }, [][2]string{{"01 00 00 00", "aa bb cc"}, {`["0x02","0x00","0x00","0x00"]`, `[1, 2, 3]`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pin := filepath.Join(dir, tc.name)
			if err := tc.m.Pin(pin); err != nil {
				t.Fatal(err)
			}
			h, err := OpenMapHandle(Ref{Path: pin}, true)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			if want := tc.typed(h.Desc); h.Format.Typed() != want {
				t.Fatalf("typed %v (BTF warning %q), want %v", h.Format.Typed(), h.BTFWarning, want)
			}
			var keys [][]byte
			for _, u := range tc.updates {
				k, err := ParseKey(h.Format, u[0])
				if err != nil {
					t.Fatal(err)
				}
				v, err := ParseValue(h.Format, u[1], nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := h.Update(k, v, ebpf.UpdateAny); err != nil {
					t.Fatal(err)
				}
				got, err := h.Lookup(k)
				if err != nil {
					t.Fatal(err)
				}
				if string(got.Value) != string(v) {
					t.Errorf("lookup %x: %x, updated to %x", k, got.Value, v)
				}
				keys = append(keys, k)
			}
			var want []any
			bpftool(t, &want, "map", "dump", "pinned", pin)
			if got := dumpJSON(t, h); !reflect.DeepEqual(got, want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				t.Errorf("dump:\n got %s\nwant %s", g, w)
			}

			// BPF_NOEXIST on a key that exists, BPF_EXIST on one that
			// does not (arrays have every key: only the first applies).
			v, _ := ParseValue(h.Format, tc.updates[0][1], nil)
			if err := h.Update(keys[0], v, ebpf.UpdateNoExist); !errors.Is(err, ebpf.ErrKeyExist) {
				t.Errorf("update noexist of an element that exists: %v", err)
			}
			if h.Map.Type() == ebpf.PerCPUArray {
				return
			}
			if err := h.Delete(keys[0]); err != nil {
				t.Fatal(err)
			}
			if _, err := h.Lookup(keys[0]); !errors.Is(err, ebpf.ErrKeyNotExist) {
				t.Errorf("lookup after delete: %v", err)
			}
			if err := h.Delete(keys[0]); !errors.Is(err, ebpf.ErrKeyNotExist) {
				t.Errorf("second delete: %v", err)
			}
			if err := h.Update(keys[0], v, ebpf.UpdateExist); !errors.Is(err, ebpf.ErrKeyNotExist) {
				t.Errorf("update exist of a deleted element: %v", err)
			}
		})
	}
}

// TestMapHandle_objects stores a program in a prog array by its id, as
// map update does with a VALUE that is an id or pin, and reads back the
// program's id.
func TestMapHandle_objects(t *testing.T) {
	mustKernel(t)
	arr, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer arr.Close()
	p := newProg(t, ebpf.XDP, ebpf.AttachNone, 2)
	h, err := OpenMapHandle(Ref{ID: mapID(t, arr)}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if !h.HoldsObjects() {
		t.Fatal("a prog array does not hold objects")
	}
	key := []byte{1, 0, 0, 0}
	if err := h.UpdateObject(key, Ref{ID: progID(t, p)}, ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
	e, err := h.Lookup(key)
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.NativeEndian.Uint32(e.Value); got != progID(t, p) {
		t.Errorf("slot 1 holds program %d, want %d", got, progID(t, p))
	}
	if err := h.UpdateObject(key, Ref{ID: 1<<32 - 1}, ebpf.UpdateAny); err == nil || !strings.Contains(err.Error(), "no such program") {
		t.Errorf("a missing program: %v", err)
	}
	if _, err := ParseValue(h.Format, "01 00 00 00", nil); err == nil {
		t.Error("bytes parse as a prog array's value")
	}
}

func TestMapHandle_hostile(t *testing.T) {
	coll := loadObject(t, blocklistObject)
	dir := bpffs(t)
	progPin := filepath.Join(dir, "prog")
	if err := coll.Programs["xdp_blocklist"].Pin(progPin); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenMapHandle(Ref{Path: progPin}, false); err == nil {
		t.Error("a program's pin opens as a map")
	}
	if _, err := ShowProgram(Ref{Path: filepath.Join(dir, "nothing")}); err == nil {
		t.Error("a missing pin shows a program")
	}
	if _, err := ShowMap(Ref{ID: 1<<32 - 1}); err == nil || !strings.Contains(err.Error(), "no such map") {
		t.Errorf("a missing map id: %v", err)
	}
	if _, err := ShowProgram(Ref{ID: 1<<32 - 1}); err == nil || !strings.Contains(err.Error(), "no such program") {
		t.Errorf("a missing program id: %v", err)
	}
	h, err := OpenMapHandle(Ref{ID: mapID(t, coll.Maps["blocklist"])}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.Lookup([]byte{1, 2}); err == nil || !strings.Contains(err.Error(), "key of 2 bytes, want 8") {
		t.Errorf("short key: %v", err)
	}
	if err := h.Update(make([]byte, 8), make([]byte, 9), ebpf.UpdateAny); err == nil {
		t.Error("long value updates")
	}
	if err := h.Delete(make([]byte, 7)); err == nil {
		t.Error("short key deletes")
	}
	rb, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	rh, err := OpenMapHandle(Ref{ID: mapID(t, rb)}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rh.Close()
	if _, err := rh.Dump(); err == nil || !strings.Contains(err.Error(), "records") {
		t.Errorf("dump of a ring buffer: %v", err)
	}
}

// TestDumpXlated_bpftool compares the translated code's instructions
// (their opcodes, source lines and function prototypes) with bpftool's
// dump of the same program.
func TestDumpXlated_bpftool(t *testing.T) {
	for _, tc := range []struct {
		obj, prog string
		maps      []string
		subcalls  bool
	}{
		{blocklistObject, "xdp_blocklist", []string{"blocklist", "stats"}, false},
		{"../../testdata/globalfn/globalfn.o", "ok_calls", nil, true},
	} {
		t.Run(tc.prog, func(t *testing.T) {
			coll := loadObject(t, tc.obj, tc.prog)
			id := progID(t, coll.Programs[tc.prog])
			x, err := DumpXlated(Ref{ID: id})
			if err != nil {
				t.Fatal(err)
			}
			var want []map[string]any
			bpftool(t, &want, "prog", "dump", "xlated", "id", fmt.Sprint(id))
			if len(x.Insns) != len(want) {
				t.Fatalf("%d instructions, bpftool %d", len(x.Insns), len(want))
			}
			slots := 0
			var maps []string
			calls, subcalls := 0, 0
			for i, ins := range x.Insns {
				w := want[i]
				bt := w["disasm"].(string)
				if !strings.HasPrefix(bt, ins.Disasm[:4]) {
					t.Errorf("instruction %d: %q, bpftool %q", i, ins.Disasm, bt)
				}
				if src, _ := w["src"].(string); src != ins.Src {
					t.Errorf("instruction %d: source %q, bpftool %q", i, ins.Src, src)
				}
				if proto, _ := w["proto"].(string); proto != ins.Proto {
					t.Errorf("instruction %d: prototype %q, bpftool %q", i, ins.Proto, proto)
				}
				if ins.PC != slots {
					t.Errorf("instruction %d at pc %d, want %d", i, ins.PC, slots)
				}
				slots += (len(ins.Opcodes) + 1) / 24 // "xx " per byte, 8 bytes a slot
				if ins.Map != "" {
					maps = append(maps, ins.Map)
				}
				if c := strings.Index(ins.Disasm, "call "); c >= 0 {
					// bpftool: "(85) call bpf_map_lookup_elem#123" for
					// helpers, "(85) call pc+5#bpf_prog_<tag>_F" for
					// subprograms.
					calls++
					if strings.Contains(ins.Disasm, "call pc") {
						subcalls++
					}
					if mine := ins.Disasm[c:]; !strings.HasSuffix(bt, mine) && !strings.HasPrefix(bt[c:], mine+"#") {
						t.Errorf("instruction %d: %q, bpftool %q", i, ins.Disasm, bt)
					}
				}
			}
			if slots*8 != int(x.Program.BytesXlated) {
				t.Errorf("%d slots, the program has %d bytes", slots, x.Program.BytesXlated)
			}
			for _, m := range tc.maps {
				if !slices.Contains(maps, m) {
					t.Errorf("no reference names map %s: %q", m, maps)
				}
			}
			if calls == 0 || tc.subcalls != (subcalls > 0) {
				t.Errorf("%d calls, %d to subprograms", calls, subcalls)
			}
		})
	}
}

// TestDumpJited checks the disassembly covers the machine code, every
// instruction decodes, and functions (a program with subprograms) are
// split and named as the kernel names them.
func TestDumpJited(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("disassembles x86-64 only")
	}
	for _, tc := range []struct {
		obj, prog string
		funcs     int
	}{{blocklistObject, "xdp_blocklist", 1}, {"../../testdata/globalfn/globalfn.o", "ok_calls", 2}} {
		coll := loadObject(t, tc.obj, tc.prog)
		for name, p := range coll.Programs {
			id := progID(t, p)
			j, err := DumpJited(Ref{ID: id}, runtime.GOARCH)
			if err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, f := range j.Funcs {
				if !strings.HasPrefix(f.Symbol, "bpf_prog_"+j.Program.Tag) && !strings.HasPrefix(f.Symbol, "bpf_prog_") {
					t.Errorf("%s: function %s has symbol %q", name, f.Name, f.Symbol)
				}
				for _, ins := range f.Insns {
					if ins.Disasm == "(bad)" {
						t.Errorf("%s: %s+%#x: undecodable %s", name, f.Name, ins.Offset, ins.Bytes)
					}
					total += (len(ins.Bytes) + 1) / 3
				}
			}
			if total != int(j.Program.BytesJited) {
				t.Errorf("%s: %d bytes disassembled, %d jited", name, total, j.Program.BytesJited)
			}
			info, _ := p.Info()
			lens, _ := info.JitedFuncLens()
			if len(j.Funcs) != max(len(lens), 1) || len(j.Funcs) < tc.funcs {
				t.Errorf("%s: %d functions, the kernel has %d, want at least %d", name, len(j.Funcs), len(lens), tc.funcs)
			}
			for i, f := range j.Funcs {
				if i > 0 && (f.Name == "" || strings.HasPrefix(f.Name, "func#") || f.Proto == "") {
					t.Errorf("%s: subprogram %d unnamed: %+v", name, i, f.Name)
				}
			}
			if len(j.Funcs) > 0 && j.Funcs[0].Name != name && j.Funcs[0].Name != j.Program.Name {
				t.Errorf("%s: first function %q", name, j.Funcs[0].Name)
			}
		}
	}
	if _, err := DumpJited(Ref{ID: 1}, "arm64"); !errors.Is(err, ErrNotSupported) {
		t.Errorf("arm64 code: %v", err)
	}
}

// inNetns runs f on a thread in a new network namespace, which ends with
// the test.
func inNetns(t *testing.T, f func() error) {
	t.Helper()
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("%w: %v", errSkip, err)
			return
		}
		done <- f()
	}()
	if err := <-done; errors.Is(err, errSkip) {
		t.Skip(err)
	} else if err != nil {
		t.Fatal(err)
	}
}

var errSkip = errors.New("skip")

func newProg(t *testing.T, typ ebpf.ProgramType, attach ebpf.AttachType, ret int32) *ebpf.Program {
	t.Helper()
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: typ, AttachType: attach, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, ret), asm.Return()}})
	if err != nil {
		t.Skipf("%v program: %v", typ, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestLinks_bpftool attaches an XDP program to a veth in a network
// namespace of its own, a raw tracepoint and a tracepoint, and compares
// the links' targets with bpftool link show.
func TestLinks_bpftool(t *testing.T) {
	mustKernel(t)
	var links []link.Link
	t.Cleanup(func() {
		for _, l := range links {
			l.Close()
		}
	})
	xdp := newProg(t, ebpf.XDP, ebpf.AttachXDP, 2)
	var ifindex int
	inNetns(t, func() error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "insp0"}, PeerName: "insp1"}); err != nil {
			return fmt.Errorf("%w: veth: %v", errSkip, err)
		}
		l, err := netlink.LinkByName("insp0")
		if err != nil {
			return err
		}
		ifindex = l.Attrs().Index
		xl, err := link.AttachXDP(link.XDPOptions{Program: xdp, Interface: ifindex, Flags: link.XDPGenericMode})
		if err != nil {
			return fmt.Errorf("%w: XDP link: %v", errSkip, err)
		}
		links = append(links, xl)
		return nil
	})
	want := map[uint32]func(Link) string{}
	xdpInfo, _ := links[0].Info()
	want[uint32(xdpInfo.ID)] = func(l Link) string {
		if l.Type != "xdp" || l.Ifindex != uint32(ifindex) || l.ProgID != progID(t, xdp) {
			return fmt.Sprintf("want xdp on ifindex %d, prog %d", ifindex, progID(t, xdp))
		}
		return ""
	}
	rawtp := newProg(t, ebpf.RawTracepoint, ebpf.AttachNone, 0)
	if rl, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_enter", Program: rawtp}); err == nil {
		links = append(links, rl)
		info, _ := rl.Info()
		want[uint32(info.ID)] = func(l Link) string {
			if l.Type != "raw_tracepoint" || l.TpName != "sys_enter" {
				return "want raw_tracepoint sys_enter"
			}
			return ""
		}
	} else {
		t.Logf("no raw tracepoint link: %v", err)
	}
	tp := newProg(t, ebpf.TracePoint, ebpf.AttachNone, 0)
	if tl, err := link.Tracepoint("syscalls", "sys_enter_openat", tp, nil); err == nil {
		links = append(links, tl)
		if info, err := tl.Info(); err == nil {
			want[uint32(info.ID)] = func(l Link) string {
				if l.Type != "perf_event" || l.EventType != "tracepoint" || l.TpName != "sys_enter_openat" {
					return "want perf_event tracepoint sys_enter_openat"
				}
				return ""
			}
		}
	} else {
		t.Logf("no tracepoint link: %v", err)
	}

	got, err := Links()
	if err != nil {
		t.Fatal(err)
	}
	var bt []map[string]any
	bpftool(t, &bt, "link", "show")
	byID := map[float64]map[string]any{}
	for _, l := range bt {
		byID[l["id"].(float64)] = l
	}
	seen := 0
	for _, l := range got {
		check, ok := want[l.ID]
		if !ok {
			continue
		}
		seen++
		if msg := check(l); msg != "" {
			t.Errorf("link %d: %+v: %s", l.ID, l, msg)
		}
		b := byID[float64(l.ID)]
		if b == nil {
			t.Errorf("bpftool does not list link %d", l.ID)
			continue
		}
		keys := []string{"id", "type", "prog_id"}
		for _, k := range []string{"ifindex", "tp_name"} {
			if _, ok := b[k]; ok {
				keys = append(keys, k)
			}
		}
		sameFields(t, fmt.Sprintf("link %d", l.ID), l, b, keys...)
	}
	if seen != len(want) {
		t.Errorf("Links listed %d of the test's %d links", seen, len(want))
	}
}

// TestProbeFeatures_bpftool compares program and map types with bpftool's
// probe, and checks helpers the kernel is known to give or refuse (bpftool
// 7.1's helper lists are not an oracle here: on Linux 6.18 it lists
// bpf_bind for socket filters, which the verifier refuses).
func TestProbeFeatures_bpftool(t *testing.T) {
	mustKernel(t)
	f := ProbeFeatures(true)
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	var want map[string]map[string]any
	bpftool(t, &want, "feature", "probe", "kernel")
	got := asMap(t, f)
	if !reflect.DeepEqual(got["system_config"], want["system_config"]) || !reflect.DeepEqual(got["syscall_config"], want["syscall_config"]) {
		t.Errorf("system:\n%v %v\nbpftool:\n%v %v", got["system_config"], got["syscall_config"], want["system_config"], want["syscall_config"])
	}
	compared := 0
	for _, sec := range []string{"program_types", "map_types", "misc"} {
		g := got[sec].(map[string]any)
		for k, w := range want[sec] {
			if gv, ok := g[k]; ok {
				compared++
				if gv != w {
					t.Errorf("%s %s: %v, bpftool %v", sec, k, gv, w)
				}
			}
		}
	}
	if compared < 50 {
		t.Errorf("only %d features compared", compared)
	}
	helpersOf := func(pt string) string {
		for _, h := range f.Helpers {
			if h.ProgType == pt {
				return " " + strings.Join(h.Helpers, " ") + " "
			}
		}
		t.Fatalf("no helpers for %s", pt)
		return ""
	}
	for _, c := range []struct {
		pt, helper string
		has        bool
	}{
		{"xdp", "bpf_xdp_adjust_head", true},
		{"xdp", "bpf_map_lookup_elem", true},
		{"xdp", "bpf_skb_load_bytes", false},
		{"sched_cls", "bpf_skb_load_bytes", true},
		{"socket_filter", "bpf_bind", false},
		{"cgroup_sock_addr", "bpf_bind", true},
	} {
		if strings.Contains(helpersOf(c.pt), " "+c.helper+" ") != c.has {
			t.Errorf("%s programs calling %s: want %v", c.pt, c.helper, c.has)
		}
	}
}

// BenchmarkPrograms lists every program in the kernel (a few info calls
// per program); ns/prog is per program listed.
func BenchmarkPrograms(b *testing.B) {
	loadObject(b, blocklistObject)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		ps, err := Programs()
		if err != nil {
			b.Fatal(err)
		}
		n = len(ps)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(max(n, 1)), "ns/prog")
}

// BenchmarkDumpXlated reads, decodes and formats the blocklist example's
// translated code, kallsyms included.
func BenchmarkDumpXlated(b *testing.B) {
	coll := loadObject(b, blocklistObject)
	id := progID(b, coll.Programs["xdp_blocklist"])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DumpXlated(Ref{ID: id}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapDump dumps a 4096-element hash map with BTF (struct keys,
// u64 values) and formats each element as bpftool map dump -j does.
func BenchmarkMapDump(b *testing.B) {
	coll := loadObject(b, blocklistObject)
	m := coll.Maps["blocklist"]
	for i := range 1024 {
		k := []byte{32, 0, 0, 0, 10, byte(i >> 16), byte(i >> 8), byte(i)}
		if err := m.Update(k, uint64(i), ebpf.UpdateAny); err != nil {
			b.Fatal(err)
		}
	}
	h, err := OpenMapHandle(Ref{ID: mapID(b, m)}, false)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	b.ReportAllocs()
	for b.Loop() {
		entries, err := h.Dump()
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range entries {
			if _, err := EntryJSON(h.Format, e); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1024, "ns/elem")
}
