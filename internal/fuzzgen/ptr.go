package fuzzgen

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/waggle-bpf/waggle/isa"
)

// ProgType is the Linux program type (enum bpf_prog_type) of a PtrProgram:
// one BPF_PROG_TEST_RUN can run with a packet.
type ProgType uint32

// Program types GeneratePtr produces. The values are Linux's.
const (
	SocketFilter ProgType = 1 // BPF_PROG_TYPE_SOCKET_FILTER: __sk_buff, no direct packet access
	SchedCLS     ProgType = 3 // BPF_PROG_TYPE_SCHED_CLS: __sk_buff, direct packet access
	XDP          ProgType = 6 // BPF_PROG_TYPE_XDP: xdp_md
)

func (t ProgType) String() string {
	switch t {
	case SocketFilter:
		return "socket_filter"
	case SchedCLS:
		return "sched_cls"
	case XDP:
		return "xdp"
	}
	return "prog_type_" + strconv.Itoa(int(t))
}

// MapType is a Linux map type (enum bpf_map_type).
type MapType uint32

// Map types of PtrMaps.
const (
	HashMap        MapType = 1  // BPF_MAP_TYPE_HASH
	ArrayMap       MapType = 2  // BPF_MAP_TYPE_ARRAY
	PerCPUHashMap  MapType = 5  // BPF_MAP_TYPE_PERCPU_HASH
	PerCPUArrayMap MapType = 6  // BPF_MAP_TYPE_PERCPU_ARRAY
	LRUHashMap     MapType = 9  // BPF_MAP_TYPE_LRU_HASH
	LPMTrieMap     MapType = 11 // BPF_MAP_TYPE_LPM_TRIE
)

// PerCPU reports whether each CPU has its own value for a key.
func (t MapType) PerCPU() bool { return t == PerCPUHashMap || t == PerCPUArrayMap }

// IsArray reports whether the map holds every key below MaxEntries, always
// (its elements are reset by writing zeros, never deleted).
func (t MapType) IsArray() bool { return t == ArrayMap || t == PerCPUArrayMap }

// FlagNoPrealloc is BPF_F_NO_PREALLOC, which Linux requires of LPM tries.
const FlagNoPrealloc = 1

// MapSpec describes one map of PtrMaps.
type MapSpec struct {
	Type       MapType
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	Flags      uint32
}

// basicMaps is the number of maps programs use without
// PtrConfig.MoreMaps: the first ones of PtrMaps.
const basicMaps = 5

// LRUMaxEntries is the capacity of PtrMaps' LRU hash: far above what a
// program and its initial contents can insert (fewer than 30 keys), so
// that neither waggle nor Linux evicts, since they evict differently
// (maps/lru.go). Linux's common LRU moves free elements to a CPU's own
// list 128 at a time and evicts when the global list cannot give that
// many (kernel/bpf/bpf_lru_list.c, LOCAL_FREE_TARGET): 1024 elements
// leave 128 spare with up to LRUMaxCPUs possible CPUs.
const (
	LRUMaxEntries = 1024
	LRUMaxCPUs    = 6
)

// PtrMaps returns the maps a PtrProgram may refer to, by index: a map
// reference is a lddw with src isa.PseudoMapIdx and imm the index. Every
// program gets the same set, so a runner creates them once and only resets
// their contents (PtrProgram.Maps) before each run. Programs generated
// without PtrConfig.MoreMaps refer only to the first five (arrays and
// hashes); the others are a per-CPU array, two LPM tries (keys of a u32
// prefix length and 4 or 16 bytes of data), an LRU hash and a per-CPU
// hash. Value sizes that are not multiples of 8 leave per-CPU values
// padding (Linux rounds each CPU's value up to 8 bytes).
func PtrMaps() []MapSpec {
	return []MapSpec{
		{ArrayMap, 4, 8, 4, 0},
		{ArrayMap, 4, 16, 4, 0},
		{ArrayMap, 4, 48, 2, 0},
		{HashMap, 4, 16, 8, 0},
		{HashMap, 8, 48, 8, 0},
		// PtrConfig.MoreMaps
		{PerCPUArrayMap, 4, 12, 4, 0},
		{LPMTrieMap, 4 + 4, 8, 16, FlagNoPrealloc},
		{LPMTrieMap, 4 + 16, 16, 16, FlagNoPrealloc},
		{LRUHashMap, 4, 16, LRUMaxEntries, 0},
		{PerCPUHashMap, 8, 24, 8, 0},
	}
}

// MapEntry is one element of a map's initial contents.
type MapEntry struct {
	Map        int // index into PtrMaps
	Key, Value []byte
}

// PtrProgram is a program of GeneratePtr and its inputs.
type PtrProgram struct {
	Seed uint64
	Type ProgType
	// Insns is the program in the kernel's form except for map references,
	// which are lddw with src isa.PseudoMapIdx and imm an index into
	// PtrMaps (a kernel runner turns them into PseudoMapFD).
	Insns []isa.Instruction
	// Maps is the maps' contents before each run: an array's elements not
	// listed are zero, a hash holds only the keys listed.
	Maps []MapEntry
	// Packets are the inputs, each run on freshly reset maps.
	Packets [][]byte
	// Snippets names the program's pieces in order, "kind/variant" (for
	// example "pkt/jgt" or "map/no-null-check"); the mutated one is also
	// in Mutation.
	Snippets []string
	// Mutation is the snippet the generator deliberately got wrong (one
	// wrong bound, a missing check, a wrong argument), "" for none. It is
	// the intent, not a verdict: some mutations are still safe, and the
	// kernel is the judge.
	Mutation string
	// Nondet says why the program's results may legitimately differ
	// between two engines if the verifier accepts it ("" for none): it
	// reads uninitialised stack (Linux lets privileged programs), or it
	// stores a pointer where the output shows it. Such programs are still
	// run for safety, but their outputs are not compared.
	Nondet string
	// KernelDiff says why the program's results may differ between
	// waggle and the kernel although waggle's engines must agree ("" for
	// none): it reads state the kernel keeps to itself (the random key of
	// bpf_get_hash_recalc's flow hash), or meets a documented kernel bug
	// (testdata/kernel-bugs/README.md).
	KernelDiff string
}

// PtrConfig tunes GeneratePtr. The zero value gives the defaults.
type PtrConfig struct {
	// MaxSnippets bounds the number of snippets; 0 means 6. Each program
	// draws its count uniformly from 1 to MaxSnippets.
	MaxSnippets int
	// MutatePercent is the share of programs, in percent, with one
	// deliberately wrong snippet; 0 means 50, a negative value none.
	MutatePercent int
	// Types are the program types to draw from; nil means all three.
	Types []ProgType
	// MayGoto lets loops use may_goto (Linux 6.9 and later).
	MayGoto bool
	// Helpers adds snippets that call more helpers, on the packet, the
	// stack and through a callback (helperCall: bpf_loop,
	// bpf_get_prandom_u32, bpf_get_smp_processor_id, bpf_csum_diff,
	// bpf_skb_store_bytes, bpf_skb_load_bytes_relative,
	// bpf_get_hash_recalc, bpf_xdp_adjust_tail, bpf_xdp_load_bytes,
	// bpf_xdp_store_bytes), for comparing engines. It is off by default so
	// that a seed keeps giving the program tests have recorded.
	Helpers bool
	// MoreMaps lets the map snippets use every map of PtrMaps, half the
	// time one beyond the arrays and hashes (a per-CPU array, LPM tries,
	// an LRU hash, a per-CPU hash), and gives those maps initial
	// contents. Off by default, like Helpers.
	MoreMaps bool
}

// Registers with a fixed role in generated programs.
const (
	rCtx = isa.R6 // the context, all program long (LD_ABS needs it there)
	rAcc = isa.R7 // the accumulator: every value read is mixed in; returned
)

// Stack layout of generated programs: [-128, 0) is initialised by the
// prologue; below it nothing is written except by snippets that read
// uninitialised stack on purpose.
const (
	stackKey      = -8   // map keys (4 or 8 bytes)
	stackValue    = -64  // a 48-byte buffer: map values, skb_load_bytes
	stackSpill    = -128 // spill slots, -128 to -72
	stackInitLow  = -128 // lowest initialised byte
	stackUninit   = -256 // reads here read what the kernel left
	stackLPMKey   = -40  // LPM trie keys (8 or 20 bytes), in the value buffer
	ptrPacketSize = 256  // largest input packet
)

// Helper ids (enum bpf_func_id).
const (
	fnMapLookup     = 1
	fnMapUpdate     = 2
	fnMapDelete     = 3
	fnSkbLoadBytes  = 26
	fnXDPAdjustHead = 44
	// Those of PtrConfig.Helpers.
	fnGetPrandomU32        = 7
	fnGetSmpProcessorID    = 8
	fnSkbStoreBytes        = 9
	fnCsumDiff             = 28
	fnGetHashRecalc        = 34
	fnXDPAdjustTail        = 65
	fnSkbLoadBytesRelative = 68
	fnLoop                 = 181
	fnXDPLoadBytes         = 189
	fnXDPStoreBytes        = 190
)

// GeneratePtr returns the verifier-exercising program for seed: a prologue,
// 1 to MaxSnippets snippets that each do one pointer or bounds trick
// (packet access behind a check, map lookup and value indexing, stack
// spills and variable offsets, context fields, scalar bounds feeding a
// pointer, helper arguments, bpf-to-bpf calls, loops), and an exit
// returning the accumulator. With probability MutatePercent one snippet
// is a near miss. The same seed and config always give the same program.
func GeneratePtr(seed uint64, cfg PtrConfig) *PtrProgram {
	return generatePtr(rand.New(rand.NewPCG(seed, seed^0x632be59bd9b4e019)), seed, cfg)
}

// GeneratePtrBytes is GeneratePtr with its choices read from b, for
// fuzzing: each choice takes the next 8 bytes, so that a fuzzer's
// mutations of b change individual choices; once b is used up, the
// choices come from a generator seeded with b's hash. Seed is that hash.
func GeneratePtrBytes(b []byte, cfg PtrConfig) *PtrProgram {
	h := uint64(14695981039346656037) // FNV-1a
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return generatePtr(rand.New(&bytesSource{b: b, rest: rand.NewPCG(h, ^h)}), h, cfg)
}

