package progtype_test

import (
	"fmt"
	"testing"

	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/progtype"
)

// packetOf returns an IPv4/UDP frame padded to n bytes.
func packetOf(n int) []byte {
	b := make([]byte, n)
	copy(b, ipv4UDP())
	return b
}

// TestRewrite_ambiguous: an access whose base is the context on some paths
// and another pointer on others is decided at run time, by whether the
// base holds the context: converted there (a Variant) if its conversion
// changes it, a fault there (a Fault) if the type's rules refuse it as a
// context access, as it is everywhere if its conversion changes nothing.
// Both paths run right.
func TestRewrite_ambiguous(t *testing.T) {
	// r2 is the context when the packet is short, the stack otherwise;
	// fp-8 holds 0x1234. The access reads through r2.
	prologue := `
		r6 = r1
		r3 = 0x1234
		*(u64 *)(r10 - 8) = r3
		%s
		r2 = r6
		if r7 < 100 goto go
		r2 = r10
		r2 += -8
	go:
		%s
		exit`
	xdpLen := "r7 = *(u32 *)(r1 + 4)\nr8 = *(u32 *)(r1 + 0)\nr7 -= r8"
	skbLen := "r7 = *(u32 *)(r1 + 0)"
	for _, tc := range []struct {
		name   string
		typ    progtype.Type
		len    string // puts the packet length in r7
		access string
		kind   string // what the access through r2 is: "variant", "fault" or "" (neither)
		short  uint32 // r0 on a 64-byte packet (the context path)
		long   uint32 // on a 200-byte one (the stack path)
	}{
		// __sk_buff.len moves in the shadow context: a Variant.
		{"skb len", progtype.SchedCLS, skbLen, "r0 = *(u32 *)(r2 + 0)", "variant", 64, 0x1234},
		// xdp_md.data widens to 8 bytes: a Variant. The context path
		// reads the whole packet pointer (an address that differs from run
		// to run), so the program returns data_end - data plus the high
		// half of that difference, which is 0 only if both are whole.
		{"xdp data", progtype.XDP, xdpLen, "r0 = *(u32 *)(r2 + 0)\nr9 = *(u32 *)(r6 + 4)\nif r7 < 100 goto ctx\nexit\nctx:\nr9 -= r0\nr0 = r9\nr9 >>= 32\nr0 += r9", "variant", 64, 0x1234},
		// An 8-byte load at xdp_md's offset 0 is no context access the
		// kernel allows: it faults on the context, and runs elsewhere.
		{"xdp 8-byte", progtype.XDP, xdpLen, "if r7 < 100 goto out\nr0 = *(u64 *)(r2 + 0)\nexit\nout:\nr0 = 1", "fault", 1, 0x1234},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := mustKind(t, tc.typ)
			prog := mustParse(t, fmt.Sprintf(prologue, tc.len, tc.access))
			p, err := k.Rewrite(prog)
			if err != nil {
				t.Fatal(err)
			}
			// The access: the first load through r2 after "r2 += -8".
			at, seen := 0, false
			for pc, ins := range prog {
				seen = seen || ins.Dst == isa.R2 && ins.Imm == -8
				if seen && ins.Op.Class() == isa.ClassLDX && ins.Src == isa.R2 {
					at = pc
					break
				}
			}
			_, variant := p.Variants[at]
			_, fault := p.Faults[at]
			if at <= 0 || variant != (tc.kind == "variant") || fault != (tc.kind == "fault") {
				t.Fatalf("slot %d: variant %v, fault %v; want %q", at, variant, fault, tc.kind)
			}
			for pc := range p.Variants {
				if p.Insns[pc] != prog[pc] {
					t.Errorf("slot %d: Insns has %v, want the program's own instruction", pc, p.Insns[pc])
				}
			}
			for _, c := range []struct {
				n    int
				want uint32
			}{{64, tc.short}, {200, tc.long}} {
				out, err := runProg(t, checked, k, prog, progtype.Input{Data: packetOf(c.n)}, 1)
				if err != nil {
					t.Fatalf("%d bytes: %v", c.n, err)
				}
				if out.Retval != c.want {
					t.Errorf("%d bytes: r0 %#x, want %#x", c.n, out.Retval, c.want)
				}
			}
		})
	}
	// pt_regs keeps its layout: the access is right either way, and needs
	// neither a rewrite nor a Variant.
	p, err := mustKind(t, progtype.Kprobe).Rewrite(mustParse(t, fmt.Sprintf(prologue, "r7 = 0", "r0 = *(u64 *)(r2 + 0)")))
	if err != nil || len(p.Variants) != 0 || len(p.Accesses) != 0 {
		t.Errorf("kprobe: %v, variants %v, accesses %v", err, p.Variants, p.Accesses)
	}
}
