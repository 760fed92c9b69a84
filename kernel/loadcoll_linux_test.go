package kernel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/loader"
)

// mustBPFFS mounts a private bpf filesystem in a temporary directory for
// the test, and unmounts it after.
func mustBPFFS(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		tb.Skipf("mount a bpf filesystem at %s: %v", dir, err)
	}
	tb.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			tb.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func mustLoadCollection(tb testing.TB, path string, opts *CollectionOptions) *LoadedCollection {
	tb.Helper()
	c, err := LoadCollection(path, opts)
	if err != nil {
		tb.Fatalf("%+v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// TestLoadCollection_examples: every example loads into the kernel: each
// program whose section names a type, verified by Linux, live (it has a
// kernel id), and judged alike by waggle's verifier; the one program with
// no type (checksum's "waggle/mem", a user-space-only type) is skipped
// with the reason.
func TestLoadCollection_examples(t *testing.T) {
	mustSupported(t)
	files, err := filepath.Glob("../examples/*/*.o")
	if err != nil || len(files) == 0 {
		t.Fatal("no examples")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			c := mustLoadCollection(t, path, &CollectionOptions{CrossCheck: true})
			for _, p := range c.Object.Programs {
				lp := c.Program(p.Name)
				if p.Type == ebpf.UnspecifiedProgram {
					if lp != nil || len(c.Skipped) == 0 {
						t.Errorf("%s: untyped, loaded %v, skipped %v", p.Name, lp, c.Skipped)
					}
					continue
				}
				if lp == nil {
					t.Errorf("%s: not loaded (skipped %v)", p.Name, c.Skipped)
					continue
				}
				info, err := lp.Program.Info()
				if err != nil {
					t.Fatal(err)
				}
				if id, ok := info.ID(); !ok || id == 0 || info.Type != p.Type {
					t.Errorf("%s: id %d, type %v, want a live %v program", p.Name, id, info.Type, p.Type)
				}
				if lp.Waggle == nil || lp.Waggle.Disagrees(true) || lp.Waggle.Unknown {
					t.Errorf("%s: the kernel accepts it, waggle %v", p.Name, lp.Waggle)
				}
			}
			if len(c.Maps) != len(c.Collection.Maps) {
				t.Errorf("%d maps listed, %d created", len(c.Maps), len(c.Collection.Maps))
			}
		})
	}
}

// TestLoadCollection_normalised: objects cilium/ebpf alone cannot load
// (legacy map definitions with a non-zero tail, old clang's zero-size and
// untyped symbols, iproute2's bpf_elf_map, sections that name no type)
// load through waggle's loader, every program of them.
func TestLoadCollection_normalised(t *testing.T) {
	mustSupported(t)
	for _, tc := range []struct {
		file string
		opts loader.Options
	}{
		{"legacy.o", loader.Options{}},
		{"legacy_oldclang.o", loader.Options{}},
		{"legacy_nobtf.o", loader.Options{}},
		{"iproute2.o", loader.Options{ProgramType: map[string]ebpf.ProgramType{"ingress": ebpf.SchedCLS}}},
		{"iproute2_old.o", loader.Options{ProgramType: map[string]ebpf.ProgramType{"2/0": ebpf.SchedCLS}}},
		{"ovs_oldclang.o", loader.Options{DefaultType: ebpf.SchedCLS}},
		{"textonly.o", loader.Options{DefaultType: ebpf.XDP}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("../loader/testdata", tc.file)
			c, err := LoadCollection(path, &CollectionOptions{Loader: tc.opts, Partial: true})
			if err != nil {
				t.Fatalf("%+v", err)
			}
			defer c.Close()
			if spec, err := ebpf.LoadCollectionSpec(path); err == nil {
				if coll, err := ebpf.NewCollection(spec); err == nil {
					n := len(coll.Programs)
					coll.Close()
					if n >= len(c.Programs) {
						t.Fatalf("cilium/ebpf alone loads %d programs: the test proves nothing", n)
					}
				}
			}
			for _, r := range c.Refused {
				if r.Probe == "" {
					t.Errorf("%+v", r)
				}
			}
			if len(c.Skipped) != 0 {
				t.Errorf("skipped %v", c.Skipped)
			}
			if len(c.Programs) == 0 {
				t.Error("nothing loaded")
			}
			t.Logf("%d programs loaded, %d refused; %s", len(c.Programs), len(c.Refused), strings.Join(c.Notes, "; "))
		})
	}
}

