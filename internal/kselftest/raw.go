package kselftest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// The older verifier tests, tools/testing/selftests/bpf/verifier/*.c, are
// initialisers of struct bpf_test (raw instructions, a program type, the
// expected result and log strings, and the instructions whose map fd to
// patch), compiled into test_verifier. The build compiles them the same
// way: the part of test_verifier.c before its functions (the struct, the
// macros, the fill helpers that generate the largest programs and the
// tests[] array over a generated verifier/tests.h), followed by rawMain,
// which prints every test as a JSON line and the instructions into a
// binary file. tests.h puts a marker test before each file's tests, so
// that every test knows its file.

// rawMarker starts the description of the marker test before each file.
const rawMarker = "\\001waggle-file:"

// rawMain is the dumper's main, appended to test_verifier.c's first part.
const rawMain = `
/* waggle internal/kselftest: print the tests above as JSON lines. */
static void ks_str(const char *s)
{
	if (!s) {
		printf("null");
		return;
	}
	putchar('"');
	for (; *s; s++) {
		unsigned char c = *s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void ks_fixup(const char *name, const int *idx)
{
	int i;

	if (!idx[0])
		return;
	printf(",\"%s\":[", name);
	for (i = 0; i < MAX_FIXUPS && idx[i]; i++)
		printf("%s%d", i ? "," : "", idx[i]);
	printf("]");
}

int main(int argc, char **argv)
{
	unsigned long off = 0;
	unsigned int n;
	FILE *bin;

	if (argc != 2 || !(bin = fopen(argv[1], "wb")))
		return 2;
	for (n = 0; n < sizeof(tests) / sizeof(tests[0]); n++) {
		struct bpf_test *t = &tests[n];
		struct bpf_insn *prog = t->insns;
		const char *marker = "` + rawMarker + `";
		int len;

		if (t->descr && !strncmp(t->descr, marker, strlen(marker))) {
			printf("{\"file\":");
			ks_str(t->descr + strlen(marker));
			printf("}\n");
			continue;
		}
		if (t->fill_helper) {
			t->fill_insns = calloc(MAX_TEST_INSNS, sizeof(struct bpf_insn));
			if (!t->fill_insns)
				return 1;
			t->fill_helper(t);
			prog = t->fill_insns;
			len = t->prog_len;
		} else {
			/* The program ends at its last instruction with a
			 * code or an immediate. */
			for (len = MAX_INSNS; len > 1; len--)
				if (prog[len - 1].code || prog[len - 1].imm)
					break;
		}
		if (fwrite(prog, sizeof(*prog), len, bin) != (size_t)len)
			return 1;
		printf("{\"descr\":");
		ks_str(t->descr);
		printf(",\"prog_type\":%d,\"expected_attach_type\":%d,\"flags\":%d",
		       t->prog_type, t->expected_attach_type, t->flags);
		printf(",\"result\":%d,\"result_unpriv\":%d,\"insn_processed\":%u",
		       t->result, t->result_unpriv, t->insn_processed);
		printf(",\"errstr\":");
		ks_str(t->errstr);
		printf(",\"errstr_unpriv\":");
		ks_str(t->errstr_unpriv);
		printf(",\"kfunc\":");
		ks_str(t->kfunc);
		printf(",\"btf\":%s,\"func_info_cnt\":%d,\"kfunc_fixups\":%s",
		       t->btf_types[0] ? "true" : "false", t->func_info_cnt,
		       t->fixup_kfunc_btf_id[0].kfunc ? "true" : "false");
		printf(",\"fixups\":{\"\":[]");
		ks_fixup("map_hash_8b", t->fixup_map_hash_8b);
		ks_fixup("map_hash_48b", t->fixup_map_hash_48b);
		ks_fixup("map_hash_16b", t->fixup_map_hash_16b);
		ks_fixup("map_array_48b", t->fixup_map_array_48b);
		ks_fixup("map_sockmap", t->fixup_map_sockmap);
		ks_fixup("map_sockhash", t->fixup_map_sockhash);
		ks_fixup("map_xskmap", t->fixup_map_xskmap);
		ks_fixup("map_stacktrace", t->fixup_map_stacktrace);
		ks_fixup("prog1", t->fixup_prog1);
		ks_fixup("prog2", t->fixup_prog2);
		ks_fixup("map_in_map", t->fixup_map_in_map);
		ks_fixup("cgroup_storage", t->fixup_cgroup_storage);
		ks_fixup("percpu_cgroup_storage", t->fixup_percpu_cgroup_storage);
		ks_fixup("map_spin_lock", t->fixup_map_spin_lock);
		ks_fixup("map_array_ro", t->fixup_map_array_ro);
		ks_fixup("map_array_wo", t->fixup_map_array_wo);
		ks_fixup("map_array_small", t->fixup_map_array_small);
		ks_fixup("sk_storage_map", t->fixup_sk_storage_map);
		ks_fixup("map_event_output", t->fixup_map_event_output);
		ks_fixup("map_reuseport_array", t->fixup_map_reuseport_array);
		ks_fixup("map_ringbuf", t->fixup_map_ringbuf);
		ks_fixup("map_timer", t->fixup_map_timer);
		ks_fixup("map_kptr", t->fixup_map_kptr);
		printf("},\"off\":%lu,\"len\":%d}\n", off, len);
		off += len;
		free(t->fill_insns);
	}
	return fclose(bin) ? 1 : 0;
}
`