// bytesSource is a rand.Source reading b, then rest.
type bytesSource struct {
	b    []byte
	rest *rand.PCG
}

func (s *bytesSource) Uint64() uint64 {
	if len(s.b) == 0 {
		return s.rest.Uint64()
	}
	var w [8]byte
	n := copy(w[:], s.b)
	s.b = s.b[n:]
	return binary.LittleEndian.Uint64(w[:])
}

func generatePtr(r *rand.Rand, seed uint64, cfg PtrConfig) *PtrProgram {
	if cfg.MaxSnippets <= 0 {
		cfg.MaxSnippets = 6
	}
	if cfg.MutatePercent == 0 {
		cfg.MutatePercent = 50
	}
	if len(cfg.Types) == 0 {
		cfg.Types = []ProgType{XDP, SchedCLS, SocketFilter}
	}
	g := &pgen{r: r, cfg: cfg}
	p := &PtrProgram{Seed: seed}
	g.typ = cfg.Types[g.r.IntN(len(cfg.Types))]
	p.Type = g.typ
	g.prologue()
	n := 1 + g.r.IntN(cfg.MaxSnippets)
	bad := -1
	if g.r.IntN(100) < cfg.MutatePercent {
		bad = g.r.IntN(n)
	}
	for i := range n {
		g.bad = i == bad
		g.snippet()
	}
	// Fold the high half of the accumulator into the 32 bits the test run
	// reports.
	g.e(
		movReg(isa.R0, rAcc),
		movReg(isa.R1, rAcc),
		alu64K(isa.ALURsh, isa.R1, 32),
		alu64X(isa.ALUXor, isa.R0, isa.R1),
		isa.Instruction{Op: isa.OpExit},
	)
	for _, sub := range g.subs {
		g.a.bind(sub.label)
		sub.emit()
	}
	p.Insns = g.a.resolve()
	p.Snippets, p.Mutation, p.Nondet, p.KernelDiff = g.names, g.mutation, g.nondet, g.kernelDiff
	p.Maps = g.mapContents()
	p.Packets = g.packets()
	if cfg.MoreMaps {
		p.Maps = append(p.Maps, g.moreMapContents()...)
	}
	return p
}

// pgen is the state of one GeneratePtr.
type pgen struct {
	r        *rand.Rand
	cfg      PtrConfig
	typ      ProgType
	a        asm
	bad      bool // the snippet being generated is the near miss
	names    []string
	mutation string
	nondet   string
	// kernelDiff is PtrProgram.KernelDiff.
	kernelDiff string
	subs       []subprog
}

type subprog struct {
	label int
	emit  func()
}

func (g *pgen) e(ins ...isa.Instruction) { g.a.emit(ins...) }
func (g *pgen) chance(n int) bool        { return g.r.IntN(n) == 0 }
func (g *pgen) pick(n int) int           { return g.r.IntN(n) }

// name records the snippet kind/variant; a mutated variant is recorded as
// the program's mutation too.
func (g *pgen) name(kind, variant string, mutated bool) {
	s := kind + "/" + variant
	g.names = append(g.names, s)
	if mutated && g.mutation == "" {
		g.mutation = s
	}
}

func (g *pgen) setNondet(why string) {
	if g.nondet == "" {
		g.nondet = why
	}
}

// Instruction constructors.
func alu64K(op isa.ALUOp, dst isa.Register, imm int32) isa.Instruction {
	return isa.Instruction{Op: aluOp(true, op, isa.SourceK), Dst: dst, Imm: imm}
}

func alu64X(op isa.ALUOp, dst, src isa.Register) isa.Instruction {
	return isa.Instruction{Op: aluOp(true, op, isa.SourceX), Dst: dst, Src: src}
}

func alu32K(op isa.ALUOp, dst isa.Register, imm int32) isa.Instruction {
	return isa.Instruction{Op: aluOp(false, op, isa.SourceK), Dst: dst, Imm: imm}
}

func alu32X(op isa.ALUOp, dst, src isa.Register) isa.Instruction {
	return isa.Instruction{Op: aluOp(false, op, isa.SourceX), Dst: dst, Src: src}
}

func stImm(s isa.Size, dst isa.Register, off int16, imm int32) isa.Instruction {
	return isa.Instruction{Op: memOp(isa.ClassST, isa.ModeMEM, s), Dst: dst, Off: off, Imm: imm}
}

func callHelper(id int32) isa.Instruction { return isa.Instruction{Op: isa.OpCall, Imm: id} }

func (g *pgen) ldMap(dst isa.Register, m int) {
	lo := isa.LoadImm64(dst, isa.PseudoMapIdx, uint64(m))
	g.e(lo[0], lo[1])
}

// jmpK and jmpX emit a conditional jump to label l.
func (g *pgen) jmpK(wide bool, op isa.JumpOp, dst isa.Register, imm int32, l int) {
	g.a.jump(isa.Instruction{Op: jmpOp(wide, op, isa.SourceK), Dst: dst, Imm: imm}, l)
}

func (g *pgen) jmpX(wide bool, op isa.JumpOp, dst, src isa.Register, l int) {
	g.a.jump(isa.Instruction{Op: jmpOp(wide, op, isa.SourceX), Dst: dst, Src: src}, l)
}

func (g *pgen) ja(l int) { g.a.jump(isa.Instruction{Op: isa.OpJA}, l) }

// prologue saves the context, makes the accumulator an unknown 32-bit
// value from the context, and initialises [-128, 0) of the stack.
func (g *pgen) prologue() {
	g.e(movReg(rCtx, isa.R1))
	if g.typ == XDP {
		g.e(ldx(isa.SizeW, rAcc, rCtx, 12)) // ingress_ifindex
	} else {
		g.e(ldx(isa.SizeW, rAcc, rCtx, 0)) // len
	}
	for off := int16(-8); off >= stackInitLow; off -= 8 {
		// Small values, so that map keys built from them often exist.
		v := int32(g.pick(6))
		if !g.chance(3) {
			v = g.imm32small()
		}
		g.e(stImm(isa.SizeDW, isa.R10, off, v))
	}
}

// imm32small returns a small non-negative or an interesting value.
func (g *pgen) imm32small() int32 {
	if g.chance(4) {
		return interesting32[g.pick(len(interesting32))]
	}
	return int32(g.pick(256))
}

// snippet emits one snippet, drawn by weight among those of the program
// type.
func (g *pgen) snippet() {
	type choice struct {
		w  int
		fn func()
	}
	var cs []choice
	add := func(w int, fn func()) { cs = append(cs, choice{w, fn}) }
	direct := g.typ != SocketFilter
	if direct {
		add(18, g.pktAccess)
		add(10, g.pktVarOff)
	}
	if g.typ == XDP {
		add(3, g.pktMeta)
		add(4, g.adjustHead)
	} else {
		add(5, g.ldAbs)
		add(5, g.skbLoadBytes)
	}
	add(18, g.mapLookup)
	add(6, g.mapUpdate)
	add(8, g.stackSpill)
	add(6, g.stackVarOff)
	add(10, g.ctxField)
	add(12, g.scalarChain)
	add(6, g.bpfCall)
	add(5, g.loop)
	add(4, g.ptrArith)
	add(2, g.leak)
	if g.cfg.Helpers {
		add(14, g.helperCall)
	}
	total := 0
	for _, c := range cs {
		total += c.w
	}
	k := g.pick(total)
	for _, c := range cs {
		if k < c.w {
			c.fn()
			return
		}
		k -= c.w
	}
}

// variant picks a right variant, or a mutation when the snippet is the
// near miss. It returns the variant and whether it is a mutation.
func (g *pgen) variant(right, wrong []string) (string, bool) {
	if g.bad && len(wrong) > 0 {
		return wrong[g.pick(len(wrong))], true
	}
	return right[g.pick(len(right))], false
}

// pktPtrs loads data and data_end (or, with meta, data_meta and data) of
// the packet.
func (g *pgen) pktPtrs(data, end isa.Register) {
	if g.typ == XDP {
		g.e(ldx(isa.SizeW, data, rCtx, 0), ldx(isa.SizeW, end, rCtx, 4))
		return
	}
	g.e(ldx(isa.SizeW, data, rCtx, 76), ldx(isa.SizeW, end, rCtx, 80))
}

// access emits a load into the accumulator, or a store of it, of size s at
// base+off; t is a scratch register.
func (g *pgen) access(base isa.Register, off int16, s isa.Size, store bool, t isa.Register) {
	if store {
		if g.chance(3) {
			g.e(stImm(s, base, off, g.imm32small()))
		} else {
			g.e(stx(s, base, off, rAcc))
		}
		return
	}
	op := memOp(isa.ClassLDX, isa.ModeMEM, s)
	if s != isa.SizeDW && g.chance(3) {
		op = memOp(isa.ClassLDX, isa.ModeMEMSX, s)
	}
	g.e(isa.Instruction{Op: op, Dst: t, Src: base, Off: off})
	g.mix(t)
}

// mix folds register t into the accumulator.
func (g *pgen) mix(t isa.Register) {
	switch g.pick(3) {
	case 0:
		g.e(alu64X(isa.ALUAdd, rAcc, t))
	case 1:
		g.e(alu64X(isa.ALUXor, rAcc, t))
	default:
		g.e(alu64K(isa.ALUMul, rAcc, 31), alu64X(isa.ALUAdd, rAcc, t))
	}
}

func (g *pgen) size() isa.Size { return sizes[g.pick(4)] }

// fit returns s, or the largest size of at most n bytes if s is larger.
func fit(s isa.Size, n int) isa.Size {
	for i := len(sizes) - 1; i > 0; i-- {
		if sizes[i] == s && s.Bytes() > n {
			s = sizes[i-1]
		}
	}
	return s
}

