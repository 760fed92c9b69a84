package verifier_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// FuzzVerify feeds arbitrary bytecode to the verifier: whatever it is,
// Verify returns a result or a *verifier.Error, never panics (an internal
// error is how a recovered panic shows) and never runs past its budget;
// with a log, it says the same.
func FuzzVerify(f *testing.F) {
	for _, src := range []string{
		"r0 = 0\nexit",
		"r2 = *(u32 *)(r1 + 0)\nr3 = *(u32 *)(r1 + 4)\nr4 = r2\nr4 += 14\nr0 = 1\nif r4 > r3 goto +1\nr0 = *(u8 *)(r2 + 13)\nexit",
		"r2 = 0\n*(u32 *)(r10 - 4) = r2\nr2 = r10\nr2 += -4\nr1 = map_idx(0) ll\ncall 1\nif r0 == 0 goto +2\nr0 = *(u64 *)(r0 + 0)\nexit\nr0 = 0\nexit",
		"r1 = 3\ncall pc+2\nr0 = 0\nexit\nr0 = r1\nexit",
		"r0 = 0\nr1 = 0\nr0 += r1\nr1 += 1\nif r1 < 10 goto -3\nexit",
	} {
		p := program(f, progtype.XDP, src)
		f.Add(isa.Encode(p.Insns))
	}
	base := program(f, progtype.XDP, "r0 = 0\nexit")
	f.Fuzz(func(t *testing.T, code []byte) {
		insns, err := isa.Decode(code)
		if err != nil || len(insns) == 0 || len(insns) > 256 {
			return
		}
		p := *base
		p.Insns = insns
		res, err := verifier.Verify(context.Background(), &p, &verifier.Options{MaxInsns: 20000})
		// The log changes nothing but what is printed.
		var log bytes.Buffer
		lres, lerr := verifier.Verify(context.Background(), &p, &verifier.Options{MaxInsns: 20000, Log: &log, LogLevel: 1 + len(code)/8%2})
		if (err == nil) != (lerr == nil) || err != nil && err.Error() != lerr.Error() ||
			err == nil && (res.Processed != lres.Processed || res.States != lres.States) {
			t.Fatalf("with a log: %v, without: %v", lerr, err)
		}
		if !strings.Contains(log.String(), "processed ") {
			t.Fatalf("the log has no counts:\n%s", log.String())
		}
		if err == nil {
			if res.Processed > 20000 {
				t.Fatalf("processed %d insns, budget 20000", res.Processed)
			}
			return
		}
		var ve *verifier.Error
		if !errors.As(err, &ve) {
			t.Fatalf("error %T is not a *verifier.Error: %v", err, err)
		}
		if strings.Contains(ve.Msg, "internal error") {
			t.Fatalf("verifier panicked: %v", err)
		}
	})
}
