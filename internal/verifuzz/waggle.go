package verifuzz

import (
	"context"
	"errors"
	"time"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/verifier"
)

// Waggle returns waggle's verifier (Program.Verify) as a Verifier, with
// opts (nil verifies a privileged program, as root loads it). Its
// rejections' Reason is verifier.Error.Msg, in the kernel's words where
// it has them; other failures (a program waggle cannot prepare, a
// verification that outlasts timeout, 0 for none) are rejections with the
// error's text.
func Waggle(ctx context.Context, opts *verifier.Options, timeout time.Duration) Verifier {
	return func(p *fuzzgen.PtrProgram) Verdict {
		ctx := ctx
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		c, err := waggle.NewCollectionFromObject(object(p), &waggle.CollectionOptions{CPUs: 1})
		if err != nil {
			return Verdict{Reason: err.Error()}
		}
		defer c.Close()
		if _, err := c.Programs["prog"].Verify(ctx, opts); err != nil {
			var verr *verifier.Error
			if errors.As(err, &verr) {
				return Verdict{Reason: verr.Msg}
			}
			return Verdict{Reason: err.Error()}
		}
		return Verdict{Accepted: true}
	}
}