// pktAccess: a constant-offset packet load or store behind a bounds
// check.
//
//	r2 = data; r3 = data_end
//	r4 = r2; r4 += off+size
//	if r4 > r3 goto skip         (or one of the equivalent forms)
//	access *(size *)(r2 + off)
//	skip:
func (g *pgen) pktAccess() {
	s := g.size()
	off := int16(g.pick(64))
	if g.chance(3) {
		off = int16(g.pick(15))
	}
	n := int32(off) + int32(s.Bytes())
	store := g.chance(3)
	v, bad := g.variant(
		[]string{"jgt", "jlt-rev", "jle-else", "jge-rev-else", "jge-minus1", "two-checks"},
		[]string{"off-by-one", "no-check", "wrong-side", "jmp32", "vs-data", "after-join", "size-up", "neg-off", "jge-exact", "jge-zero-off"})
	switch {
	case v == "jge-minus1" && n == 1:
		// data + 0 < data_end proves a byte, but Linux derives no range
		// from a comparison of the unmodified pointer (off 0, right-open)
		// and rejects the access: that is "jge-zero-off", a near miss.
		v = "jgt"
	case v == "jge-zero-off":
		s, off, n = isa.SizeB, 0, 1
	}
	g.name("pkt", v, bad)
	g.pktPtrs(isa.R2, isa.R3)
	skip := g.a.newLabel()
	at := func() { g.access(isa.R2, off, s, store, isa.R5) }
	check := func(k int32) { g.e(movReg(isa.R4, isa.R2), alu64K(isa.ALUAdd, isa.R4, k)) }
	switch v {
	case "jgt":
		check(n)
		g.jmpX(true, isa.JumpGT, isa.R4, isa.R3, skip)
		at()
	case "jlt-rev":
		check(n)
		g.jmpX(true, isa.JumpLT, isa.R3, isa.R4, skip)
		at()
	case "jle-else", "wrong-side":
		check(n)
		ok := g.a.newLabel()
		if v == "jle-else" {
			g.jmpX(true, isa.JumpLE, isa.R4, isa.R3, ok)
		} else {
			g.jmpX(true, isa.JumpGT, isa.R4, isa.R3, ok)
		}
		g.ja(skip)
		g.a.bind(ok)
		at()
	case "jge-rev-else":
		check(n)
		ok := g.a.newLabel()
		g.jmpX(true, isa.JumpGE, isa.R3, isa.R4, ok)
		g.ja(skip)
		g.a.bind(ok)
		at()
	case "jge-minus1", "jge-zero-off": // data + n - 1 < data_end
		check(n - 1)
		g.jmpX(true, isa.JumpGE, isa.R4, isa.R3, skip)
		at()
	case "jge-exact": // data + n < data_end is not what it checks: >= on n
		check(n)
		g.jmpX(true, isa.JumpGE, isa.R4, isa.R3, skip)
		at()
	case "two-checks": // a looser check first, then the real one
		check(n / 2)
		g.jmpX(true, isa.JumpGT, isa.R4, isa.R3, skip)
		check(n)
		g.jmpX(true, isa.JumpGT, isa.R4, isa.R3, skip)
		at()
	case "off-by-one":
		check(n - 1)
		g.jmpX(true, isa.JumpGT, isa.R4, isa.R3, skip)
		at()
	case "no-check":
		at()
	case "jmp32":
		check(n)
		g.jmpX(false, isa.JumpGT, isa.R4, isa.R3, skip)
		at()
	case "vs-data":
		check(n)
		g.jmpX(true, isa.JumpGT, isa.R4, isa.R2, skip)
		at()
	case "after-join":
		check(n)
		g.jmpX(true, isa.JumpGT, isa.R4, isa.R3, skip)
		g.e(alu64K(isa.ALUAdd, rAcc, 1))
		g.a.bind(skip)
		at()
		return
	case "size-up":
		check(n)
		g.jmpX(true, isa.JumpGT, isa.R4, isa.R3, skip)
		if s == isa.SizeDW {
			off++
		} else {
			s = sizes[slices.Index(sizes[:], s)+1]
		}
		at()
	case "neg-off":
		check(n)
		g.jmpX(true, isa.JumpGT, isa.R4, isa.R3, skip)
		off = -int16(s.Bytes())
		at()
	}
	g.a.bind(skip)
}

// pktVarOff: a packet access at a variable offset, the check after the
// addition.
//
//	r2 = data; r3 = data_end
//	r5 = index (a packet byte behind its own check, or the accumulator
//	     masked)
//	r2 += r5
//	r4 = r2; r4 += off+size; if r4 > r3 goto skip
//	access *(size *)(r2 + off)
func (g *pgen) pktVarOff() {
	s := g.size()
	off := int16(g.pick(16))
	n := int32(off) + int32(s.Bytes())
	store := g.chance(3)
	v, bad := g.variant(
		[]string{"byte-index", "mask64", "mask32", "ucheck", "ucheck32-zext"},
		[]string{"check-before-add", "unbounded", "signed-check", "huge-mask", "sub-index"})
	g.name("pktvar", v, bad)
	g.pktPtrs(isa.R2, isa.R3)
	skip := g.a.newLabel()
	mask := int32(1<<(1+g.pick(8)) - 1)
	switch v {
	case "byte-index":
		g.e(movReg(isa.R4, isa.R2), alu64K(isa.ALUAdd, isa.R4, 1))
		g.jmpX(true, isa.JumpGT, isa.R4, isa.R3, skip)
		g.e(ldx(isa.SizeB, isa.R5, isa.R2, 0))
	case "mask64", "check-before-add", "sub-index":
		g.e(movReg(isa.R5, rAcc), alu64K(isa.ALUAnd, isa.R5, mask))
	case "mask32":
		g.e(alu32X(isa.ALUMov, isa.R5, rAcc), alu32K(isa.ALUAnd, isa.R5, mask))
	case "ucheck":
		g.e(movReg(isa.R5, rAcc))
		g.jmpK(true, isa.JumpGT, isa.R5, mask, skip)
	case "ucheck32-zext":
		g.e(alu32X(isa.ALUMov, isa.R5, rAcc))
		g.jmpK(false, isa.JumpGT, isa.R5, mask, skip)
	case "unbounded":
		g.e(movReg(isa.R5, rAcc))
	case "signed-check":
		g.e(movReg(isa.R5, rAcc))
		g.jmpK(true, isa.JumpSGT, isa.R5, mask, skip)
	case "huge-mask":
		g.e(movReg(isa.R5, rAcc), alu64K(isa.ALUAnd, isa.R5, 0x7fffffff))
	}
	if v == "check-before-add" {
		g.e(movReg(isa.R4, isa.R2), alu64K(isa.ALUAdd, isa.R4, n))
		g.jmpX(true, isa.JumpGT, isa.R4, isa.R3, skip)
		g.e(alu64X(isa.ALUAdd, isa.R2, isa.R5))
	} else {
		if v == "sub-index" {
			g.e(alu64X(isa.ALUSub, isa.R2, isa.R5))
		} else {
			g.e(alu64X(isa.ALUAdd, isa.R2, isa.R5))
		}
		g.e(movReg(isa.R4, isa.R2), alu64K(isa.ALUAdd, isa.R4, n))
		g.jmpX(true, isa.JumpGT, isa.R4, isa.R3, skip)
	}
	g.access(isa.R2, off, s, store, isa.R5)
	g.a.bind(skip)
}

// pktMeta: an XDP data_meta access checked against data (there is no
// metadata in a test run, so the check always fails at run time).
func (g *pgen) pktMeta() {
	s := g.size()
	off := int16(g.pick(8))
	n := int32(off) + int32(s.Bytes())
	v, bad := g.variant([]string{"vs-data"}, []string{"vs-data-end", "no-check", "off-by-one"})
	g.name("meta", v, bad)
	g.e(ldx(isa.SizeW, isa.R2, rCtx, 8))
	if v == "vs-data-end" {
		g.e(ldx(isa.SizeW, isa.R3, rCtx, 4))
	} else {
		g.e(ldx(isa.SizeW, isa.R3, rCtx, 0))
	}
	skip := g.a.newLabel()
	if v != "no-check" {
		k := n
		if v == "off-by-one" {
			k--
		}
		g.e(movReg(isa.R4, isa.R2), alu64K(isa.ALUAdd, isa.R4, k))
		g.jmpX(true, isa.JumpGT, isa.R4, isa.R3, skip)
	}
	g.access(isa.R2, off, s, g.chance(2), isa.R5)
	g.a.bind(skip)
}

// adjustHead: bpf_xdp_adjust_head, after which packet pointers must be
// reloaded.
func (g *pgen) adjustHead() {
	v, bad := g.variant([]string{"reload"}, []string{"stale-ptr", "stale-end"})
	g.name("adjust_head", v, bad)
	deltas := []int32{0, 4, -4, 8, -14, 14, 1}
	delta := deltas[g.pick(len(deltas))]
	g.pktPtrs(isa.R8, isa.R9) // callee-saved: survive the call
	g.e(movReg(isa.R1, rCtx), movImm(isa.R2, delta), callHelper(fnXDPAdjustHead))
	g.mix(isa.R0)
	switch v {
	case "reload":
		g.pktPtrs(isa.R8, isa.R9)
	case "stale-end":
		g.e(ldx(isa.SizeW, isa.R8, rCtx, 0))
	}
	skip := g.a.newLabel()
	s := g.size()
	g.e(movReg(isa.R4, isa.R8), alu64K(isa.ALUAdd, isa.R4, int32(s.Bytes())))
	g.jmpX(true, isa.JumpGT, isa.R4, isa.R9, skip)
	g.access(isa.R8, 0, s, g.chance(3), isa.R5)
	g.a.bind(skip)
}

