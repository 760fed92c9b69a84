//go:build linux

package scalar_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/verifier/scalar"
)

// valueSize is the map value the index programs read one byte of.
const valueSize = 64

// indexCases compute an index in r6 from an unknown number; the kernel
// accepts the byte load at value+r6 only if it can prove 0 <= r6 < 64
// (check_map_access: "R0 min value is negative" or "invalid access to map
// value"). Jumps to "out" leave without the access.
var indexCases = []struct{ name, body string }{
	{"mask_3f", "r6 &= 0x3f"},
	{"mask_7f", "r6 &= 0x7f"},
	{"gt_63", "if r6 > 63 goto out"},
	{"gt_64", "if r6 > 64 goto out"},
	{"ge_64", "if r6 >= 64 goto out"},
	{"sgt_only", "if r6 s> 63 goto out"},
	{"sgt_slt", "if r6 s> 63 goto out\nif r6 s< 0 goto out"},
	{"w_mask", "w6 &= 0x3f"},
	{"w_gt", "if w6 > 63 goto out"},
	{"rsh_58", "r6 >>= 58"},
	{"rsh_57", "r6 >>= 57"},
	{"mod_64", "r6 %= 64"},
	{"lsh", "r6 &= 7\nr6 <<= 3"},
	{"mul_4", "r6 &= 0xf\nr6 *= 4"},
	{"mul_5", "r6 &= 0xf\nr6 *= 5"},
	{"neg_add", "if r6 > 63 goto out\nr6 = -r6\nr6 += 63"},
	{"be16", "r6 &= 0x3f00\nr6 = be16 r6"},
	{"jset_false", "if r6 & -64 goto out"},
	{"jset_true", "if r6 & 0x3f goto out"},
	{"movsx8", "r6 &= 0x3f\nr6 = (s8)r6"},
	{"movsx8_neg", "r6 &= 0xff\nr6 = (s8)r6"},
	{"sub_wrap", "r6 &= 0x3f\nr6 -= 0x40\nr6 += 0x40"},
	{"ne_bound", "if r6 > 64 goto out\nif r6 == 64 goto out"},
	{"eq_const", "if r6 != 17 goto out"},
	{"arsh", "r6 s>>= 58"},
	{"w_arsh_and", "w6 &= 0x7f\nw6 s>>= 1"},
	{"xor", "r6 &= 0x1f\nr6 ^= 0x20"},
	{"or_high", "r6 &= 0x1f\nr6 |= 0x40"},
	{"reg_cmp", "r7 &= 0x3f\nif r6 > r7 goto out"},
	{"reg_cmp_wide", "r7 &= 0x7f\nif r6 > r7 goto out"},
}

// TestVerdict_Kernel: the kernel accepts each index program exactly when
// this package proves the index in bounds.
func TestVerdict_Kernel(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("kernel: %v", err)
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: valueSize, MaxEntries: 1})
	if err != nil {
		t.Skipf("array map: %v", err)
	}
	defer m.Close()
	var agree, accepted int
	for _, tc := range indexCases {
		t.Run(tc.name, func(t *testing.T) {
			// The state of r6 where the load would be: the first time the
			// simulation reaches the instruction after the body.
			sim, err := asm.Parse(prologue + tc.body + "\nr0 = 0\nexit\nout:\nr0 = 1\nexit")
			if err != nil {
				t.Fatal(err)
			}
			bodyEnd := len(sim) - 4
			evs, err := simulate(sim)
			if err != nil {
				t.Fatal(err)
			}
			var v scalar.Value
			found := false
			for _, e := range evs {
				if e.pc == bodyEnd && e.from < 0 {
					v, found = e.vals[6], true
					break
				}
			}
			if !found {
				t.Fatalf("simulation never reaches %d", bodyEnd)
			}
			predict := v.SMin >= 0 && v.UMax < valueSize

			src := prologue + tc.body + fmt.Sprintf(`
r1 = map_fd(%d) ll
r2 = r10
r2 += -4
*(u32 *)(r10 - 4) = 0
call 1
if r0 == 0 goto out
r0 += r6
r0 = *(u8 *)(r0 + 0)
r0 = 0
exit
out:
r0 = 1
exit`, m.FD())
			prog, err := asm.Parse(src)
			if err != nil {
				t.Fatal(err)
			}
			p, err := kernel.Load(prog, kernel.LoadOptions{Type: kernel.SocketFilter})
			var verr *kernel.VerifierError
			switch {
			case errors.Is(err, kernel.ErrNotSupported):
				t.Skipf("kernel: %v", err)
			case err == nil:
				p.Close()
			case !errors.As(err, &verr):
				t.Fatal(err)
			}
			kernelAccepts := err == nil
			if kernelAccepts {
				accepted++
			}
			if predict != kernelAccepts {
				t.Errorf("r6 = %s: waggle proves in bounds %v, kernel accepts %v (%v)", v, predict, kernelAccepts, err)
				return
			}
			if !kernelAccepts && !strings.Contains(verr.Log, "R0") {
				t.Errorf("kernel rejects for another reason: %v", err)
				return
			}
			agree++
			t.Logf("r6 = %s; kernel accepts: %v", v, kernelAccepts)
		})
	}
	t.Logf("%d index programs, %d accepted by the kernel; the verdict predicted from the domain agrees on %d", len(indexCases), accepted, agree)
}