// TestLoadCollection_pin: with a pin path, every map and program is
// pinned under it and outlives the collection; a second load reuses the
// pinned maps (the same kernel map, its contents kept) and replaces the
// program pins. A pinned map that does not match the object's definition,
// or a pin path off bpffs, is a clear error.
func TestLoadCollection_pin(t *testing.T) {
	mustSupported(t)
	dir := mustBPFFS(t)
	const obj = "../examples/unittest/ttl_test.o"
	c, err := LoadCollection(obj, &CollectionOptions{PinPath: dir})
	if err != nil {
		t.Fatalf("%+v", err)
	}
	ids := map[string]ebpf.MapID{}
	for _, m := range c.Maps {
		if m.Pin != filepath.Join(dir, "maps", pinName(m.Name)) || m.Reused {
			t.Errorf("map %s: pin %q, reused %v", m.Name, m.Pin, m.Reused)
		}
		info, err := m.Map.Info()
		if err != nil {
			t.Fatal(err)
		}
		ids[m.Name], _ = info.ID()
	}
	for _, p := range c.Programs {
		if p.Pin != filepath.Join(dir, "progs", p.Name) {
			t.Errorf("program %s: pin %q", p.Name, p.Pin)
		}
	}
	if len(ids) == 0 || len(c.Programs) == 0 {
		t.Fatalf("%d maps, %d programs", len(ids), len(c.Programs))
	}
	// A value written now is there for the second load.
	var rw *LoadedMap
	for _, m := range c.Maps {
		if m.Map.Type() == ebpf.Array && !strings.HasPrefix(m.Name, ".rodata") {
			rw = m
		}
	}
	var marker []byte
	if rw != nil {
		marker = make([]byte, rw.Map.ValueSize())
		for i := range marker {
			marker[i] = byte(i + 1)
		}
		if err := rw.Map.Put(uint32(0), marker); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()

	for name := range ids {
		if _, err := os.Stat(filepath.Join(dir, "maps", pinName(name))); err != nil {
			t.Errorf("map %s: pin gone after Close: %v", name, err)
		}
	}
	for _, p := range c.Programs {
		pp, err := ebpf.LoadPinnedProgram(p.Pin, nil)
		if err != nil {
			t.Errorf("program %s: %v", p.Name, err)
			continue
		}
		pp.Close()
	}

	c2 := mustLoadCollection(t, obj, &CollectionOptions{PinPath: dir})
	for _, m := range c2.Maps {
		info, err := m.Map.Info()
		if err != nil {
			t.Fatal(err)
		}
		id, _ := info.ID()
		if !m.Reused || id != ids[m.Name] {
			t.Errorf("map %s: reused %v, id %d, want the pinned map %d", m.Name, m.Reused, id, ids[m.Name])
		}
	}
	if rw != nil {
		var got []byte
		if err := c2.Map(rw.Name).Map.Lookup(uint32(0), &got); err != nil || string(got) != string(marker) {
			t.Errorf("map %s: slot 0 = %v, %v; want the value written through the first load", rw.Name, got, err)
		}
	}
	c2.Close()

	// A pinned map of another shape under the name of one of the object's.
	other := filepath.Join(mustBPFFS(t), "x")
	var name string
	for n := range ids {
		if !strings.HasPrefix(n, ".") {
			name = n
		}
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := os.MkdirAll(filepath.Join(other, "maps"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := m.Pin(filepath.Join(other, "maps", pinName(name))); err != nil {
		t.Fatal(err)
	}
	_, err = LoadCollection(obj, &CollectionOptions{PinPath: other})
	if !errors.Is(err, ebpf.ErrMapIncompatible) || !strings.Contains(err.Error(), "does not match") || !strings.Contains(err.Error(), name) {
		t.Errorf("incompatible pinned map %s: %v", name, err)
	}
	if _, err := os.Stat(filepath.Join(other, "progs")); err == nil {
		t.Error("the failed load left program pins")
	}

	_, err = LoadCollection(obj, &CollectionOptions{PinPath: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "not on a bpf filesystem") {
		t.Errorf("pin path off bpffs: %v", err)
	}
}

// TestLoadCollection_pinByName: with PinMapsByName only the maps the
// object asks to pin (iproute2's pinning) are pinned; without a pin path
// the load says it pinned nothing.
func TestLoadCollection_pinByName(t *testing.T) {
	mustSupported(t)
	dir := mustBPFFS(t)
	const obj = "../loader/testdata/iproute2.o"
	opts := loader.Options{ProgramType: map[string]ebpf.ProgramType{"ingress": ebpf.SchedCLS}}
	c := mustLoadCollection(t, obj, &CollectionOptions{Loader: opts, PinPath: dir, PinMaps: PinMapsByName})
	for _, m := range c.Maps {
		want := m.Name == "jmp_tc" || m.Name == "map_sh"
		if (m.Pin != "") != want {
			t.Errorf("map %s: pin %q, want pinned %v", m.Name, m.Pin, want)
		}
	}
	// The prog array holds the "1/0" and "1/1" programs, as tc fills it.
	var id ebpf.ProgramID
	if err := c.Map("jmp_tc").Map.Lookup(uint32(0), &id); err != nil {
		t.Fatalf("jmp_tc slot 0: %v", err)
	}
	info, err := c.Program("cls_case1").Program.Info()
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := info.ID(); id != want {
		t.Errorf("jmp_tc slot 0 holds program %d, want cls_case1's %d", id, want)
	}

	c2 := mustLoadCollection(t, obj, &CollectionOptions{Loader: opts})
	notes := strings.Join(c2.Notes, "\n")
	if !strings.Contains(notes, "map jmp_tc asks to be pinned by name; not pinned") {
		t.Errorf("notes %q", notes)
	}
}

// TestLoadCollection_rejected: a program Linux's verifier refuses fails
// the load with the verifier's log, the instruction it stopped at, that
// instruction's C source line, and waggle's verdict beside the kernel's;
// with Partial, the object's other program stays loaded.
func TestLoadCollection_rejected(t *testing.T) {
	mustSupported(t)
	const obj = "testdata/reject.o"
	_, err := LoadCollection(obj, nil)
	var le *LoadError
	if !errors.As(err, &le) || len(le.Refused) != 1 || le.Path != obj {
		t.Fatalf("%+v, want a LoadError with one refusal", err)
	}
	pe := le.Refused[0]
	var ve *ebpf.VerifierError
	if pe.Program != "xdp_peek" || !pe.Kernel || !errors.As(err, &ve) || len(pe.Log) == 0 {
		t.Fatalf("%+v", pe)
	}
	if pe.Insn < 0 || !strings.Contains(pe.Line, "reject.c:15") || !strings.Contains(pe.Line, "no bounds check") {
		t.Errorf("instruction %d, line %q; want reject.c:15", pe.Insn, pe.Line)
	}
	if pe.Waggle == nil || pe.Waggle.Accepted || pe.Waggle.Unknown || !strings.Contains(pe.Waggle.Line, "reject.c:15") {
		t.Errorf("waggle's verdict %+v, want a rejection at reject.c:15", pe.Waggle)
	}
	full := fmt.Sprintf("%+v", err)
	for _, s := range []string{"kernel: rejects", "waggle: rejects", "outside of the packet", "reject.c:15"} {
		if !strings.Contains(full, s) {
			t.Errorf("%q lacks %q", full, s)
		}
	}

	c, err := LoadCollection(obj, &CollectionOptions{Partial: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Refused) != 1 || c.Program("xdp_ok") == nil || c.Program("xdp_peek") != nil {
		t.Errorf("partial: loaded %d, refused %v", len(c.Programs), c.Refused)
	}
}

// TestLoadCollection_CORE: CO-RE relocations are resolved against the
// running kernel's BTF. core.o's offsets of task_struct's pid and tgid are
// the compiler's guesses (0 and 4) in the object; the translated program
// holds the kernel's.
func TestLoadCollection_CORE(t *testing.T) {
	mustSupported(t)
	kspec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	var task *btf.Struct
	if err := kspec.TypeByName("task_struct", &task); err != nil {
		t.Fatal(err)
	}
	offsets := map[string]uint32{}
	for _, m := range task.Members {
		if m.Name == "pid" || m.Name == "tgid" {
			offsets[m.Name] = m.Offset.Bytes()
		}
	}
	if len(offsets) != 2 || offsets["pid"] < 8 {
		t.Fatalf("task_struct offsets %v", offsets)
	}
	c := mustLoadCollection(t, "testdata/core.o", nil)
	info, err := c.Program("core_offsets").Program.Info()
	if err != nil {
		t.Fatal(err)
	}
	insns, err := info.Instructions()
	if err != nil {
		t.Fatal(err)
	}
	for name, off := range offsets {
		found := false
		for _, ins := range insns {
			if ins.Constant == int64(off) && !ins.IsLoadFromMap() {
				found = true
			}
		}
		if !found {
			t.Errorf("no instruction holds %s's offset %d in the kernel's task_struct:\n%v", name, off, insns)
		}
	}
	if c.Program("core_read") == nil {
		t.Error("core_read (BPF_CORE_READ) not loaded")
	}
}

// BenchmarkLoadCollection measures loading the counter example into the
// kernel and closing it: waggle's loader, the conversion, cilium/ebpf's map
// creation and BPF_PROG_LOAD (the verifier). Root only.
func BenchmarkLoadCollection(b *testing.B) {
	mustSupported(b)
	for b.Loop() {
		c, err := LoadCollection("../examples/counter/counter.o", nil)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