// ldAbs: legacy packet loads (socket filter and tc), which end the program
// with 0 when out of range.
func (g *pgen) ldAbs() {
	v, bad := g.variant([]string{"abs", "ind"}, []string{"abs-dw", "r6-not-ctx", "ind-unmasked-ok"})
	g.name("ldabs", v, bad)
	ss := []isa.Size{isa.SizeB, isa.SizeH, isa.SizeW}
	s := ss[g.pick(3)]
	k := int32(g.pick(80))
	switch v {
	case "abs":
		g.e(isa.Instruction{Op: memOp(isa.ClassLD, isa.ModeABS, s), Imm: k})
	case "abs-dw":
		g.e(isa.Instruction{Op: memOp(isa.ClassLD, isa.ModeABS, isa.SizeDW), Imm: k})
	case "ind", "ind-unmasked-ok":
		g.e(movReg(isa.R8, rAcc))
		if v == "ind" {
			g.e(alu64K(isa.ALUAnd, isa.R8, 63))
		}
		g.e(isa.Instruction{Op: memOp(isa.ClassLD, isa.ModeIND, s), Src: isa.R8, Imm: k})
	case "r6-not-ctx":
		g.e(movReg(isa.R8, rCtx), movReg(rCtx, rAcc),
			isa.Instruction{Op: memOp(isa.ClassLD, isa.ModeABS, s), Imm: k},
			movReg(rCtx, isa.R8))
	}
	g.mix(isa.R0)
}

// skbLoadBytes: bpf_skb_load_bytes into a stack buffer, then a read of it.
func (g *pgen) skbLoadBytes() {
	v, bad := g.variant([]string{"const", "bounded-len", "var-off"}, []string{"len-too-big", "len-zero", "len-unbounded", "buf-scalar"})
	g.name("skb_load_bytes", v, bad)
	ln := int32(1 + g.pick(48))
	g.e(movReg(isa.R1, rCtx), movImm(isa.R2, int32(g.pick(64))))
	g.e(movReg(isa.R3, isa.R10), alu64K(isa.ALUAdd, isa.R3, stackValue))
	switch v {
	case "const":
		g.e(movImm(isa.R4, ln))
	case "bounded-len":
		g.e(movReg(isa.R4, rAcc), alu64K(isa.ALUAnd, isa.R4, 31), alu64K(isa.ALUAdd, isa.R4, 1))
	case "var-off":
		g.e(movReg(isa.R2, rAcc), alu64K(isa.ALUAnd, isa.R2, 127), movImm(isa.R4, ln))
	case "len-too-big":
		g.e(movImm(isa.R4, -stackValue+1))
	case "len-zero":
		g.e(movImm(isa.R4, 0))
	case "len-unbounded":
		g.e(movReg(isa.R4, rAcc))
	case "buf-scalar":
		g.e(movImm(isa.R3, 0), movImm(isa.R4, ln))
	}
	g.e(callHelper(fnSkbLoadBytes))
	g.mix(isa.R0)
	g.e(ldx(isa.SizeDW, isa.R1, isa.R10, stackValue))
	g.mix(isa.R1)
}

// mapKey sets r2 to a pointer to a key for map m; it returns a mutation
// name when the key is the near miss, "" otherwise.
func (g *pgen) mapKey(m int, bad bool) string {
	ks := int32(PtrMaps()[m].KeySize)
	ksize := isa.SizeW
	if ks == 8 {
		ksize = isa.SizeDW
	}
	if bad {
		switch w := []string{"scalar-key", "key-past-frame", "ctx-key", "pkt-key-unchecked", "null-key"}[g.pick(5)]; w {
		case "scalar-key":
			g.e(movReg(isa.R2, rAcc))
			return w
		case "key-past-frame":
			g.e(movReg(isa.R2, isa.R10), alu64K(isa.ALUAdd, isa.R2, -ks+int32(1+g.pick(int(ks)-1))))
			return w
		case "ctx-key":
			g.e(movReg(isa.R2, rCtx))
			return w
		case "pkt-key-unchecked":
			if g.typ == SocketFilter {
				g.e(movReg(isa.R2, rCtx))
				return "ctx-key"
			}
			g.pktPtrs(isa.R2, isa.R3)
			return w
		default:
			g.e(movImm(isa.R2, 0))
			return "null-key"
		}
	}
	if PtrMaps()[m].Type == LPMTrieMap {
		g.lpmKey(m)
		return ""
	}
	switch g.pick(4) {
	case 0: // a constant key
		g.e(stImm(ksize, isa.R10, stackKey, int32(g.pick(5))))
	case 1: // from the accumulator
		g.e(movReg(isa.R1, rAcc), alu64K(isa.ALUAnd, isa.R1, 7), stx(ksize, isa.R10, stackKey, isa.R1))
	default: // whatever the stack holds
	}
	g.e(movReg(isa.R2, isa.R10), alu64K(isa.ALUAdd, isa.R2, stackKey))
	return ""
}

// pickMap returns the index of a map for a map snippet: one of the first
// five, or with PtrConfig.MoreMaps half the time one of the others.
func (g *pgen) pickMap() int {
	if g.cfg.MoreMaps && g.chance(2) {
		return basicMaps + g.pick(len(PtrMaps())-basicMaps)
	}
	return g.pick(basicMaps)
}

// lpmKey builds a key for LPM trie m at stackLPMKey and points r2 at it:
//
//	*(u32 *)(r10 + stackLPMKey) = prefix length
//	*(u32 *)(r10 + stackLPMKey + 4 + 4i) = data word i
//	r2 = r10 + stackLPMKey
//
// The prefix length is mostly the trie's longest, which a lookup matches
// against every prefix, else shorter, from the accumulator (now and then
// past the longest: a lookup misses, an update fails), or one past it.
// Data words are the trie's initial data (lpmWord), or the accumulator
// masked to the same small bytes.
func (g *pgen) lpmKey(m int) {
	words := (int(PtrMaps()[m].KeySize) - 4) / 4
	maxLen := int32(32 * words)
	switch g.pick(6) {
	case 0:
		g.e(stImm(isa.SizeW, isa.R10, stackLPMKey, int32(g.pick(int(maxLen)+1))))
	case 1:
		g.e(movReg(isa.R1, rAcc), alu64K(isa.ALUAnd, isa.R1, 2*maxLen-1), stx(isa.SizeW, isa.R10, stackLPMKey, isa.R1))
	case 2:
		if g.chance(4) {
			g.e(stImm(isa.SizeW, isa.R10, stackLPMKey, maxLen+1))
			break
		}
		fallthrough
	default:
		g.e(stImm(isa.SizeW, isa.R10, stackLPMKey, maxLen))
	}
	for i := range words {
		off := int16(stackLPMKey + 4 + 4*i)
		if g.chance(4) {
			g.e(movReg(isa.R1, rAcc), alu64K(isa.ALUAnd, isa.R1, 0x03030303), stx(isa.SizeW, isa.R10, off, isa.R1))
			continue
		}
		g.e(stImm(isa.SizeW, isa.R10, off, int32(g.lpmWord(i))))
	}
	g.e(movReg(isa.R2, isa.R10), alu64K(isa.ALUAdd, isa.R2, stackLPMKey))
}

// lpmWord returns a data word of an LPM key or prefix: bytes 0-3, so that
// keys and prefixes often share their first bytes, and words past the
// first mostly 0.
func (g *pgen) lpmWord(i int) uint32 {
	if i > 0 && !g.chance(3) {
		return 0
	}
	var w uint32
	for b := range 4 {
		w |= uint32(g.pick(4)) << (8 * b)
	}
	return w
}

// lookup emits a bpf_map_lookup_elem of map m with a key on the stack,
// leaving the maybe-null value pointer in r0.
func (g *pgen) lookup(m int) {
	g.mapKey(m, false)
	g.ldMap(isa.R1, m)
	g.e(callHelper(fnMapLookup))
}

// nullCheck jumps to skip when r0 is null, in one of two forms.
func (g *pgen) nullCheck(r isa.Register, skip int) {
	if g.chance(2) {
		g.jmpK(true, isa.JumpEq, r, 0, skip)
		return
	}
	ok := g.a.newLabel()
	g.jmpK(true, isa.JumpNE, r, 0, ok)
	g.ja(skip)
	g.a.bind(ok)
}

