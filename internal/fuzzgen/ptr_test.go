package fuzzgen

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/isa"
)

func TestGeneratePtr_Deterministic(t *testing.T) {
	for seed := range uint64(50) {
		a, b := GeneratePtr(seed, PtrConfig{MayGoto: true}), GeneratePtr(seed, PtrConfig{MayGoto: true})
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d: two different programs", seed)
		}
	}
	if slices.Equal(GeneratePtr(1, PtrConfig{}).Insns, GeneratePtr(2, PtrConfig{}).Insns) {
		t.Error("seeds 1 and 2 give the same program")
	}
	b := []byte("some fuzz input of a few words")
	if !reflect.DeepEqual(GeneratePtrBytes(b, PtrConfig{}), GeneratePtrBytes(b, PtrConfig{})) {
		t.Error("GeneratePtrBytes: two different programs from the same bytes")
	}
}

// checkPtrProgram checks what must hold of every generated program
// whatever the verifier thinks of it: valid slots, no unreachable slot (so
// that rejections are about pointers, not the CFG), map references within
// PtrMaps, maps contents of the right sizes, and inputs a test run accepts.
func checkPtrProgram(t *testing.T, p *PtrProgram) {
	t.Helper()
	// Two near misses are malformed instructions on purpose.
	if err := isa.ValidateProgram(p.Insns); err != nil && p.Mutation != "ldabs/abs-dw" && p.Mutation != "ptrarith/r10-write" {
		t.Fatalf("seed %d: %v", p.Seed, err)
	}
	if pc := unreachable(p.Insns); pc >= 0 {
		t.Fatalf("seed %d (%v): slot %d is unreachable", p.Seed, p.Snippets, pc)
	}
	specs := PtrMaps()
	for i, ins := range p.Insns {
		if ins.IsLoadImm64() && ins.Src == isa.PseudoMapIdx && (ins.Imm < 0 || int(ins.Imm) >= len(specs)) {
			t.Fatalf("seed %d: slot %d refers to map %d", p.Seed, i, ins.Imm)
		}
		if ins.IsLoadImm64() && ins.Src != 0 && ins.Src != isa.PseudoMapIdx {
			t.Fatalf("seed %d: slot %d: lddw src %d", p.Seed, i, ins.Src)
		}
	}
	for _, e := range p.Maps {
		if len(e.Key) != int(specs[e.Map].KeySize) || len(e.Value) != int(specs[e.Map].ValueSize) {
			t.Fatalf("seed %d: map %d entry of %d/%d bytes", p.Seed, e.Map, len(e.Key), len(e.Value))
		}
	}
	if len(p.Packets) == 0 {
		t.Fatalf("seed %d: no input", p.Seed)
	}
	for _, pkt := range p.Packets {
		if len(pkt) < 14 || len(pkt) > ptrPacketSize {
			t.Fatalf("seed %d: a %d-byte packet", p.Seed, len(pkt))
		}
		if p.Type != XDP && pkt[12] == 8 && pkt[13] == 0 && len(pkt) < 34 {
			t.Fatalf("seed %d: an IPv4 packet too short for its header (the skb test run refuses it)", p.Seed)
		}
	}
	if len(p.Snippets) == 0 || (p.Mutation != "" && !slices.Contains(p.Snippets, p.Mutation)) {
		t.Fatalf("seed %d: snippets %v, mutation %q", p.Seed, p.Snippets, p.Mutation)
	}
}

func TestGeneratePtr_Valid(t *testing.T) {
	types := map[ProgType]int{}
	mutated, nondet := 0, 0
	const n = 5000
	for seed := range uint64(n) {
		p := GeneratePtr(seed, PtrConfig{MayGoto: seed%2 == 0})
		checkPtrProgram(t, p)
		types[p.Type]++
		if p.Mutation != "" {
			mutated++
		}
		if p.Nondet != "" {
			nondet++
		}
	}
	for _, typ := range []ProgType{XDP, SchedCLS, SocketFilter} {
		if types[typ] < n/5 {
			t.Errorf("only %d of %d programs are %s", types[typ], n, typ)
		}
	}
	// MutatePercent 50: about half the programs have a near miss.
	if mutated < n*4/10 || mutated > n*6/10 {
		t.Errorf("%d of %d programs have a near miss, want about half", mutated, n)
	}
	// Output that cannot be compared must stay the exception.
	if nondet > n*15/100 {
		t.Errorf("%d of %d programs are nondeterministic", nondet, n)
	}
}

