//go:build linux

package verifier_test

import (
	"context"
	"errors"
	"testing"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// linkedCases are programs whose verdict depends on how linked scalars
// carry a constant offset (BPF_ADD_CONST64/32 of Linux 6.18 with its 2026
// stable fixes): each reaches a division by zero only if the verifier
// cannot relate the registers. The shapes follow the kernel's
// verifier_linked_scalars.c.
var linkedCases = []struct{ name, src string }{
	{"negative offset", `
		call 7
		r1 = r0
		r1 += -4
		if r1 s< 0 goto +2
		if r0 != 0 goto +1
		r0 /= 0
		r0 = 0
		exit`},
	{"sub", `
		call 7
		r0 &= 0xff
		r1 = r0
		r1 -= 4
		if r1 s< 0 goto +2
		if r0 > 3 goto +1
		r0 /= 0
		r0 = 0
		exit`},
	{"alu32", `
		call 7
		w0 &= 0xff
		w1 = w0
		w1 += 0x7fffffff
		if w1 s>= 0 goto +2
		if w0 != 0 goto +1
		r0 /= 0
		r0 = 0
		exit`},
	{"alu32 upper half unknown", `
		call 7
		r1 = r0
		w1 += 1
		if r1 > 10 goto +3
		r0 >>= 32
		if r0 == 0 goto +1
		r0 /= 0
		r0 = 0
		exit`},
	{"alu32 wrap", `
		call 7
		w0 |= 0xffffff00
		r1 = r0
		w1 += 0x100
		if r1 > 0x80 goto +4
		r2 = r0
		r2 >>= 32
		if r2 == 0 goto +1
		r0 /= 0
		r0 = 0
		exit`},
	{"alu32 zext of the linked one", `
		call 7
		w6 = w0
		r7 = r6
		w7 += 1
		r8 = 0xffffffff ll
		if r6 < r8 goto +3
		r7 >>= 32
		if r7 == 0 goto +1
		r0 /= 0
		r0 = 0
		exit`},
	{"alu32 and alu64 do not relate", `
		call 7
		w6 = w0
		r7 = r6
		w7 += 1
		r8 = r6
		r8 += 2
		r9 = 0xffffffff ll
		if r7 < r9 goto +3
		if r8 > 0 goto +1
		goto +1
		r0 /= 0
		r0 = 0
		exit`},
	{"self add clears", `
		call 7
		r6 = r0
		r7 = r6
		call 7
		r8 = r0
		r9 = r8
		if r7 != 1 goto +4
		r6 += r6
		if r7 == r9 goto +2
		if r6 == 3 goto +1
		r0 /= 0
		r0 = 0
		exit`},
	{"stale delta", `
		call 7
		r6 = r0
		r6 += 5
		r6 ^= 0
		r8 = r6
		r8 += 3
		r9 = r6
		if r9 != 10 goto +2
		if r8 == 8 goto +1
		r0 /= 0
		r0 = 0
		exit`},
	{"offset of an offset", `
		call 7
		r0 &= 0xff
		r1 = r0
		r1 += 4
		r1 += 4
		if r1 > 8 goto +2
		if r0 == 0 goto +1
		r0 /= 0
		r0 = 0
		exit`},
	{"spilled link", `
		call 7
		r0 &= 0xff
		r1 = r0
		r1 += 2
		*(u64 *)(r10 - 8) = r1
		if r0 > 5 goto +3
		r2 = *(u64 *)(r10 - 8)
		if r2 < 8 goto +1
		r0 /= 0
		r0 = 0
		exit`},
}

// TestVerify_linkedKernel compares waggle's verdict with the running
// kernel's on linkedCases. Kernels older than the 6.18 stable series of
// 2026 link only non-negative 64-bit offsets; the test skips on them.
func TestVerify_linkedKernel(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("kernel: %v", err)
	}
	kernelAccepts := func(t *testing.T, src string) bool {
		insns, err := asm.Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		p, err := kernel.Load(insns, kernel.LoadOptions{Type: kernel.ProgType(progtype.SocketFilter)})
		var ve *kernel.VerifierError
		switch {
		case err == nil:
			p.Close()
			return true
		case errors.As(err, &ve):
			return false
		}
		t.Skipf("kernel load: %v", err)
		return false
	}
	if !kernelAccepts(t, linkedCases[0].src) {
		t.Skip("this kernel does not link scalars with negative offsets (Linux 6.18 stable, 2026, has BPF_ADD_CONST64/32)")
	}
	for _, tc := range linkedCases {
		t.Run(tc.name, func(t *testing.T) {
			want := kernelAccepts(t, tc.src)
			t.Logf("kernel accepts: %v", want)
			_, err := verifier.Verify(context.Background(), program(t, progtype.SocketFilter, tc.src), &verifier.Options{Target: progtype.TargetLinux})
			if got := err == nil; got != want {
				t.Errorf("waggle accepts: %v (%v), the kernel: %v", got, err, want)
			}
		})
	}
}