// mapLookup: bpf_map_lookup_elem, the null check, and accesses to the
// value at constant and variable offsets.
//
//	key on the stack; r2 = r10 - 8; r1 = map; call map_lookup_elem
//	if r0 == 0 goto skip
//	access *(size *)(r0 + off), or r0 += index; access *(size *)(r0 + 0)
func (g *pgen) mapLookup() {
	m := g.pickMap()
	vs := int(PtrMaps()[m].ValueSize)
	v, bad := g.variant(
		[]string{"const", "mask", "ucheck", "atomic", "spill-before-check", "value-as-key"},
		[]string{"no-null-check", "use-before-check", "off-by-one", "mask-too-big", "bound-off-by-one",
			"signed-bound", "bound-jmp32", "bad-key", "map-scalar", "r0-after-call", "r1-after-call", "ptr-jmp32-null"})
	skip := g.a.newLabel()
	if v == "bad-key" {
		v = g.mapKey(m, true)
		g.name("map", v, bad)
	} else {
		g.name("map", v, bad)
		g.mapKey(m, false)
	}
	if v == "map-scalar" {
		g.e(movImm(isa.R1, int32(m)))
	} else {
		g.ldMap(isa.R1, m)
	}
	g.e(callHelper(fnMapLookup))
	s := g.size()
	s = fit(s, vs)
	sb := s.Bytes()
	store := g.chance(3)
	constOff := int16(g.pick(vs-sb+1) / sb * sb)
	switch v {
	case "no-null-check":
		g.access(isa.R0, constOff, s, store, isa.R5)
	case "use-before-check":
		g.access(isa.R0, constOff, s, store, isa.R5)
		g.nullCheck(isa.R0, skip)
	case "ptr-jmp32-null":
		g.jmpK(false, isa.JumpEq, isa.R0, 0, skip)
		g.access(isa.R0, constOff, s, store, isa.R5)
	case "spill-before-check":
		g.e(stx(isa.SizeDW, isa.R10, stackSpill, isa.R0), ldx(isa.SizeDW, isa.R8, isa.R10, stackSpill))
		g.nullCheck(isa.R8, skip)
		g.access(isa.R8, constOff, s, store, isa.R5)
	case "r0-after-call", "r1-after-call":
		g.nullCheck(isa.R0, skip)
		g.e(movReg(isa.R8, isa.R0))
		g.lookup(g.pickMap())
		if v == "r0-after-call" {
			g.access(isa.R0, constOff, s, store, isa.R5)
		} else {
			g.access(isa.R1, 0, isa.SizeB, false, isa.R5)
		}
		g.access(isa.R8, constOff, s, store, isa.R5)
	case "value-as-key":
		g.nullCheck(isa.R0, skip)
		m2 := g.pickMap()
		if int(PtrMaps()[m2].KeySize) > vs {
			m2 = 0
		}
		g.e(movReg(isa.R2, isa.R0))
		g.ldMap(isa.R1, m2)
		g.e(callHelper(fnMapLookup))
		g.nullCheck(isa.R0, skip)
		g.access(isa.R0, 0, isa.SizeB, false, isa.R5)
	default:
		g.nullCheck(isa.R0, skip)
		if !g.chance(3) || v == "const" || v == "off-by-one" {
			off := constOff
			if v == "off-by-one" {
				off = int16(vs - sb + 1)
			}
			g.access(isa.R0, off, s, store, isa.R5)
			if v == "const" || v == "off-by-one" {
				break
			}
		}
		if v == "atomic" {
			as, w := isa.SizeDW, 8
			if vs < 8 || g.chance(2) {
				as, w = isa.SizeW, 4
			}
			off := int16(g.pick(vs/w) * w)
			op := atomicOps[g.pick(len(atomicOps)-1)] // not cmpxchg: it writes r0, the pointer
			src := isa.R5
			g.e(movReg(isa.R5, rAcc))
			g.e(isa.Instruction{Op: memOp(isa.ClassSTX, isa.ModeATOMIC, as), Dst: isa.R0, Src: src, Off: off, Imm: int32(op)})
			if op.Fetches() {
				g.mix(isa.R5)
			}
			break
		}
		// A variable offset from the value itself or the accumulator.
		if g.chance(2) {
			g.e(ldx(isa.SizeDW, isa.R4, isa.R0, 0))
		} else {
			g.e(movReg(isa.R4, rAcc))
		}
		limit := int32(vs - sb) // the largest safe index
		g.boundIndex(isa.R4, limit, v, skip)
		g.e(alu64X(isa.ALUAdd, isa.R0, isa.R4))
		g.access(isa.R0, 0, s, store, isa.R5)
	}
	g.a.bind(skip)
}

// boundIndex bounds r to [0, limit] as variant v says (or, for the
// mutations, almost).
func (g *pgen) boundIndex(r isa.Register, limit int32, v string, skip int) {
	pow := int32(1)
	for pow*2-1 <= limit {
		pow *= 2
	}
	mask := pow - 1 // the largest 2^k-1 <= limit
	switch v {
	case "mask":
		g.e(alu64K(isa.ALUAnd, r, mask))
	case "mask-too-big":
		g.e(alu64K(isa.ALUAnd, r, pow*2-1))
	case "ucheck":
		if g.chance(2) {
			g.jmpK(true, isa.JumpGT, r, limit, skip)
		} else {
			g.jmpK(true, isa.JumpGE, r, limit+1, skip)
		}
	case "bound-off-by-one":
		if g.chance(2) {
			g.jmpK(true, isa.JumpGT, r, limit+1, skip)
		} else {
			g.jmpK(true, isa.JumpGE, r, limit+2, skip)
		}
	case "signed-bound":
		g.jmpK(true, isa.JumpSGT, r, limit, skip)
	case "bound-jmp32":
		g.jmpK(false, isa.JumpGT, r, limit, skip)
	default:
		g.e(alu64K(isa.ALUAnd, r, mask))
	}
}

// mapUpdate: bpf_map_update_elem or bpf_map_delete_elem with key and value
// on the stack.
func (g *pgen) mapUpdate() {
	m := g.pickMap()
	vs := int32(PtrMaps()[m].ValueSize)
	v, bad := g.variant([]string{"update", "update", "delete", "value-from-map"},
		[]string{"value-past-frame", "value-scalar", "bad-key", "flags-ptr", "key-uninit-ok"})
	if v == "bad-key" {
		v = "key:" + g.mapKey(m, true)
	} else if v == "key-uninit-ok" {
		// A key in uninitialised stack: privileged programs may pass it.
		g.e(movReg(isa.R2, isa.R10), alu64K(isa.ALUAdd, isa.R2, stackUninit))
		g.setNondet("map key from uninitialised stack")
	} else {
		g.mapKey(m, false)
	}
	g.name("update", v, bad)
	skip := -1
	if v == "delete" {
		g.ldMap(isa.R1, m)
		g.e(callHelper(fnMapDelete))
		g.mix(isa.R0)
		return
	}
	switch v {
	case "value-past-frame":
		g.e(movReg(isa.R3, isa.R10), alu64K(isa.ALUAdd, isa.R3, -vs+int32(1+g.pick(8))))
	case "value-scalar":
		g.e(movImm(isa.R3, 0))
	case "value-from-map":
		// The value of another lookup of the same map as the new value.
		g.e(stx(isa.SizeDW, isa.R10, stackSpill+8, isa.R2))
		g.ldMap(isa.R1, m)
		g.e(callHelper(fnMapLookup))
		skip = g.a.newLabel()
		g.jmpK(true, isa.JumpEq, isa.R0, 0, skip)
		g.e(movReg(isa.R3, isa.R0), ldx(isa.SizeDW, isa.R2, isa.R10, stackSpill+8))
	default:
		g.e(movReg(isa.R3, isa.R10), alu64K(isa.ALUAdd, isa.R3, stackValue))
	}
	g.ldMap(isa.R1, m)
	if v == "flags-ptr" {
		g.e(movReg(isa.R4, isa.R10))
	} else {
		g.e(movImm(isa.R4, int32(g.pick(3)))) // BPF_ANY, BPF_NOEXIST, BPF_EXIST
	}
	g.e(callHelper(fnMapUpdate))
	g.mix(isa.R0)
	if skip >= 0 {
		g.a.bind(skip)
	}
}

// stackSpill: spills and fills of pointers and bounded scalars.
func (g *pgen) stackSpill() {
	v, bad := g.variant(
		// uninit-read leaves the output uncomparable: rarer.
		[]string{"ctx", "ctx", "stack-ptr", "stack-ptr", "bounded-scalar", "bounded-scalar", "scalar-32", "scalar-32", "uninit-read"},
		[]string{"partial-spill-ptr", "clobbered-ptr", "misaligned-fill", "narrow-fill-bounds", "fill-past-frame", "atomic-over-bounded"})
	g.name("spill", v, bad)
	slot := int16(stackSpill + 8*g.pick(7))
	switch v {
	case "ctx", "clobbered-ptr", "partial-spill-ptr":
		if v == "partial-spill-ptr" {
			g.e(stx(isa.SizeW, isa.R10, slot, rCtx))
		} else {
			g.e(stx(isa.SizeDW, isa.R10, slot, rCtx))
		}
		if v == "clobbered-ptr" {
			g.e(stImm(isa.SizeB, isa.R10, slot+int16(g.pick(8)), 0))
		}
		g.e(ldx(isa.SizeDW, isa.R2, isa.R10, slot))
		off := int16(0)
		if g.typ == XDP {
			off = 12
		}
		g.e(ldx(isa.SizeW, isa.R3, isa.R2, off))
		g.mix(isa.R3)
	case "stack-ptr":
		g.e(movReg(isa.R2, isa.R10), alu64K(isa.ALUAdd, isa.R2, stackValue))
		g.e(stx(isa.SizeDW, isa.R10, slot, isa.R2), ldx(isa.SizeDW, isa.R3, isa.R10, slot))
		g.access(isa.R3, int16(8*g.pick(6)), isa.SizeDW, g.chance(2), isa.R4)
	case "bounded-scalar", "scalar-32", "narrow-fill-bounds", "atomic-over-bounded":
		g.e(movReg(isa.R2, rAcc), alu64K(isa.ALUAnd, isa.R2, 31))
		switch v {
		case "atomic-over-bounded":
			// An atomic add on the spilled bound leaves a sum in the
			// slot, not the bound: the fill is unknown.
			g.e(stx(isa.SizeDW, isa.R10, slot, isa.R2), movImm(isa.R5, 40),
				isa.Instruction{Op: memOp(isa.ClassSTX, isa.ModeATOMIC, isa.SizeDW), Dst: isa.R10, Src: isa.R5, Off: slot, Imm: int32(isa.AtomicAdd)},
				ldx(isa.SizeDW, isa.R3, isa.R10, slot))
		case "bounded-scalar":
			g.e(stx(isa.SizeDW, isa.R10, slot, isa.R2), ldx(isa.SizeDW, isa.R3, isa.R10, slot))
		case "scalar-32":
			g.e(stx(isa.SizeW, isa.R10, slot, isa.R2), ldx(isa.SizeW, isa.R3, isa.R10, slot))
		default:
			g.e(stx(isa.SizeDW, isa.R10, slot, isa.R2), ldx(isa.SizeW, isa.R3, isa.R10, slot+4))
		}
		g.e(movReg(isa.R4, isa.R10), alu64K(isa.ALUAdd, isa.R4, stackValue), alu64X(isa.ALUAdd, isa.R4, isa.R3))
		g.access(isa.R4, 0, isa.SizeB, g.chance(2), isa.R5)
	case "misaligned-fill":
		g.e(stx(isa.SizeDW, isa.R10, slot, rAcc), ldx(isa.SizeDW, isa.R3, isa.R10, slot+4))
		g.mix(isa.R3)
	case "fill-past-frame":
		g.e(ldx(isa.SizeDW, isa.R3, isa.R10, -4))
		g.mix(isa.R3)
	case "uninit-read":
		g.e(ldx(isa.SizeDW, isa.R3, isa.R10, stackUninit+int16(8*g.pick(8))))
		g.mix(isa.R3)
		g.setNondet("reads uninitialised stack")
	}
}

