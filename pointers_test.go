package waggle_test

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/mem"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/hostile/pointers.c -o testdata/hostile/pointers.o

// pointerOut is struct out of testdata/hostile/pointers.c.
type pointerOut struct {
	Text [256]byte
	Len  int64
}

func (o pointerOut) fields() []string {
	n := bytes.IndexByte(o.Text[:], 0)
	if n < 0 {
		n = len(o.Text)
	}
	return strings.Split(string(o.Text[:n]), "|")
}

// pointerShapes are the shapes of the fields pointers.c prints, as Linux
// prints them with kptr_restrict 0: hashed pointers are 8 zeros and 8 hex
// digits (fewer in a width, padded with spaces), NULL and error pointers
// print raw, %px prints 16 hex digits.
var pointerShapes = []*regexp.Regexp{
	regexp.MustCompile(`^0{8}[0-9a-f]{8}$`),           // %p
	regexp.MustCompile(`^0{16}$`),                     // %p of NULL
	regexp.MustCompile(`^0{8}[0-9a-f]{8}$`),           // %pK
	regexp.MustCompile(`^0{8}[0-9a-f]{8}$`),           // %p of 42
	regexp.MustCompile(`^\[ {16,23}[0-9a-f]{1,8}\]$`), // [%24p]
	regexp.MustCompile(`^\[[0-9a-f]{1,8} {12,19}\]$`), // [%-20p]
	regexp.MustCompile(`^f{15}e$`),                    // %p of -ENOENT
	regexp.MustCompile(`^[0-9a-f]{16}\.$`),            // %px
}

// checkPointerShapes checks what pointers.c printed against Linux's shapes
// and the relations between fields (%p and %pK hash alike, different
// pointers differently, widths pad the same hash).
func checkPointerShapes(t *testing.T, who string, o pointerOut, kptrRestrict bool) {
	t.Helper()
	f := o.fields()
	if len(f) != len(pointerShapes) {
		t.Fatalf("%s: %d fields in %q", who, len(f), o.Text)
	}
	for i, re := range pointerShapes {
		if i == 2 && kptrRestrict {
			continue
		}
		if !re.MatchString(f[i]) {
			t.Errorf("%s: field %d is %q, want %s", who, i, f[i], re)
		}
	}
	hash := strings.TrimLeft(f[0], "0")
	if (!kptrRestrict && f[2] != f[0]) || f[3] == f[0] || strings.Trim(f[4], "[ ]") != hash || strings.Trim(f[5], "[ ]") != hash {
		t.Errorf("%s: fields %q: %%p, %%pK and the padded %%p must hash the pointer alike, 42 differently", who, f)
	}
	if int(o.Len) != bytes.IndexByte(o.Text[:], 0)+1 {
		t.Errorf("%s: bpf_snprintf returned %d for %d bytes", who, o.Len, bytes.IndexByte(o.Text[:], 0))
	}
}

// TestSnprintf_pointers: bpf_snprintf prints pointers in Linux's shapes
// and never an address of the process, in waggle; and Linux prints the
// same shapes (as root, when the kernel allows bpf_snprintf in XDP).
func TestSnprintf_pointers(t *testing.T) {
	coll, err := waggle.LoadCollection("testdata/hostile/pointers.o", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	if _, err := coll.Programs["pointers"].Run(&waggle.RunOptions{Data: make([]byte, 64)}); err != nil {
		t.Fatal(err)
	}
	var mine pointerOut
	if err := coll.Maps["out"].Lookup(uint32(0), &mine); err != nil {
		t.Fatal(err)
	}
	checkPointerShapes(t, "waggle", mine, false)
	addr := mem.Addr(coll.Maps["out"].Underlying().Regions()[0].Data)
	for _, raw := range []string{fmt.Sprintf("%x", addr), fmt.Sprintf("%x", addr&0xffffffff)} {
		if strings.Contains(string(mine.Text[:]), raw) {
			t.Errorf("waggle printed the value's address %s: %q", raw, mine.Text)
		}
	}

	kc := kernelCollection(t, "testdata/hostile/pointers.o", "pointers") // probes bpf_snprintf in XDP
	if _, err := kc.Programs["pointers"].Run(&ebpf.RunOptions{Data: make([]byte, 64)}); err != nil {
		t.Fatal(err)
	}
	var theirs pointerOut
	if err := kc.Maps["out"].Lookup(uint32(0), &theirs); err != nil {
		t.Fatal(err)
	}
	restrict, _ := os.ReadFile("/proc/sys/kernel/kptr_restrict")
	checkPointerShapes(t, "linux", theirs, strings.TrimSpace(string(restrict)) != "0")
	t.Logf("linux:  %s\nwaggle: %s", theirs.Text[:theirs.Len-1], mine.Text[:mine.Len-1])
}
