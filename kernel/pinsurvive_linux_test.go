package kernel_test

import (
	"encoding/binary"
	"os"
	"os/exec"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/internal/ktest"
	"github.com/waggle-bpf/waggle/kernel"
)

// pinChildEnv makes the test binary the child of TestPin_survivesProcess:
// it loads the counter example pinned under the directory the variable
// names, writes an element into its map and exits.
const pinChildEnv = "WAGGLE_PIN_CHILD"

// The element the child writes: source 10.0.0.7, 42 packets, 4242 bytes
// on every CPU.
var (
	pinKey             = [4]byte{10, 0, 0, 7}
	pinValueOnEveryCPU = binary.NativeEndian.AppendUint64(binary.NativeEndian.AppendUint64(nil, 42), 4242)
)

func init() {
	dir := os.Getenv(pinChildEnv)
	if dir == "" {
		return
	}
	c, err := kernel.LoadCollection("../examples/counter/counter.o", &kernel.CollectionOptions{PinPath: dir, PinMaps: kernel.PinAllMaps})
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(2)
	}
	m := c.Collection.Maps["sources"]
	if m == nil {
		os.Stderr.WriteString("the child loaded no map sources\n")
		os.Exit(2)
	}
	n, err := ebpf.PossibleCPU()
	if err == nil {
		vs := make([][]byte, n)
		for i := range vs {
			vs[i] = pinValueOnEveryCPU
		}
		err = m.Put(pinKey, vs)
	}
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(2)
	}
	os.Exit(0) // without closing: the process's end releases what it holds
}

// TestPin_survivesProcess: a map that waggle pins (LoadCollection with
// PinPath, as waggle load --pin does) outlives the process that loaded
// it: a child process loads the counter example pinned on a bpffs,
// writes an element and exits; this process opens the pin and reads the
// element back, and a second load reuses the map with its contents.
func TestPin_survivesProcess(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skip(err)
	}
	dir := ktest.BPFFS(t)
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), pinChildEnv+"="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	m, err := ebpf.LoadPinnedMap(kernel.MapPinPath(dir, "sources"), nil)
	if err != nil {
		t.Fatalf("the pin did not outlive the child: %v", err)
	}
	defer m.Close()
	var vs [][]byte
	if err := m.Lookup(pinKey, &vs); err != nil {
		t.Fatalf("the element the child wrote: %v", err)
	}
	for cpu, v := range vs {
		if string(v) != string(pinValueOnEveryCPU) {
			t.Errorf("CPU %d: % x, want % x", cpu, v, pinValueOnEveryCPU)
		}
	}
	info, err := m.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	c, err := kernel.LoadCollection("../examples/counter/counter.o", &kernel.CollectionOptions{PinPath: dir, PinMaps: kernel.PinAllMaps})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	again, err := c.Collection.Maps["sources"].Info()
	if err != nil {
		t.Fatal(err)
	}
	if id2, _ := again.ID(); id2 != id {
		t.Errorf("the second load made map id %d, the pin holds %d", id2, id)
	}
}
