package inspect

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// objects are the clang-built objects the repository commits.
func objects(tb testing.TB) []string {
	tb.Helper()
	var out []string
	for _, g := range []string{"../../examples/*/*.o", "../../testdata/*/*.o"} {
		m, err := filepath.Glob(g)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, m...)
	}
	if len(out) == 0 {
		tb.Fatal("no objects")
	}
	return out
}

// comparableRaw drops what differs from bpftool by design (see Raw): data
// sections and their variables' lines, declaration tags.
func comparableRaw(text string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	inSec := false
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "[") {
			inSec = strings.Contains(l, "] DATASEC ")
			if inSec || strings.Contains(l, "] DECL_TAG ") {
				continue
			}
		} else if inSec {
			continue
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// TestWriteRaw_bpftool compares the raw dump of every committed object
// with bpftool btf dump file's, line by line.
func TestWriteRaw_bpftool(t *testing.T) {
	if _, err := exec.LookPath("bpftool"); err != nil {
		t.Skip("bpftool is not installed")
	}
	for _, obj := range objects(t) {
		t.Run(filepath.Base(obj), func(t *testing.T) {
			spec, err := btf.LoadSpec(obj)
			if err != nil {
				t.Skipf("no BTF: %v", err)
			}
			types, err := SelectTypes(spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := WriteRaw(&got, RawTypes(spec, types)); err != nil {
				t.Fatal(err)
			}
			want, err := exec.Command("bpftool", "btf", "dump", "file", obj).Output()
			if err != nil {
				t.Fatalf("bpftool: %v", err)
			}
			g, w := comparableRaw(got.String()), comparableRaw(string(want))
			if g != w {
				gl, wl := strings.Split(g, "\n"), strings.Split(w, "\n")
				for i := range min(len(gl), len(wl)) {
					if gl[i] != wl[i] {
						t.Fatalf("line %d:\n got %s\nwant %s", i+1, gl[i], wl[i])
					}
				}
				t.Fatalf("%d lines, bpftool %d", len(gl), len(wl))
			}
			if len(types) > 0 && g == "" {
				t.Fatal("nothing compared")
			}
		})
	}
}

func TestWriteC(t *testing.T) {
	u32 := &btf.Int{Name: "unsigned int", Size: 4}
	char := &btf.Int{Name: "char", Size: 1, Encoding: btf.Signed | btf.Char}
	node := &btf.Struct{Name: "node", Size: 16}
	node.Members = []btf.Member{
		{Name: "next", Type: &btf.Pointer{Target: node}},
		{Name: "other", Type: &btf.Pointer{Target: &btf.Struct{Name: "elsewhere"}}, Offset: 64},
	}
	nodeT := &btf.Typedef{Name: "node_t", Type: node}
	color := &btf.Enum{Name: "color", Size: 4, Values: []btf.EnumValue{{Name: "RED", Value: 0}, {Name: "BLUE", Value: 5}}}
	cb := &btf.Pointer{Target: &btf.FuncProto{Return: u32, Params: []btf.FuncParam{{Type: &btf.Pointer{Target: nodeT}}, {Type: u32}}}}
	outer := &btf.Struct{Name: "outer", Size: 64, Members: []btf.Member{
		{Name: "head", Type: nodeT},
		{Name: "c", Type: color, Offset: 128},
		{Name: "name", Type: &btf.Array{Type: &btf.Const{Type: char}, Index: u32, Nelems: 16}, Offset: 160},
		{Name: "flags", Type: u32, Offset: 288, BitfieldSize: 3},
		{Name: "fn", Type: cb, Offset: 320},
		{Name: "", Type: &btf.Union{Size: 4, Members: []btf.Member{{Name: "a", Type: u32}, {Name: "b", Type: color}}}, Offset: 384},
		{Name: "pp", Type: &btf.Pointer{Target: &btf.Const{Type: &btf.Pointer{Target: char}}}, Offset: 448},
	}}
	other := &btf.Struct{Name: "node", Size: 4, Members: []btf.Member{{Name: "x", Type: u32}}} // a second "node"
	// Layouts C would not give by itself: a gap, a packed struct, a
	// one-byte enum.
	i32 := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	gap := &btf.Struct{Name: "gap", Size: 16, Members: []btf.Member{{Name: "a", Type: char}, {Name: "b", Type: i32, Offset: 64}}}
	packed := &btf.Struct{Name: "pk", Size: 5, Members: []btf.Member{{Name: "a", Type: char}, {Name: "b", Type: i32, Offset: 8}}}
	small := &btf.Enum{Name: "small", Size: 1, Values: []btf.EnumValue{{Name: "S0", Value: 0}}}
	var b bytes.Buffer
	if err := WriteC(&b, []btf.Type{outer, other, gap, packed, small}); err != nil {
		t.Fatal(err)
	}
	want := `struct node;

typedef struct node node_t;

struct elsewhere;

struct node {
	struct node *next;
	struct elsewhere *other;
};

enum color {
	RED = 0,
	BLUE = 5
};

struct outer {
	node_t head;
	enum color c;
	const char name[16];
	unsigned int flags: 3;
	unsigned int (*fn)(node_t *, unsigned int);
	union {
		unsigned int a;
		enum color b;
	};
	char *const *pp;
};

struct node___2 {
	unsigned int x;
};

struct gap {
	char a;
	long: 0;
	int b;
	long: 0;
};

struct pk {
	char a;
	int b;
} __attribute__((packed));

enum small {
	S0 = 0
} __attribute__((mode(byte)));

`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}

	fn := &btf.Func{Name: "f", Type: &btf.FuncProto{Return: &btf.Pointer{Target: &btf.Void{}}, Params: []btf.FuncParam{{Name: "p", Type: &btf.Pointer{Target: char}}}}}
	if got := FuncPrototype(fn); got != "void * f(char * p)" {
		t.Errorf("prototype %q", got)
	}
}

// TestWriteC_kernel writes the running kernel's types as one C header and
// has gcc check it: every type after what it needs, names unique, and the
// layout BTF gives: the size of every struct and the offset of every
// member that is not a bitfield, as static assertions.
func TestWriteC_kernel(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: compiles the kernel's types")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc is not installed")
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Skipf("kernel BTF: %v", err)
	}
	types, err := SelectTypes(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	types = TypeDefinitions(types)
	dir := t.TempDir()
	h, err := os.Create(filepath.Join(dir, "vmlinux.h"))
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteC(h, types); err != nil {
		t.Fatal(err)
	}
	h.Close()

	names := map[string]int{} // the tag namespace
	for _, ty := range types {
		switch ty.(type) {
		case *btf.Struct, *btf.Union, *btf.Enum:
			names[ty.TypeName()]++
		}
	}
	var c strings.Builder
	c.WriteString("#include \"vmlinux.h\"\n")
	asserts := 0
	for _, ty := range types {
		s, ok := ty.(*btf.Struct)
		if !ok || s.Name == "" || names[s.Name] > 1 { // a second one prints as name___2
			continue
		}
		fmt.Fprintf(&c, "_Static_assert(sizeof(struct %s) == %d, \"sizeof %s\");\n", s.Name, s.Size, s.Name)
		asserts++
		for _, m := range s.Members {
			if m.Name == "" || m.BitfieldSize > 0 {
				continue
			}
			fmt.Fprintf(&c, "_Static_assert(__builtin_offsetof(struct %s, %s) == %d, \"offsetof %s.%s\");\n", s.Name, m.Name, m.Offset/8, s.Name, m.Name)
			asserts++
		}
	}
	src := filepath.Join(dir, "t.c")
	if err := os.WriteFile(src, []byte(c.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(gcc, "-fsyntax-only", "-w", "-fmax-errors=20", "-I", dir, src).CombinedOutput()
	if err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	t.Logf("%d types, %d layout assertions", len(types), asserts)
}

func TestSelectTypes(t *testing.T) {
	spec, err := btf.LoadSpec("../../examples/blocklist/blocklist.o")
	if err != nil {
		t.Fatal(err)
	}
	ts, err := SelectTypes(spec, []string{"lpm_key", "xdp_blocklist"})
	if err != nil || len(ts) != 2 {
		t.Fatalf("%v, %v", ts, err)
	}
	if _, err := SelectTypes(spec, []string{"no_such_type"}); err == nil || !strings.Contains(err.Error(), "no_such_type") {
		t.Errorf("a missing type: %v", err)
	}
	var b bytes.Buffer
	if err := WriteC(&b, ts); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"struct lpm_key {\n\t__u32 prefixlen;\n\t__u8 addr[4];\n};", "int xdp_blocklist(struct xdp_md *ctx);"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("C output lacks %q:\n%s", want, b.String())
		}
	}
}