// Files of a raw build, in the objects folder.
const (
	rawJSON = "test_verifier.json"
	rawBin  = "test_verifier.bin"
)

// rawTest is one line of the dumper's output.
type rawTest struct {
	File               string           `json:"file"`
	Descr              string           `json:"descr"`
	ProgType           uint32           `json:"prog_type"`
	ExpectedAttachType uint32           `json:"expected_attach_type"`
	Flags              uint32           `json:"flags"`
	Result             int              `json:"result"`
	ResultUnpriv       int              `json:"result_unpriv"`
	InsnProcessed      int              `json:"insn_processed"`
	Errstr             *string          `json:"errstr"`
	ErrstrUnpriv       *string          `json:"errstr_unpriv"`
	Kfunc              *string          `json:"kfunc"`
	BTF                bool             `json:"btf"`
	FuncInfoCnt        int              `json:"func_info_cnt"`
	KfuncFixups        bool             `json:"kfunc_fixups"`
	Fixups             map[string][]int `json:"fixups"`
	Off                int64            `json:"off"`
	Len                int              `json:"len"`
}

// test_verifier.c's expected results and flags.
const (
	rawUndef         = 0
	rawAccept        = 1
	rawReject        = 2
	rawVerboseAccept = 3

	rawNeedsEfficientUnaligned = 1 << 0 // F_NEEDS_EFFICIENT_UNALIGNED_ACCESS
	rawLoadStrictAlignment     = 1 << 1 // F_LOAD_WITH_STRICT_ALIGNMENT
)

