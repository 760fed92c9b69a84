package maps_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
)

func storageKey(id uint64, attach uint32, size int) []byte {
	k := binary.NativeEndian.AppendUint64(nil, id)
	if size == 16 {
		k = binary.NativeEndian.AppendUint32(k, attach)
		k = append(k, 0, 0, 0, 0)
	}
	return k
}

// TestCgroupStorage_bind binds storages as attachments would and checks
// what programs and the Go side see: per-key storage (attach types apart
// with 16-byte keys, shared with 8-byte keys), values written through the
// program's pointer, Linux's list order for NextKey, and the refusals.
func TestCgroupStorage_bind(t *testing.T) {
	for _, tc := range []struct {
		name    string
		typ     maps.Type
		keySize uint32
	}{
		{"shared/16", maps.CgroupStorage, 16},
		{"shared/8", maps.CgroupStorage, 8},
		{"percpu/16", maps.PerCPUCgroupStorage, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := maps.New(maps.Spec{Type: tc.typ, KeySize: tc.keySize, ValueSize: 12, CPUs: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ls := m.(maps.LocalStorage)
			percpu := tc.typ == maps.PerCPUCgroupStorage
			goSize := 12
			if percpu {
				goSize = 16 * 2
			}
			k1 := storageKey(1, 0, int(tc.keySize))
			if err := m.Lookup(k1, make([]byte, goSize)); !errors.Is(err, maps.ENOENT) {
				t.Fatalf("lookup before bind: %v, want ENOENT", err)
			}
			if a := ls.Storage(0, 1, 0); a != 0 {
				t.Fatalf("storage before bind: %#x", a)
			}
			for _, b := range [][2]uint64{{1, 0}, {1, 1}, {7, 0}, {1, 0}} {
				if err := ls.Bind(b[0], uint32(b[1])); err != nil {
					t.Fatal(err)
				}
			}
			a0, a1 := ls.Storage(0, 1, 0), ls.Storage(0, 1, 1)
			if a0 == 0 || a1 == 0 {
				t.Fatal("no storage after bind")
			}
			if (a0 == a1) != (tc.keySize == 8) {
				t.Fatalf("attach types share a storage: %v, want %v", a0 == a1, tc.keySize == 8)
			}
			// A program writes through its pointer; the Go side sees it.
			copy(mem.Bytes(a0, 12), "hello world!")
			if percpu {
				copy(mem.Bytes(ls.Storage(1, 1, 0), 12), "second cpu..")
			}
			v := make([]byte, goSize)
			if err := m.Lookup(k1, v); err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(v, []byte("hello world!")) || percpu && !bytes.HasPrefix(v[16:], []byte("second cpu..")) {
				t.Fatalf("lookup: %q", v)
			}
			// The Go side writes; the program sees it.
			copy(v, "HELLO")
			if err := m.Update(k1, v, maps.UpdateExist); err != nil {
				t.Fatal(err)
			}
			if got := mem.Bytes(a0, 5); string(got) != "HELLO" {
				t.Fatalf("after update the program sees %q", got)
			}
			if err := m.Update(k1, v, maps.UpdateNoExist); !errors.Is(err, maps.EINVAL) {
				t.Fatalf("BPF_NOEXIST: %v, want EINVAL", err)
			}
			if err := m.Update(storageKey(9, 0, int(tc.keySize)), v, maps.UpdateAny); !errors.Is(err, maps.ENOENT) {
				t.Fatalf("update of an unbound key: %v, want ENOENT", err)
			}
			if err := m.Delete(k1); !errors.Is(err, maps.EINVAL) {
				t.Fatalf("delete: %v, want EINVAL", err)
			}
			// The latest attachment comes first.
			var keys [][]byte
			next := make([]byte, tc.keySize)
			var prev []byte
			for m.NextKey(prev, next) == nil {
				keys = append(keys, bytes.Clone(next))
				prev = bytes.Clone(next)
			}
			want := [][]byte{storageKey(7, 0, int(tc.keySize)), storageKey(1, 1, int(tc.keySize)), k1}
			if tc.keySize == 8 {
				want = [][]byte{storageKey(7, 0, 8), k1}
			}
			if len(keys) != len(want) {
				t.Fatalf("keys %x, want %x", keys, want)
			}
			for i := range want {
				if !bytes.Equal(keys[i], want[i]) {
					t.Fatalf("keys %x, want %x", keys, want)
				}
			}
		})
	}
}

// TestCgroupStorage_full binds more attachments than a map holds.
func TestCgroupStorage_full(t *testing.T) {
	m, err := maps.New(maps.Spec{Type: maps.CgroupStorage, KeySize: 8, ValueSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ls := m.(maps.LocalStorage)
	for i := range uint64(maps.MaxCgroupStorages) {
		if err := ls.Bind(i, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := ls.Bind(1<<40, 0); !errors.Is(err, maps.ENOSPC) {
		t.Fatalf("bind past the limit: %v, want ENOSPC", err)
	}
	m.Close()
	if err := ls.Bind(0, 0); !errors.Is(err, maps.EBADF) {
		t.Fatalf("bind after close: %v, want EBADF", err)
	}
}

// TestCgroupArray_slots stores cgroups as the runtime does.
func TestCgroupArray_slots(t *testing.T) {
	m, err := maps.New(maps.Spec{Type: maps.CgroupArray, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cs := m.(maps.CgroupSlots)
	type cgroup struct{ id uint64 }
	if err := cs.SetCgroup(1, &cgroup{5}); err != nil {
		t.Fatal(err)
	}
	if err := cs.SetCgroup(2, &cgroup{6}); !errors.Is(err, maps.E2BIG) {
		t.Fatalf("past the end: %v, want E2BIG", err)
	}
	if cg, ok := cs.Cgroup(1); !ok || cg.(*cgroup).id != 5 {
		t.Fatalf("slot 1: %v %v", cg, ok)
	}
	if _, ok := cs.Cgroup(0); ok {
		t.Fatal("slot 0 is empty")
	}
	key := []byte{1, 0, 0, 0}
	if err := m.Lookup(key, make([]byte, 4)); !errors.Is(err, maps.ENOTSUPP) {
		t.Fatalf("lookup: %v, want ENOTSUPP", err)
	}
	if err := m.Update(key, make([]byte, 4), maps.UpdateAny); !errors.Is(err, maps.EOPNOTSUPP) {
		t.Fatalf("update with a descriptor: %v, want EOPNOTSUPP", err)
	}
	if err := m.Delete(key); err != nil {
		t.Fatal(err)
	}
	if _, ok := cs.Cgroup(1); ok {
		t.Fatal("slot 1 after delete")
	}
}

type counter struct{ cpu int }

func (c counter) ReadCounter(cpu int) (uint64, uint64, uint64, maps.Errno) {
	if cpu != c.cpu {
		return 0, 0, 0, maps.EINVAL
	}
	return 7, 2, 1, 0
}

// TestPerfCounters installs a counter and reads it as
// bpf_perf_event_read does, with the errnos of empty slots, bad indexes and
// flags, and output to a counter's slot.
func TestPerfCounters(t *testing.T) {
	m, err := maps.New(maps.Spec{Type: maps.PerfEventArray, KeySize: 4, ValueSize: 4, MaxEntries: 2, CPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	pc := m.(maps.PerfCounters)
	if err := pc.SetCounter(1, counter{cpu: 1}); err != nil {
		t.Fatal(err)
	}
	if err := pc.SetCounter(2, counter{}); !errors.Is(err, maps.E2BIG) {
		t.Errorf("past the end: %v", err)
	}
	for _, c := range []struct {
		cpu   int
		flags uint64
		v     uint64
		errno maps.Errno
	}{
		{1, maps.PerfCurrentCPU, 7, 0},
		{0, 1, 0, maps.EINVAL}, // the counter counts on CPU 1
		{0, maps.PerfCurrentCPU, 0, maps.ENOENT},
		{0, 2, 0, maps.E2BIG},
		{1, 1 << 32, 0, maps.EINVAL},
	} {
		v, _, _, e := pc.ReadCounter(c.cpu, c.flags)
		if v != c.v || e != c.errno {
			t.Errorf("cpu %d flags %#x: %d, %v; want %d, %v", c.cpu, c.flags, v, e, c.v, c.errno)
		}
	}
	if err := m.(maps.PerfEvents).Output(1, maps.PerfCurrentCPU, []byte("x")); !errors.Is(err, maps.EINVAL) {
		t.Errorf("output to a counter: %v, want EINVAL", err)
	}
	if err := m.Delete([]byte{1, 0, 0, 0}); err != nil {
		t.Errorf("delete the counter: %v", err)
	}
	if _, _, _, e := pc.ReadCounter(1, maps.PerfCurrentCPU); e != maps.ENOENT {
		t.Errorf("after delete: %v", e)
	}
}