// stackVarOff: stack accesses at a variable offset, and a stack pointer
// with a variable offset passed to a helper as a key.
func (g *pgen) stackVarOff() {
	s := g.size()
	v, bad := g.variant([]string{"mask", "ucheck", "helper-key"},
		[]string{"mask-past-frame", "unmasked", "below-frame", "helper-key-past-frame"})
	g.name("stackvar", v, bad)
	skip := g.a.newLabel()
	limit := int32(-stackValue - s.Bytes()) // 64 - size
	if v == "helper-key" {
		limit = -stackValue - 4 // the key of map 0 is 4 bytes
	}
	g.e(movReg(isa.R3, rAcc))
	switch v {
	case "mask", "helper-key":
		g.boundIndex(isa.R3, limit, "mask", skip)
	case "ucheck":
		g.boundIndex(isa.R3, limit, "ucheck", skip)
	case "mask-past-frame", "helper-key-past-frame":
		g.e(alu64K(isa.ALUAnd, isa.R3, 127))
	case "below-frame":
		g.e(alu64K(isa.ALUAnd, isa.R3, 7))
	}
	if s != isa.SizeB {
		g.e(alu64K(isa.ALUAnd, isa.R3, -int32(s.Bytes()))) // aligned
	}
	g.e(movReg(isa.R2, isa.R10))
	if v == "below-frame" {
		g.e(alu64K(isa.ALUAdd, isa.R2, -520))
	} else {
		g.e(alu64K(isa.ALUAdd, isa.R2, stackValue))
	}
	g.e(alu64X(isa.ALUAdd, isa.R2, isa.R3))
	if v == "helper-key" || v == "helper-key-past-frame" {
		g.ldMap(isa.R1, 0)
		g.e(callHelper(fnMapLookup))
		g.jmpK(true, isa.JumpEq, isa.R0, 0, skip)
		g.access(isa.R0, 0, isa.SizeW, false, isa.R5)
	} else {
		g.access(isa.R2, 0, s, g.chance(2), isa.R5)
	}
	g.a.bind(skip)
}

// ctxField is one field of a context, with the sizes Linux allows.
type ctxField struct {
	off      int16
	narrow   bool // 1- and 2-byte reads allowed
	writable bool // for sched_cls
}

var (
	xdpFields = []ctxField{{12, false, false}, {16, false, false}}
	skbFields = []ctxField{
		{0, true, false}, {4, true, false}, {8, true, true}, {12, true, true}, {16, true, false},
		{20, true, false}, {24, true, false}, {28, true, false}, {32, true, true}, {36, true, false},
		{40, true, false}, {44, true, true}, {48, true, true}, {52, true, true}, {56, true, true},
		{60, true, true}, {64, true, true}, {68, true, false},
	}
)

// ctxField: context reads and writes, right and wrong.
func (g *pgen) ctxField() {
	v, bad := g.variant([]string{"read", "read", "narrow", "write", "write-read"},
		[]string{"wrong-size", "misaligned", "past-end", "write-ro", "ctx-arith", "ctx-var-off", "dw-read", "sk-data"})
	g.name("ctx", v, bad)
	fields := skbFields
	if g.typ == XDP {
		fields = xdpFields
	}
	f := fields[g.pick(len(fields))]
	writable := func(f ctxField) bool {
		switch g.typ {
		case SchedCLS:
			return f.writable
		case SocketFilter:
			return f.off >= 48 && f.off < 68 // cb[0..4]
		}
		return false
	}
	if (v == "write" || v == "write-read") && !writable(f) {
		if g.typ == XDP {
			v = "read"
		} else {
			f = ctxField{48 + 4*int16(g.pick(5)), true, true}
		}
	}
	if v == "narrow" && !f.narrow {
		v = "read"
	}
	switch v {
	case "read":
		g.e(ldx(isa.SizeW, isa.R2, rCtx, f.off))
	case "narrow":
		if g.chance(2) {
			g.e(ldx(isa.SizeB, isa.R2, rCtx, f.off+int16(g.pick(4))))
		} else {
			g.e(ldx(isa.SizeH, isa.R2, rCtx, f.off+2*int16(g.pick(2))))
		}
	case "write", "write-read":
		src := rAcc
		if g.typ == SchedCLS && f.off == 12 {
			// Linux ignores a queue_mapping of NO_QUEUE_MAPPING (0xffff)
			// or more; waggle's one-instruction context rewrite stores it
			// truncated (a known difference, progtype/ctx_skb.go), so
			// write only values below.
			g.e(movReg(isa.R3, rAcc), alu64K(isa.ALUAnd, isa.R3, 0x7fff))
			src = isa.R3
		}
		g.e(stx(isa.SizeW, rCtx, f.off, src))
		if v == "write" {
			return
		}
		g.e(ldx(isa.SizeW, isa.R2, rCtx, f.off))
	case "wrong-size":
		if g.typ == XDP {
			g.e(ldx(isa.SizeH, isa.R2, rCtx, f.off))
		} else {
			g.e(ldx(isa.SizeDW, isa.R2, rCtx, 0)) // len is 4 bytes
		}
	case "misaligned":
		g.e(ldx(isa.SizeW, isa.R2, rCtx, f.off+2))
	case "past-end":
		end := int16(24)
		if g.typ != XDP {
			end = 192 // sizeof(struct __sk_buff)
		}
		g.e(ldx(isa.SizeW, isa.R2, rCtx, end))
	case "write-ro":
		g.e(stx(isa.SizeW, rCtx, 0, rAcc), movImm(isa.R2, 0))
	case "ctx-arith":
		g.e(movReg(isa.R3, rCtx), alu64K(isa.ALUAdd, isa.R3, int32(f.off)), ldx(isa.SizeW, isa.R2, isa.R3, 0))
	case "ctx-var-off":
		g.e(movReg(isa.R3, rAcc), alu64K(isa.ALUAnd, isa.R3, 4), alu64X(isa.ALUAdd, isa.R3, rCtx), ldx(isa.SizeW, isa.R2, isa.R3, f.off))
	case "dw-read":
		g.e(ldx(isa.SizeDW, isa.R2, rCtx, f.off&^7))
	case "sk-data":
		if g.typ == SocketFilter {
			g.e(ldx(isa.SizeW, isa.R2, rCtx, 76))
		} else if g.typ == XDP {
			g.e(ldx(isa.SizeW, isa.R2, rCtx, 20)) // egress_ifindex: devmap programs only
		} else {
			g.e(ldx(isa.SizeW, isa.R2, rCtx, 168)) // sk: a pointer, may be null
		}
	}
	g.mix(isa.R2)
}

// scalarChain: an unknown scalar through a few ALU operations, then bounded
// and used as an offset into the stack or a map value.
func (g *pgen) scalarChain() {
	v, bad := g.variant([]string{"mask", "ucheck", "two-sided", "mask32"},
		[]string{"ucheck-obo", "signed-only", "jmp32-check", "mask-obo", "check-then-op", "none"})
	g.name("scalar", v, bad)
	skip := g.a.newLabel()
	// The base: the stack buffer (64 bytes) or a map value.
	var limitBytes int
	onStack := false
	if g.chance(2) {
		m := g.pickMap()
		g.lookup(m)
		g.nullCheck(isa.R0, skip)
		g.e(movReg(isa.R8, isa.R0))
		limitBytes = int(PtrMaps()[m].ValueSize)
	} else {
		g.e(movReg(isa.R8, isa.R10), alu64K(isa.ALUAdd, isa.R8, stackValue))
		limitBytes = -stackValue
		onStack = true
	}
	s := g.size()
	s = fit(s, limitBytes)
	limit := int32(limitBytes - s.Bytes())
	// The unknown value.
	r := isa.R4
	if onStack && bad {
		// A wrong bound may let the offset reach below the initialised
		// stack, which Linux lets privileged programs read, at constant
		// and variable offsets alike.
		g.setNondet("may read uninitialised stack")
	}
	switch g.pick(3) {
	case 0:
		g.e(movReg(r, rAcc))
	case 1:
		g.e(alu32X(isa.ALUMov, r, rAcc))
	default:
		// From the value buffer, never a pointer (the spill slots may
		// hold one, and a pointer's value differs between runs).
		g.e(ldx(isa.SizeDW, r, isa.R10, int16(stackValue+8*g.pick(6))))
	}
	for range g.pick(4) {
		g.scalarOp(r)
	}
	switch v {
	case "mask", "mask-obo":
		pow := int32(1)
		for pow*2-1 <= limit {
			pow *= 2
		}
		mask := pow - 1
		if v == "mask-obo" {
			mask = limit + 1
		}
		g.e(alu64K(isa.ALUAnd, r, mask))
	case "mask32":
		pow := int32(1)
		for pow*2-1 <= limit {
			pow *= 2
		}
		g.e(alu32K(isa.ALUAnd, r, pow-1))
	case "ucheck":
		g.jmpK(true, isa.JumpGT, r, limit, skip)
	case "ucheck-obo":
		g.jmpK(true, isa.JumpGT, r, limit+1, skip)
	case "two-sided":
		g.jmpK(true, isa.JumpSLT, r, 0, skip)
		g.jmpK(true, isa.JumpSGT, r, limit, skip)
	case "signed-only":
		g.jmpK(true, isa.JumpSGT, r, limit, skip)
	case "jmp32-check":
		g.jmpK(false, isa.JumpGT, r, limit, skip)
	case "check-then-op":
		g.jmpK(true, isa.JumpGT, r, limit, skip)
		g.e(alu64K(isa.ALULsh, r, 1))
	}
	if onStack && s != isa.SizeB {
		// Stack accesses must be aligned, variable offsets too; AND with
		// -size keeps the bounds.
		g.e(alu64K(isa.ALUAnd, r, -int32(s.Bytes())))
	}
	g.e(alu64X(isa.ALUAdd, isa.R8, r))
	g.access(isa.R8, 0, s, g.chance(3), isa.R5)
	g.a.bind(skip)
}

