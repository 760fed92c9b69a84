package inspect

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/internal/mapjson"
	"github.com/waggle-bpf/waggle/isa"
)

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want Ref
		err  string
	}{
		{[]string{"12"}, Ref{ID: 12}, ""},
		{[]string{"id", "7"}, Ref{ID: 7}, ""},
		{[]string{"/sys/fs/bpf/x"}, Ref{Path: "/sys/fs/bpf/x"}, ""},
		{[]string{"pinned", "12"}, Ref{Path: "12"}, ""},
		{[]string{"0"}, Ref{}, "not an id"},
		{[]string{"4294967296"}, Ref{}, "not an id"},
		{[]string{"12abc"}, Ref{}, "not an id"},
		{[]string{""}, Ref{}, "empty"},
		{[]string{"a", "b", "c"}, Ref{}, "want an id or a pinned path"},
		{nil, Ref{}, "want an id or a pinned path"},
	} {
		got, err := ParseRef(tc.args...)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one saying %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
}

func TestParseHex(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // hex, "" when not in hex form
	}{
		{"0a 00 00 01", "0a000001"},
		{"0x0a 0x0 0x0 0x1", "0a000001"},
		{"  ff\t1  ", "ff01"},
		{"5", "05"},
		{"0a000001", ""}, // one long run is not bpftool's form (it would read as a JSON number)
		{"100", ""},
		{"0xg1", ""},
		{"0x", ""},
		{"", ""},
		{"{\"a\": 1}", ""},
	} {
		b, ok := ParseHex(tc.in)
		if got := hex.EncodeToString(b); ok != (tc.want != "") || got != tc.want {
			t.Errorf("ParseHex(%q) = %s, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

// lpmMap is a map described like blocklist.o's LPM trie: a struct key
// {__u32 prefixlen; __u8 addr[4]} and a __u64 value.
func lpmMap() *mapjson.Map {
	u32 := &btf.Int{Name: "unsigned int", Size: 4}
	u8 := &btf.Int{Name: "unsigned char", Size: 1}
	u64 := &btf.Int{Name: "unsigned long long", Size: 8}
	key := &btf.Struct{Name: "lpm_key", Size: 8, Members: []btf.Member{
		{Name: "prefixlen", Type: u32},
		{Name: "addr", Type: &btf.Array{Type: u8, Index: u32, Nelems: 4}, Offset: 32},
	}}
	return &mapjson.Map{Name: "blocklist", Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 16, Key: key, Value: u64}
}

func TestParseKeyValue(t *testing.T) {
	typed := lpmMap()
	plain := &mapjson.Map{Name: "h", Type: ebpf.Hash, KeySize: 4, ValueSize: 2, MaxEntries: 4}
	perCPU := &mapjson.Map{Name: "pc", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 4, MaxEntries: 4, CPUs: 2,
		Value: &btf.Int{Name: "unsigned int", Size: 4}}
	for _, tc := range []struct {
		name  string
		m     *mapjson.Map
		key   string
		value string
		want  string // key hex "/" value hex, or the error's text
		err   bool
	}{
		{"hex", typed, "20 00 00 00 0a 00 00 01", "05 00 00 00 00 00 00 00", "200000000a000001/0500000000000000", false},
		{"typed", typed, `{"prefixlen": 24, "addr": [192, 168, 0, 0]}`, "7", "18000000c0a80000/0700000000000000", false},
		{"typed string of hex", typed, `["0x08","0x00","0x00","0x00","0x0a","0x00","0x00","0x00"]`, `["0x01","0x00","0x00","0x00","0x00","0x00","0x00","0x00"]`, "080000000a000000/0100000000000000", false},
		{"plain hex", plain, "01 02 03 04", "ff 00", "01020304/ff00", false},
		{"per-CPU, one value for all", perCPU, "01 00 00 00", "2a 00 00 00", "01000000/2a000000000000002a00000000000000", false},
		{"per-CPU, typed per CPU", perCPU, "01 00 00 00", `{"values": [{"cpu": 1, "value": 9}]}`, "01000000/00000000000000000900000000000000", false},
		{"key too short (hex)", plain, "01 02", "ff 00", "key of 2 bytes, want 4", true},
		{"key too short, no BTF", plain, `[1, 2]`, "ff 00", "2 bytes, want 4", true},
		{"value too long", plain, "01 02 03 04", "ff 00 00", "value of 3 bytes, want 2", true},
		{"bad hex", plain, "01 02 0x 04", "00 00", "neither hex bytes", true},
		{"typed field unknown", typed, `{"prefix": 24}`, "1", "prefix", true},
		{"typed value out of range", typed, "20 00 00 00 0a 00 00 01", "-1", "value", true},
		{"JSON for a map without BTF", plain, `{"a": 1}`, "00 00", "no BTF type", true},
		{"per-CPU CPU out of range", perCPU, "01 00 00 00", `{"values": [{"cpu": 5, "value": 9}]}`, "cpu 5", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseKey(tc.m, tc.key)
			var v []byte
			if err == nil {
				v, err = ParseValue(tc.m, tc.value, nil)
			}
			if tc.err {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want one saying %q", err, tc.want)
				}
				if !strings.Contains(err.Error(), tc.m.Name) {
					t.Errorf("error %q does not name the map", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(k) + "/" + hex.EncodeToString(v); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestParseValue_keepsFields checks that typed input changes only the
// fields it names, on the element's current value.
func TestParseValue_keepsFields(t *testing.T) {
	u16 := &btf.Int{Name: "u16", Size: 2}
	m := &mapjson.Map{Name: "s", Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1,
		Value: &btf.Struct{Name: "pair", Size: 4, Members: []btf.Member{{Name: "a", Type: u16}, {Name: "b", Type: u16, Offset: 16}}}}
	v, err := ParseValue(m, `{"b": 2}`, []byte{7, 0, 9, 0})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v, []byte{7, 0, 2, 0}) {
		t.Errorf("value %x, want 07000200", v)
	}
}

func TestEntryText(t *testing.T) {
	plain := &mapjson.Map{Name: "h", Type: ebpf.Hash, KeySize: 2, ValueSize: 3}
	if got, want := EntryText(plain, Entry{Key: []byte{1, 2}, Value: []byte{0xa, 0xb, 0xc}}), "key: 01 02  value: 0a 0b 0c\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	pc := &mapjson.Map{Name: "pc", Type: ebpf.PerCPUHash, KeySize: 1, ValueSize: 2, CPUs: 2}
	got := EntryText(pc, Entry{Key: []byte{9}, Value: []byte{1, 2, 0, 0, 0, 0, 0, 0, 3, 4, 0, 0, 0, 0, 0, 0}})
	want := "key:\n09\nvalue (CPU 00): 01 02\nvalue (CPU 01): 03 04\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestFormatted(t *testing.T) {
	m := lpmMap()
	f, err := Formatted(m, Entry{Key: []byte{32, 0, 0, 0, 10, 0, 0, 1}, Value: []byte{5, 0, 0, 0, 0, 0, 0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := f.Get("key")
	v, _ := f.Get("value")
	if k == nil || v == nil || v.Text != "5" {
		t.Fatalf("formatted %+v", f)
	}
	if p, _ := k.Get("prefixlen"); p == nil || p.Text != "32" {
		t.Errorf("key %+v", k)
	}
	if _, err := Formatted(m, Entry{Key: []byte{1}, Value: make([]byte, 8)}); err == nil {
		t.Error("a key of the wrong size formats")
	}
	if f, err := Formatted(&mapjson.Map{Name: "x", KeySize: 1, ValueSize: 1}, Entry{Key: []byte{1}, Value: []byte{2}}); f != nil || err != nil {
		t.Errorf("a map without BTF gives %v, %v", f, err)
	}
}

func mov(dst isa.Register, imm int32) isa.Instruction {
	return isa.Instruction{Op: isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUMov), Dst: dst, Imm: imm}
}

func TestFormatXlated(t *testing.T) {
	prog := []isa.Instruction{
		mov(isa.R0, 0),
		{Op: isa.OpLoadImm64, Dst: isa.R1, Src: isa.PseudoMapFD, Imm: 42}, {},
		{Op: isa.OpLoadImm64, Dst: isa.R2, Src: isa.PseudoMapValue, Imm: 43}, {Imm: 16},
		{Op: isa.OpCall, Imm: 0x1000},                         // a helper, by offset from __bpf_call_base
		{Op: isa.OpCall, Imm: 12},                             // bpf_tail_call as the kernel dumps it, no symbol
		{Op: isa.OpCall, Src: isa.PseudoCall, Imm: 1, Off: 3}, // subprogram 1, 3 slots on
		{Op: isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUMov) | isa.Opcode(isa.SourceX), Dst: isa.R0, Src: isa.R0, Off: -1},
		{Op: isa.OpExit},
		mov(isa.R0, 1),
		{Op: isa.OpExit},
	}
	u32 := &btf.Int{Name: "unsigned int", Size: 4, Encoding: btf.Unsigned}
	ctx := &btf.Pointer{Target: &btf.Struct{Name: "xdp_md"}}
	fn := &btf.Func{Name: "prog", Type: &btf.FuncProto{Return: u32, Params: []btf.FuncParam{{Name: "ctx", Type: ctx}}}}
	a := Annotations{
		Lines:    map[int]SourceLine{0: {File: "p.c", Line: "return 0;", Number: 7, Column: 2}},
		Funcs:    map[int]*btf.Func{0: fn},
		MapName:  func(id uint32) string { return map[uint32]string{42: "counts"}[id] },
		Symbol:   func(addr uint64) string { return map[uint64]string{0xffff0000 + 0x1000: "bpf_map_lookup_elem"}[addr] },
		CallBase: 0xffff0000,
	}
	got := FormatXlated(prog, a)
	want := []string{
		"(b7) r0 = 0x0",
		"(18) r1 = map[id:42] ll ; counts",
		"(18) r2 = map[id:43][0]+16 ll",
		"(85) call bpf_map_lookup_elem#4096",
		"(85) call bpf_tail_call#12",
		"(85) call pc+3",
		"(bf) r0 = &(void __percpu *)(r0)",
		"(95) exit",
		"(b7) r0 = 0x1",
		"(95) exit",
	}
	if len(got) != len(want) {
		t.Fatalf("%d instructions, want %d: %+v", len(got), len(want), got)
	}
	pcs := []int{0, 1, 3, 5, 6, 7, 8, 9, 10, 11}
	for i, x := range got {
		if x.Disasm != want[i] || x.PC != pcs[i] {
			t.Errorf("instruction %d: pc %d %q, want pc %d %q", i, x.PC, x.Disasm, pcs[i], want[i])
		}
	}
	if got[0].Proto != "unsigned int prog(struct xdp_md * ctx)" || !got[0].HasLine || got[0].Src != "return 0;" || got[0].LineNum != 7 {
		t.Errorf("first instruction's annotations: %+v", got[0])
	}
	if got[1].Map != "counts" || got[1].Opcodes != "18 11 00 00 2a 00 00 00 00 00 00 00 00 00 00 00" {
		t.Errorf("map reference: %+v", got[1])
	}
	// Without kallsyms a helper is named by id when the id is one.
	if x := FormatXlated([]isa.Instruction{{Op: isa.OpCall, Imm: 1}}, Annotations{}); x[0].Disasm != "(85) call bpf_map_lookup_elem#1" {
		t.Errorf("helper without symbols: %q", x[0].Disasm)
	}
	// A lddw cut off by the end of the code still formats.
	if x := FormatXlated([]isa.Instruction{{Op: isa.OpLoadImm64, Dst: isa.R1, Src: isa.PseudoMapFD, Imm: 1}}, Annotations{}); len(x) != 1 {
		t.Errorf("truncated lddw: %+v", x)
	}
}

func TestDisasmJited(t *testing.T) {
	// push %rbp; mov %rsp,%rbp; call rel32; leave; ret | xor %eax,%eax; ret
	main := []byte{0x55, 0x48, 0x89, 0xe5, 0xe8, 0xf7, 0x0f, 0x00, 0x00, 0xc9, 0xc3}
	sub := []byte{0x31, 0xc0, 0xc3}
	const base = 0xffffffffc0000000
	in := JitedInput{
		Code:     append(append([]byte(nil), main...), sub...),
		FuncLens: []uint32{uint32(len(main)), uint32(len(sub))},
		Addrs:    []uint64{base, base + uint64(len(main))},
		Names:    []string{"prog"},
		Protos:   []string{"int prog(void * ctx)"},
		Symbol: func(a uint64) string {
			return map[uint64]string{base: "bpf_prog_abc_prog", base + 9 + 0xff7: "bpf_map_lookup_elem"}[a]
		},
		Lines: map[uint64]SourceLine{base + 4: {Line: "x = lookup();"}},
	}
	funcs, err := DisasmJited(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(funcs) != 2 || funcs[0].Name != "prog" || funcs[1].Name != "func#1" || funcs[0].Symbol != "bpf_prog_abc_prog" {
		t.Fatalf("functions %+v", funcs)
	}
	var text []string
	for _, ins := range funcs[0].Insns {
		text = append(text, ins.Disasm)
	}
	want := []string{"push %rbp", "mov %rsp,%rbp", "callq bpf_map_lookup_elem", "leaveq", "retq"}
	if strings.Join(text, "; ") != strings.Join(want, "; ") {
		t.Errorf("main: %q, want %q", text, want)
	}
	if !funcs[0].Insns[2].HasLine || funcs[0].Insns[2].Src != "x = lookup();" || funcs[0].Insns[2].Bytes != "e8 f7 0f 00 00" {
		t.Errorf("call instruction: %+v", funcs[0].Insns[2])
	}
	if len(funcs[1].Insns) != 2 || funcs[1].Insns[0].Disasm != "xor %eax,%eax" {
		t.Errorf("subprogram: %+v", funcs[1].Insns)
	}

	// Undecodable bytes print as (bad), one byte at a time.
	funcs, err = DisasmJited(JitedInput{Code: []byte{0x0f, 0x0b, 0xff, 0xff}})
	if err != nil || len(funcs) != 1 {
		t.Fatal(err)
	}
	n := 0
	for _, ins := range funcs[0].Insns {
		n += strings.Count(ins.Bytes, " ") + 1
	}
	if n != 4 {
		t.Errorf("instructions cover %d of 4 bytes: %+v", n, funcs[0].Insns)
	}

	for _, bad := range []JitedInput{
		{Code: make([]byte, 4), FuncLens: []uint32{3}},
		{Code: make([]byte, 4), FuncLens: []uint32{3, 1 << 31}},
		{Code: make([]byte, 4), FuncLens: make([]uint32, maxJitedFuncs+1)},
	} {
		if _, err := DisasmJited(bad); err == nil {
			t.Errorf("function lengths %d.. for %d bytes: no error", len(bad.FuncLens), len(bad.Code))
		}
	}
}

func TestFeatures_MarshalJSON(t *testing.T) {
	f := &Features{
		Sysctls:      []Sysctl{{Name: "bpf_jit_enable", Value: 1}, {Name: "bpf_jit_limit", Err: "no such file"}},
		Config:       []ConfigOption{{Name: "CONFIG_BPF", Value: "y", Set: true}, {Name: "CONFIG_KPROBE_EVENTS"}},
		BPFSyscall:   true,
		ProgramTypes: []Probe{{Name: "xdp", Available: true}, {Name: "lsm"}},
		MapTypes:     []Probe{{Name: "hash", Available: true}},
		Helpers:      []HelperSet{{ProgType: "xdp", Helpers: []string{"bpf_map_lookup_elem"}}, {ProgType: "tracing", Err: "no probe"}},
		Misc:         []Probe{{Name: "bounded_loops", Available: true}},
	}
	b, err := f.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"system_config":{"bpf_jit_enable":1,"CONFIG_BPF":"y","CONFIG_KPROBE_EVENTS":null},"syscall_config":{"have_bpf_syscall":true},` +
		`"program_types":{"have_xdp_prog_type":true,"have_lsm_prog_type":false},` +
		`"map_types":{"have_hash_map_type":true},` +
		`"helpers":{"xdp_available_helpers":["bpf_map_lookup_elem"],"tracing_available_helpers":[]},` +
		`"misc":{"have_bounded_loops":true}}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	if !json.Valid(b) {
		t.Error("not JSON")
	}
}

func TestTypeNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{ProgTypeName(6), "xdp"},
		{ProgTypeName(32), "netfilter"},
		{ProgTypeName(999), "type 999"},
		{MapTypeName(11), "lpm_trie"},
		{MapTypeName(27), "ringbuf"},
		{LinkTypeName(6), "xdp"},
		{LinkTypeName(11), "tcx"},
		{AttachTypeName(46), "tcx_ingress"},
		{AttachTypeName(1 << 20), "attach_type 1048576"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestParseKernelConfig(t *testing.T) {
	cfg := "# comment\nCONFIG_BPF=y\n# CONFIG_KPROBE_EVENTS is not set\nCONFIG_HZ=250\nCONFIG_BPF_JIT=m\nCONFIG_DEFAULT_HOSTNAME=\"(none)\"\nnoise\n"
	opts, err := ParseKernelConfig(strings.NewReader(cfg))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ConfigOption{}
	for _, o := range opts {
		got[o.Name] = o
	}
	if len(opts) != len(configOptions) {
		t.Errorf("%d options, want bpftool's %d", len(opts), len(configOptions))
	}
	for name, want := range map[string]ConfigOption{
		"CONFIG_BPF":           {Name: "CONFIG_BPF", Value: "y", Set: true},
		"CONFIG_HZ":            {Name: "CONFIG_HZ", Value: "250", Set: true},
		"CONFIG_BPF_JIT":       {Name: "CONFIG_BPF_JIT", Value: "m", Set: true},
		"CONFIG_KPROBE_EVENTS": {Name: "CONFIG_KPROBE_EVENTS"},
		"CONFIG_XFRM":          {Name: "CONFIG_XFRM"},
	} {
		if got[name] != want {
			t.Errorf("%s: %+v, want %+v", name, got[name], want)
		}
	}
	if _, err := ParseKernelConfig(strings.NewReader("CONFIG_X=" + strings.Repeat("y", maxConfigLine+1))); err == nil {
		t.Error("an endless line parses")
	}
}
