package progtype_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/progtype"
)

// packetOf returns an IPv4/UDP frame padded to n bytes.
func packetOf(n int) []byte {
	b := make([]byte, n)
	copy(b, ipv4UDP())
	return b
}

// TestRewrite_ambiguous: an access whose base is the context on some paths
// and another pointer on others, as far as the analysis can tell, is
// settled by the type's rules: left alone if the kernel would refuse it as
// a context access or its rewrite changes nothing, otherwise decided at run
// time (a Variant) by whether the base holds the context. Both paths run
// right.
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
		name     string
		typ      progtype.Type
		len      string // puts the packet length in r7
		access   string
		variants int
		short    uint32 // r0 on a 64-byte packet (the context path)
		long     uint32 // on a 200-byte one (the stack path)
	}{
		// __sk_buff.len moves in the shadow context: a Variant.
		{"skb len", progtype.SchedCLS, skbLen, "r0 = *(u32 *)(r2 + 0)", 1, 64, 0x1234},
		// xdp_md.data widens to 8 bytes: a Variant. The context path
		// reads the whole packet pointer (an address that differs from run
		// to run), so the program returns data_end - data plus the high
		// half of that difference, which is 0 only if both are whole.
		{"xdp data", progtype.XDP, xdpLen, "r0 = *(u32 *)(r2 + 0)\nr9 = *(u32 *)(r6 + 4)\nif r7 < 100 goto ctx\nexit\nctx:\nr9 -= r0\nr0 = r9\nr9 >>= 32\nr0 += r9", 1, 64, 0x1234},
		// An 8-byte load at xdp_md's offset 0 is no context access the
		// kernel allows: the program's own instruction stays.
		{"xdp 8-byte", progtype.XDP, xdpLen, "if r7 < 100 goto out\nr0 = *(u64 *)(r2 + 0)\nexit\nout:\nr0 = 1", 0, 1, 0x1234},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := mustKind(t, tc.typ)
			prog := mustParse(t, fmt.Sprintf(prologue, tc.len, tc.access))
			if _, err := progtype.ContextAccesses(prog); err == nil || !strings.Contains(err.Error(), "cannot tell whether r2 points to the context") {
				t.Fatalf("ContextAccesses: %v; the access is no longer ambiguous to the analysis", err)
			}
			p, err := k.Rewrite(prog)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Variants) != tc.variants {
				t.Fatalf("%d variants %v, want %d", len(p.Variants), p.Variants, tc.variants)
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
				out, err := runProg(t, interpChecked, k, prog, progtype.Input{Data: packetOf(c.n)}, 1)
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