// dumpRaw builds and runs the dumper into the objects folder.
func (b *builder) dumpRaw() error {
	sdir := filepath.Join(b.tree, selftests)
	files, err := filepath.Glob(filepath.Join(sdir, "verifier", "*.c"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no %s/verifier/*.c", selftests)
	}
	sort := slices.Clone(files)
	slices.Sort(sort)
	var h strings.Builder
	h.WriteString("#ifdef FILL_ARRAY\n")
	for _, f := range sort {
		fmt.Fprintf(&h, "{ .descr = \"%s%s\" },\n#include \"%s\"\n", rawMarker, filepath.Base(f), filepath.Base(f))
	}
	h.WriteString("#endif\n")
	if err := os.WriteFile(filepath.Join(sdir, "verifier", "tests.h"), []byte(h.String()), 0o644); err != nil {
		return err
	}
	src, err := os.ReadFile(filepath.Join(sdir, "test_verifier.c"))
	if err != nil {
		return err
	}
	head, _, ok := strings.Cut(string(src), "static int probe_filter_length(")
	if !ok || !strings.Contains(head, "static struct bpf_test tests[] = {") {
		return fmt.Errorf("test_verifier.c: no tests[] array before probe_filter_length")
	}
	dump := filepath.Join(sdir, "waggle_dump_tests.c")
	if err := os.WriteFile(dump, []byte(head+rawMain), 0o644); err != nil {
		return err
	}
	exe := filepath.Join(b.work, "dump_tests")
	// The Makefile's include order for test_verifier: the selftests,
	// tools/lib, tools/include, then the UAPI headers.
	if _, err := b.run(sdir, "clang-19", "-w", "-O1", "-I"+sdir, "-I"+filepath.Join(b.tree, "tools/lib"),
		"-I"+filepath.Join(b.tree, "tools/include"), "-I"+filepath.Join(b.tree, "tools/include/uapi"),
		"-o", exe, dump); err != nil {
		return fmt.Errorf("test_verifier dumper: %s", firstError(err.Error()))
	}
	out, err := b.run(sdir, exe, filepath.Join(b.objs, rawBin))
	if err != nil {
		return fmt.Errorf("test_verifier dumper: %w", err)
	}
	return os.WriteFile(filepath.Join(b.objs, rawJSON), out, 0o644)
}

// rawCases reads the raw tests of a build as cases, as test_verifier.c
// do_test_single and do_test would run them.
func rawCases(dir string) ([]Case, error) {
	f, err := os.Open(filepath.Join(dir, rawJSON))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bin, err := os.ReadFile(filepath.Join(dir, rawBin))
	if err != nil {
		return nil, err
	}
	var cases []Case
	file := ""
	index := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var t rawTest
		if err := json.Unmarshal(sc.Bytes(), &t); err != nil {
			return nil, fmt.Errorf("%s: %w", rawJSON, err)
		}
		if t.File != "" {
			file = "verifier/" + t.File
			continue
		}
		end := (t.Off + int64(t.Len)) * 8
		if t.Off < 0 || t.Len <= 0 || end > int64(len(bin)) {
			return nil, fmt.Errorf("%s: test %q: instructions %d+%d outside %s", rawJSON, t.Descr, t.Off, t.Len, rawBin)
		}
		insns := bin[t.Off*8 : end]
		cases = append(cases, t.cases(file, index, insns)...)
		index++
	}
	return cases, sc.Err()
}

// cases turns a raw test into its privileged case and, for the program
// types test_verifier also runs unprivileged (test_as_unpriv), its
// unprivileged one.
func (t rawTest) cases(file string, index int, insns []byte) []Case {
	typ := ebpf.ProgramType(t.ProgType)
	if typ == ebpf.UnspecifiedProgram {
		typ = ebpf.SocketFilter
	}
	flags := uint32(TestingFlags)
	if t.Flags&rawLoadStrictAlignment != 0 {
		flags |= FlagStrictAlignment
	}
	if t.Flags&rawNeedsEfficientUnaligned != 0 {
		flags |= FlagAnyAlignment
	}
	if t.Flags&^3 != 0 {
		flags |= t.Flags
	}
	fixups := map[string][]int{}
	for k, v := range t.Fixups {
		if k != "" {
			fixups[k] = v
		}
	}
	skip := ""
	switch {
	case t.Kfunc != nil:
		skip = "attaches to kernel function " + *t.Kfunc + " (attach_btf_id): not supported by the harness"
	case t.BTF || t.FuncInfoCnt > 0:
		skip = "loads its own BTF and func info: not supported by the harness"
	case t.KfuncFixups:
		skip = "calls kfuncs whose BTF ids are patched in (bpf_testmod's): not supported by the harness"
	}
	for k := range fixups {
		if _, ok := rawMaps[k]; !ok && skip == "" {
			skip = "needs the map of fixup_" + k + ": not supported by the harness"
		}
	}
	modes := []Mode{Privileged}
	if typ == ebpf.SocketFilter || typ == ebpf.CGroupSKB {
		modes = append(modes, Unprivileged)
	}
	var out []Case
	for _, mode := range modes {
		result, errstr := t.Result, t.Errstr
		if mode == Unprivileged {
			if t.ResultUnpriv != rawUndef {
				result = t.ResultUnpriv
			}
			if t.ErrstrUnpriv != nil {
				errstr = t.ErrstrUnpriv
			}
		}
		name := t.Descr
		if mode == Unprivileged {
			name += " @unpriv"
		}
		c := Case{
			File: file, Program: t.Descr, Index: index, Type: typ, AttachType: ebpf.AttachType(t.ExpectedAttachType),
			Mode: mode, Name: name, Description: t.Descr, Flags: flags, LogLevel: 4, Skip: skip,
			Insns: insns, Fixups: fixups,
		}
		if mode == Privileged {
			c.ExpectProcessed = t.InsnProcessed
		}
		switch result {
		case rawAccept:
			c.Expect = Success
		case rawVerboseAccept:
			c.Expect = Success
			c.LogLevel = 2
		default:
			c.Expect = Failure
		}
		// The log is checked for rejections and verbose acceptances
		// only: tab-separated substrings, in order (cmp_str_seq).
		if errstr != nil && result != rawAccept {
			for _, s := range strings.Split(*errstr, "\t") {
				if s != "" {
					c.Msgs = append(c.Msgs, Msg{Pattern: s})
				}
			}
		}
		out = append(out, c)
	}
	return out
}

// rawMap is a map test_verifier.c do_test_fixup creates for a fixup.
type rawMap struct {
	spec *ebpf.MapSpec
	// value is stored at key 0 (update_map), truncated to the value size.
	value []byte
}

// testVal is test_verifier.c's struct test_val {unsigned int index; int
// foo[11];} as update_map fills it: index = 7*4, foo[6] = 0xabcdef12.
var testVal = func() []byte {
	b := make([]byte, 48)
	b[0] = 28
	copy(b[28:], []byte{0x12, 0xef, 0xcd, 0xab})
	return b
}()

// rawMaps are the maps of the fixups the harness supports, keyed by the
// fixup's name (fixup_map_hash_8b is "map_hash_8b").
var rawMaps = map[string]rawMap{
	"map_hash_8b":         {spec: &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 1, Flags: noPrealloc}},
	"map_hash_48b":        {spec: &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 48, MaxEntries: 1, Flags: noPrealloc}},
	"map_hash_16b":        {spec: &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 16, MaxEntries: 1, Flags: noPrealloc}},
	"map_array_48b":       {spec: &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 48, MaxEntries: 1}, value: testVal},
	"map_array_ro":        {spec: &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 48, MaxEntries: 1, Flags: rdonlyProg}, value: testVal},
	"map_array_wo":        {spec: &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 48, MaxEntries: 1, Flags: wronlyProg}, value: testVal},
	"map_array_small":     {spec: &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 1, MaxEntries: 1}, value: testVal[:1]},
	"map_sockmap":         {spec: &ebpf.MapSpec{Type: ebpf.SockMap, KeySize: 4, ValueSize: 4, MaxEntries: 1}},
	"map_sockhash":        {spec: &ebpf.MapSpec{Type: ebpf.SockHash, KeySize: 4, ValueSize: 4, MaxEntries: 1}},
	"map_xskmap":          {spec: &ebpf.MapSpec{Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 1}},
	"map_stacktrace":      {spec: &ebpf.MapSpec{Type: ebpf.StackTrace, KeySize: 4, ValueSize: 8, MaxEntries: 1}},
	"map_event_output":    {spec: &ebpf.MapSpec{Type: ebpf.PerfEventArray, KeySize: 4, ValueSize: 4, MaxEntries: 1}},
	"map_reuseport_array": {spec: &ebpf.MapSpec{Type: ebpf.ReusePortSockArray, KeySize: 4, ValueSize: 8, MaxEntries: 1}},
	"map_ringbuf":         {spec: &ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: uint32(os.Getpagesize())}},
}

// Map flags of include/uapi/linux/bpf.h.
const (
	noPrealloc = 1 << 0 // BPF_F_NO_PREALLOC
	rdonlyProg = 1 << 7 // BPF_F_RDONLY_PROG
	wronlyProg = 1 << 8 // BPF_F_WRONLY_PROG
)

// RawMap returns the map test_verifier creates for a fixup of a raw
// case (Case.Fixups), with the value it stores at key 0 (nil for none).
func RawMap(fixup string) (*ebpf.MapSpec, []byte, bool) {
	m, ok := rawMaps[fixup]
	if !ok {
		return nil, nil, false
	}
	return m.spec.Copy(), slices.Clone(m.value), true
}

// RawSpec returns a raw case as a collection spec for a loader that
// takes one (cilium/ebpf's, waggle's): one program, "test", with the
// instructions of Case.Fixups referring to maps named after their fixup.
// cilium/ebpf decodes the bytecode, so an instruction it cannot decode
// (the junk tests) is an error, and it keeps ALU offsets only for sdiv,
// smod and movsx.
func RawSpec(c Case) (*ebpf.CollectionSpec, error) {
	if c.Insns == nil {
		return nil, fmt.Errorf("%s: not a raw test", c.ID())
	}
	insns, err := asm.AppendInstructions(nil, bytes.NewReader(c.Insns), binary.LittleEndian, "linux")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.ID(), err)
	}
	// Fixups name raw instruction slots; cilium/ebpf's lddw is one entry.
	slot := make(map[int]int, len(insns))
	iter := insns.Iterate()
	for iter.Next() {
		slot[int(iter.Offset)] = iter.Index
	}
	spec := &ebpf.CollectionSpec{Maps: map[string]*ebpf.MapSpec{}, Programs: map[string]*ebpf.ProgramSpec{}}
	for name, idxs := range c.Fixups {
		ms, _, ok := RawMap(name)
		if !ok {
			return nil, fmt.Errorf("%s: no map for fixup_%s", c.ID(), name)
		}
		ms.Name = name
		spec.Maps[name] = ms
		for _, i := range idxs {
			j, ok := slot[i]
			if !ok || !insns[j].IsLoadFromMap() {
				return nil, fmt.Errorf("%s: fixup_%s: instruction %d is no map load", c.ID(), name, i)
			}
			insns[j] = insns[j].WithReference(name)
		}
	}
	spec.Programs["test"] = &ebpf.ProgramSpec{
		Name: "test", Type: c.Type, AttachType: c.AttachType, Flags: c.Flags,
		License: "GPL", Instructions: insns,
	}
	return spec, nil
}