func TestGeneratePtr_Config(t *testing.T) {
	for seed := range uint64(500) {
		p := GeneratePtr(seed, PtrConfig{MutatePercent: -1, MaxSnippets: 2, Types: []ProgType{SocketFilter}})
		if p.Mutation != "" || p.Type != SocketFilter || len(p.Snippets) > 2 {
			t.Fatalf("seed %d: %s %v mutation %q", seed, p.Type, p.Snippets, p.Mutation)
		}
		for _, ins := range p.Insns {
			if ins.IsMayGoto() {
				t.Fatalf("seed %d: may_goto without PtrConfig.MayGoto", seed)
			}
		}
	}
}

// TestGeneratePtr_Variants checks that a few thousand programs hold every
// snippet kind, and many variants of each.
func TestGeneratePtr_Variants(t *testing.T) {
	seen := map[string]bool{}
	for seed := range uint64(5000) {
		for _, s := range GeneratePtr(seed, PtrConfig{MayGoto: true}).Snippets {
			seen[s] = true
		}
	}
	kinds := map[string]int{}
	for s := range seen {
		kinds[strings.SplitN(s, "/", 2)[0]]++
	}
	for _, k := range []string{"pkt", "pktvar", "meta", "adjust_head", "ldabs", "skb_load_bytes", "map", "update",
		"spill", "stackvar", "ctx", "scalar", "call", "loop", "ptrarith", "leak"} {
		if kinds[k] < 3 {
			t.Errorf("snippet kind %s: %d variants in 5000 programs", k, kinds[k])
		}
	}
	if len(seen) < 120 {
		t.Errorf("only %d snippet variants in 5000 programs", len(seen))
	}
}

func FuzzGeneratePtr(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("0123456789abcdef0123456789abcdef"))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkPtrProgram(t, GeneratePtrBytes(b, PtrConfig{MayGoto: true}))
	})
}

// TestGeneratePtr_MoreMaps: with PtrConfig.MoreMaps programs refer to
// every map of PtrMaps, the new maps get initial contents (tries some
// prefixes, the per-CPU array every element), and the programs stay well
// formed.
func TestGeneratePtr_MoreMaps(t *testing.T) {
	specs := PtrMaps()
	refs := make([]int, len(specs))
	filled := make([]int, len(specs))
	const n = 2000
	for seed := range uint64(n) {
		p := GeneratePtr(seed, PtrConfig{MoreMaps: true, MayGoto: true})
		checkPtrProgram(t, p)
		seen := map[int32]bool{}
		for _, ins := range p.Insns {
			if ins.IsLoadImm64() && ins.Src == isa.PseudoMapIdx && !seen[ins.Imm] {
				seen[ins.Imm] = true
				refs[ins.Imm]++
			}
		}
		got := map[int]int{}
		for _, e := range p.Maps {
			got[e.Map]++
			if specs[e.Map].Type == LPMTrieMap {
				if plen := int(e.Key[0]) | int(e.Key[1])<<8; plen > 8*(len(e.Key)-4) {
					t.Fatalf("seed %d: map %d: prefix length %d in a %d-byte key", seed, e.Map, plen, len(e.Key))
				}
			}
		}
		for m, c := range got {
			if c > 0 {
				filled[m]++
			}
			if specs[m].Type.IsArray() && c != int(specs[m].MaxEntries) {
				t.Fatalf("seed %d: array %d has %d initial elements, want %d", seed, m, c, specs[m].MaxEntries)
			}
		}
	}
	for m, s := range specs {
		if refs[m] < n/40 {
			t.Errorf("map %d (type %d): referenced by %d of %d programs", m, s.Type, refs[m], n)
		}
		if m >= basicMaps && filled[m] < n/2 {
			t.Errorf("map %d (type %d): initial contents in %d of %d programs", m, s.Type, filled[m], n)
		}
	}
	// Without MoreMaps nothing beyond the first five maps.
	for seed := range uint64(500) {
		p := GeneratePtr(seed, PtrConfig{})
		for _, ins := range p.Insns {
			if ins.IsLoadImm64() && ins.Src == isa.PseudoMapIdx && ins.Imm >= basicMaps {
				t.Fatalf("seed %d: map %d without MoreMaps", seed, ins.Imm)
			}
		}
		for _, e := range p.Maps {
			if e.Map >= basicMaps {
				t.Fatalf("seed %d: contents for map %d without MoreMaps", seed, e.Map)
			}
		}
	}
}