// scalarOp applies one ALU operation to r, of the kinds the verifier's
// bounds tracking handles in its own ways.
func (g *pgen) scalarOp(r isa.Register) {
	wide := !g.chance(3)
	alu := func(op isa.ALUOp, imm int32) isa.Instruction {
		if wide {
			return alu64K(op, r, imm)
		}
		return alu32K(op, r, imm)
	}
	switch g.pick(13) {
	case 0:
		g.e(alu(isa.ALUAnd, int32(1<<(1+g.pick(12))-1)))
	case 1:
		g.e(alu(isa.ALUOr, int32(g.pick(16))))
	case 2:
		g.e(alu(isa.ALULsh, int32(g.pick(8))))
	case 3:
		g.e(alu(isa.ALURsh, int32(g.pick(64)%32+g.pick(2)*32*b2i(wide))))
	case 4:
		g.e(alu(isa.ALUArsh, int32(g.pick(32))))
	case 5:
		g.e(isa.Instruction{Op: aluOp(wide, isa.ALUNeg, isa.SourceK), Dst: r})
	case 6:
		// le/be (class ALU) or bswap (class ALU64, which has no be form)
		op := aluOp(false, isa.ALUEnd, []isa.Source{isa.SourceLE, isa.SourceBE}[g.pick(2)])
		if g.chance(3) {
			op = aluOp(true, isa.ALUEnd, isa.SourceLE)
		}
		g.e(isa.Instruction{Op: op, Dst: r, Imm: []int32{16, 32, 64}[g.pick(3)]})
	case 7:
		g.e(alu(isa.ALUMul, int32(g.pick(9))))
	case 8: // division by a register that may be zero
		g.e(movReg(isa.R5, rAcc), alu64K(isa.ALUAnd, isa.R5, 15))
		if wide {
			g.e(alu64X(isa.ALUDiv, r, isa.R5))
		} else {
			g.e(alu32X(isa.ALUDiv, r, isa.R5))
		}
	case 9:
		g.e(alu(isa.ALUMod, int32(1+g.pick(64))))
	case 10:
		g.e(alu(isa.ALUAdd, int32(g.pick(32))-16))
	case 11:
		g.e(alu(isa.ALUXor, int32(g.pick(64))))
	default:
		g.e(isa.Instruction{Op: aluOp(true, isa.ALUMov, isa.SourceX), Dst: r, Src: r, Off: []int16{8, 16, 32}[g.pick(3)]})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// bpfCall: a bpf-to-bpf call passing a pointer (to the caller's stack, the
// context, a map value or the packet) and a scalar; the callee reads
// through the pointer.
func (g *pgen) bpfCall() {
	v, bad := g.variant([]string{"stack", "ctx", "map-value", "packet", "stack-write"},
		[]string{"off-past-end", "scalar-arg", "pkt-unchecked", "r1-after-call", "maybe-null"})
	g.name("call", v, bad)
	skip := g.a.newLabel()
	var size int // bytes readable through r1
	switch v {
	case "stack", "stack-write", "off-past-end", "r1-after-call":
		g.e(movReg(isa.R1, isa.R10), alu64K(isa.ALUAdd, isa.R1, stackValue))
		size = -stackValue
	case "ctx":
		g.e(movReg(isa.R1, rCtx))
		size = -1
	case "map-value", "maybe-null":
		m := g.pickMap()
		g.lookup(m)
		if v == "map-value" {
			g.nullCheck(isa.R0, skip)
		}
		g.e(movReg(isa.R1, isa.R0))
		size = int(PtrMaps()[m].ValueSize)
	case "packet", "pkt-unchecked":
		if g.typ == SocketFilter {
			g.e(movReg(isa.R1, isa.R10), alu64K(isa.ALUAdd, isa.R1, stackValue))
			size = -stackValue
			break
		}
		size = 8 + g.pick(24)
		g.pktPtrs(isa.R1, isa.R3)
		if v == "packet" {
			g.e(movReg(isa.R4, isa.R1), alu64K(isa.ALUAdd, isa.R4, int32(size)))
			g.jmpX(true, isa.JumpGT, isa.R4, isa.R3, skip)
		}
	case "scalar-arg":
		g.e(movReg(isa.R1, rAcc))
		size = 8
	}
	g.e(movReg(isa.R2, rAcc), alu64K(isa.ALUAnd, isa.R2, 0xff))
	label := g.a.newLabel()
	g.a.jump(isa.Instruction{Op: isa.OpCall, Src: isa.PseudoCall}, label)
	g.mix(isa.R0)
	if v == "r1-after-call" {
		g.e(ldx(isa.SizeB, isa.R3, isa.R1, 0))
		g.mix(isa.R3)
	}
	g.a.bind(skip)
	// The callee: reads (or writes) through r1 at a constant offset.
	var s isa.Size
	var off int16
	if size < 0 { // ctx: a field
		off = 0
		if g.typ == XDP {
			off = 12
		}
		s = isa.SizeW
	} else {
		s = g.size()
		s = fit(s, size)
		off = int16(g.pick(size-s.Bytes()+1) / s.Bytes() * s.Bytes())
		if v == "off-past-end" {
			off = int16(size - s.Bytes() + s.Bytes())
		}
	}
	write := v == "stack-write"
	g.subs = append(g.subs, subprog{label: label, emit: func() {
		if write {
			g.e(stx(s, isa.R1, off, isa.R2), movReg(isa.R0, isa.R2))
		} else {
			g.e(isa.Instruction{Op: memOp(isa.ClassLDX, isa.ModeMEM, s), Dst: isa.R0, Src: isa.R1, Off: off},
				alu64X(isa.ALUAdd, isa.R0, isa.R2))
		}
		g.e(isa.Instruction{Op: isa.OpExit})
	}})
}

// loop: bounded loops over the stack or the packet, with may_goto when
// the config allows, and loops the verifier cannot bound.
func (g *pgen) loop() {
	right := []string{"const", "masked", "pkt-walk"}
	// Most loops the verifier cannot bound make it walk to its limit of 1M
	// instructions, which takes Linux seconds; these two it recognises at
	// once: the state at the loop head repeats.
	wrong := []string{"no-progress", "unbounded"}
	if g.cfg.MayGoto {
		right = append(right, "may-goto-unbounded")
	}
	if g.typ == SocketFilter {
		right = right[:2]
	}
	v, bad := g.variant(right, wrong)
	g.name("loop", v, bad)
	head, out := g.a.newLabel(), g.a.newLabel()
	// may_goto would bound the loops that must stay unbounded, and make
	// the kernel run "no-progress" 8M times.
	useMayGoto := g.cfg.MayGoto && (v == "may-goto-unbounded" || (!bad && g.chance(3)))
	switch v {
	case "const", "no-progress":
		g.e(movImm(isa.R2, int32(1+g.pick(12))))
	case "masked", "may-goto-unbounded", "unbounded":
		g.e(movReg(isa.R2, rAcc))
		if v == "masked" {
			g.e(alu64K(isa.ALUAnd, isa.R2, 15))
		} else if v == "may-goto-unbounded" {
			g.e(alu64K(isa.ALUAnd, isa.R2, 0xfff))
		}
	case "pkt-walk":
		g.pktPtrs(isa.R8, isa.R9)
		g.e(movImm(isa.R2, int32(1+g.pick(24))))
	}
	g.a.bind(head)
	if useMayGoto {
		g.a.jump(isa.Instruction{Op: isa.OpMayGoto}, out)
	}
	switch v {
	case "pkt-walk":
		g.e(movReg(isa.R4, isa.R8), alu64K(isa.ALUAdd, isa.R4, 1))
		g.jmpX(true, isa.JumpGT, isa.R4, isa.R9, out)
		g.e(ldx(isa.SizeB, isa.R3, isa.R8, 0))
		g.mix(isa.R3)
		g.e(movReg(isa.R8, isa.R4))
	default:
		if bad {
			// The loops that must not end touch nothing else: Linux
			// recognises them only when the state at the head repeats
			// exactly, and otherwise walks to its 1M limit, for seconds.
			g.e(ldx(isa.SizeB, isa.R3, isa.R10, stackValue))
			break
		}
		// A stack byte indexed by the counter.
		g.e(movReg(isa.R3, isa.R2), alu64K(isa.ALUAnd, isa.R3, 31),
			movReg(isa.R4, isa.R10), alu64K(isa.ALUAdd, isa.R4, stackValue), alu64X(isa.ALUAdd, isa.R4, isa.R3),
			ldx(isa.SizeB, isa.R3, isa.R4, 0))
		if v == "may-goto-unbounded" {
			// Linux converges on a may_goto loop once the state at its
			// head stops growing; an add to the accumulator would grow
			// it at every iteration.
			g.e(alu64X(isa.ALUXor, rAcc, isa.R3))
		} else {
			g.mix(isa.R3)
		}
	}
	switch v {
	case "no-progress":
		g.jmpK(true, isa.JumpSGT, isa.R2, 0, head)
	case "unbounded": // r2 *= 3 never reaches 0 from a value that is not
		g.e(alu64K(isa.ALUMul, isa.R2, 3))
		g.jmpK(true, isa.JumpNE, isa.R2, 0, head)
	default:
		g.e(alu64K(isa.ALUSub, isa.R2, 1))
		g.jmpK(true, isa.JumpSGT, isa.R2, 0, head)
	}
	g.a.bind(out)
}

// ptrArith: pointer arithmetic privileged programs may do, and what no
// program may.
func (g *pgen) ptrArith() {
	right := []string{"stack-diff", "stack-add-const"}
	if g.typ != SocketFilter {
		right = append(right, "pkt-len")
	}
	v, bad := g.variant(right, []string{"ptr-mul", "ptr-and", "ptr-lsh", "ptr32-add", "pkt-end-add", "ptr-plus-ptr", "ptr-neg", "r10-write", "stack-sub-const"})
	g.name("ptrarith", v, bad)
	switch v {
	case "stack-diff": // r10 - (r10 - k) = k
		k := int32(8 * (1 + g.pick(16)))
		g.e(movReg(isa.R2, isa.R10), alu64K(isa.ALUAdd, isa.R2, -k), movReg(isa.R3, isa.R10), alu64X(isa.ALUSub, isa.R3, isa.R2))
		g.mix(isa.R3)
	case "stack-add-const":
		g.e(movReg(isa.R2, isa.R10), alu64K(isa.ALUAdd, isa.R2, -16), alu64K(isa.ALUAdd, isa.R2, 8), ldx(isa.SizeDW, isa.R3, isa.R2, -8))
		g.mix(isa.R3)
	case "stack-sub-const": // Linux refuses subtracting from the frame pointer
		g.e(movReg(isa.R2, isa.R10), alu64K(isa.ALUSub, isa.R2, 16), ldx(isa.SizeDW, isa.R3, isa.R2, 0))
		g.mix(isa.R3)
	case "pkt-len":
		g.pktPtrs(isa.R2, isa.R3)
		g.e(alu64X(isa.ALUSub, isa.R3, isa.R2))
		g.mix(isa.R3)
	case "ptr-mul":
		g.e(movReg(isa.R2, isa.R10), alu64K(isa.ALUMul, isa.R2, 2), ldx(isa.SizeB, isa.R3, isa.R2, -1))
		g.mix(isa.R3)
	case "ptr-and":
		g.e(movReg(isa.R2, isa.R10), alu64K(isa.ALUAnd, isa.R2, -8), ldx(isa.SizeB, isa.R3, isa.R2, -1))
		g.mix(isa.R3)
	case "ptr-lsh":
		g.e(movReg(isa.R2, rCtx), alu64K(isa.ALULsh, isa.R2, 1))
		g.mix(isa.R2)
	case "ptr32-add":
		g.e(movReg(isa.R2, isa.R10), alu32K(isa.ALUAdd, isa.R2, -8), ldx(isa.SizeB, isa.R3, isa.R2, 0))
		g.mix(isa.R3)
	case "pkt-end-add":
		if g.typ == SocketFilter {
			g.e(movReg(isa.R2, rCtx), alu64X(isa.ALUAdd, isa.R2, isa.R2))
			g.mix(isa.R2)
			break
		}
		g.pktPtrs(isa.R2, isa.R3)
		g.e(alu64K(isa.ALUAdd, isa.R3, 8), movReg(isa.R4, isa.R2), alu64K(isa.ALUAdd, isa.R4, 1))
		skip := g.a.newLabel()
		g.jmpX(true, isa.JumpGT, isa.R4, isa.R3, skip)
		g.access(isa.R2, 0, isa.SizeB, false, isa.R5)
		g.a.bind(skip)
	case "ptr-plus-ptr":
		g.e(movReg(isa.R2, isa.R10), alu64X(isa.ALUAdd, isa.R2, rCtx))
		g.mix(isa.R2)
	case "ptr-neg": // privileged programs may: the address becomes a scalar
		g.e(movReg(isa.R2, rCtx), isa.Instruction{Op: aluOp(true, isa.ALUNeg, isa.SourceK), Dst: isa.R2})
		g.mix(isa.R2)
		g.setNondet("mixes a negated pointer into the result")
	case "r10-write":
		g.e(movReg(isa.R2, isa.R10), alu64K(isa.ALUAdd, isa.R10, -8), movReg(isa.R10, isa.R2))
	}
}

// leak: a pointer stored where the output shows it, which privileged
// programs may do; the program's output is then not comparable.
func (g *pgen) leak() {
	right := []string{"into-map", "ptr-to-scalar-cmp"}
	if g.typ != SocketFilter {
		right = append(right, "into-packet")
	}
	v, bad := g.variant(right, []string{"return-ptr", "partial-fill-ptr"})
	g.name("leak", v, bad)
	switch v {
	case "into-map":
		skip := g.a.newLabel()
		m := g.pickMap()
		g.lookup(m)
		g.jmpK(true, isa.JumpEq, isa.R0, 0, skip)
		g.e(stx(isa.SizeDW, isa.R0, 0, rCtx))
		g.a.bind(skip)
		g.setNondet("stores a pointer into a map")
	case "into-packet":
		skip := g.a.newLabel()
		g.pktPtrs(isa.R2, isa.R3)
		g.e(movReg(isa.R4, isa.R2), alu64K(isa.ALUAdd, isa.R4, 8))
		g.jmpX(true, isa.JumpGT, isa.R4, isa.R3, skip)
		g.e(stx(isa.SizeDW, isa.R2, 0, isa.R10))
		g.a.bind(skip)
		g.setNondet("stores a pointer into the packet")
	case "partial-fill-ptr": // Linux refuses filling part of a spilled pointer
		g.e(stx(isa.SizeDW, isa.R10, stackSpill, isa.R10), ldx(isa.SizeW, isa.R2, isa.R10, stackSpill))
		g.mix(isa.R2)
		g.setNondet("reads part of a spilled pointer")
	case "ptr-to-scalar-cmp": // compares a pointer with a constant: the branch depends on the address
		skip := g.a.newLabel()
		g.jmpK(true, isa.JumpGT, rCtx, 1000, skip)
		g.e(alu64K(isa.ALUAdd, rAcc, 1))
		g.a.bind(skip)
	case "return-ptr":
		// Returns the context pointer on a path the verifier cannot rule
		// out (and no input takes).
		over, back := g.a.newLabel(), g.a.newLabel()
		g.jmpK(true, isa.JumpEq, rAcc, 0x7eadbeef, over)
		g.ja(back)
		g.a.bind(over)
		g.e(movReg(isa.R0, rCtx), isa.Instruction{Op: isa.OpExit})
		g.a.bind(back)
		g.setNondet("returns a pointer")
	}
}

// mapContents returns the maps' initial contents: every array element
// with random bytes (small numbers in the first word, as indices), and a
// few of the keys 0-7 in each hash.
func (g *pgen) mapContents() []MapEntry {
	var out []MapEntry
	for i, m := range PtrMaps()[:basicMaps] {
		for _, key := range g.elemKeys(m) {
			out = append(out, MapEntry{Map: i, Key: key, Value: g.mapValue(m.ValueSize)})
		}
	}
	return out
}

// elemKeys returns the keys an array or hash m starts with: every index of
// an array, a few of the keys 0-7 of a hash, in m's key size.
func (g *pgen) elemKeys(m MapSpec) [][]byte {
	var keys []uint64
	if m.Type.IsArray() {
		for k := range m.MaxEntries {
			keys = append(keys, uint64(k))
		}
	} else {
		for k := range uint64(8) {
			if g.chance(2) {
				keys = append(keys, k)
			}
		}
	}
	out := make([][]byte, len(keys))
	for j, k := range keys {
		key := make([]byte, m.KeySize)
		if m.KeySize == 4 {
			binary.LittleEndian.PutUint32(key, uint32(k))
		} else {
			binary.LittleEndian.PutUint64(key, k)
		}
		out[j] = key
	}
	return out
}

// mapValue returns a value of n random bytes, half the time with a small
// number (an index) in its first word.
func (g *pgen) mapValue(n uint32) []byte {
	v := make([]byte, n)
	for j := range v {
		v[j] = byte(g.r.Uint32())
	}
	if g.chance(2) {
		binary.LittleEndian.PutUint64(v, uint64(g.pick(64)))
	}
	return v
}

// moreMapContents returns the initial contents of the maps of
// PtrConfig.MoreMaps: every element of the per-CPU array (each CPU's value
// the same), a few of the keys 0-7 in the LRU and per-CPU hashes, and a
// few prefixes in each trie: the empty prefix now and then, others of
// whole bytes and of any length, with data of lpmWord, so that lookups
// hit, miss and choose between nested prefixes.
func (g *pgen) moreMapContents() []MapEntry {
	var out []MapEntry
	for i, m := range PtrMaps()[basicMaps:] {
		i += basicMaps
		switch m.Type {
		case LPMTrieMap:
			words := (int(m.KeySize) - 4) / 4
			seen := map[string]bool{}
			for range g.pick(8) {
				plen := 8 * g.pick(4*words+1)
				if g.chance(3) {
					plen = g.pick(32*words + 1)
				}
				key := make([]byte, m.KeySize)
				binary.LittleEndian.PutUint32(key, uint32(plen))
				for w := range words {
					binary.LittleEndian.PutUint32(key[4+4*w:], g.lpmWord(w))
				}
				// Linux keeps the bits past the prefix as given; one
				// entry per prefix, the first given.
				p := string(key[:4]) + string(maskPrefix(key[4:], plen))
				if seen[p] {
					continue
				}
				seen[p] = true
				out = append(out, MapEntry{Map: i, Key: key, Value: g.mapValue(m.ValueSize)})
			}
		default:
			for _, key := range g.elemKeys(m) {
				out = append(out, MapEntry{Map: i, Key: key, Value: g.mapValue(m.ValueSize)})
			}
		}
	}
	return out
}

// maskPrefix returns data with the bits past the first plen cleared.
func maskPrefix(data []byte, plen int) []byte {
	out := make([]byte, len(data))
	for i := range out {
		switch {
		case plen >= 8*(i+1):
			out[i] = data[i]
		case plen > 8*i:
			out[i] = data[i] & byte(0xff<<(8-(plen-8*i)))
		}
	}
	return out
}

// packets returns the inputs: a short, a medium and a long packet of
// random bytes with an IPv4 Ethernet type, so that socket buffer runs see
// a plausible protocol.
func (g *pgen) packets() [][]byte {
	lens := []int{14 + g.pick(26), 40 + g.pick(80), 120 + g.pick(ptrPacketSize-119)}
	var out [][]byte
	for _, n := range lens {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(g.r.Uint32())
		}
		if g.chance(4) {
			for i := range p {
				p[i] = byte(g.pick(8))
			}
		}
		// IPv4, which the skb test run requires a full header for, or a
		// local experimental EtherType.
		p[12], p[13] = 0x08, 0x00
		if n < 34 && g.typ != XDP {
			p[12], p[13] = 0x88, 0xb5
		}
		out = append(out, p)
	}
	return out
}
