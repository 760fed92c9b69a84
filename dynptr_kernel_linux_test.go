package waggle_test

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/dynptr/dynptr.c -o testdata/dynptr/dynptr.o

// TestDynptrVerdicts_kernel verifies each program of testdata/dynptr with
// waggle's verifier and the kernel's: the verdicts must agree, good_
// programs must pass and bad_ ones fail, and a refusal must name what
// the kernel's log names.
func TestDynptrVerdicts_kernel(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("kernel BPF: %v", err)
	}
	const path = "testdata/dynptr/dynptr.o"
	coll, err := waggle.LoadCollection(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(coll.Programs))
	for n := range coll.Programs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			kAccepted, _, kErr := loadAlone(spec, n)
			if kErr != nil && !isVerifierError(kErr) {
				t.Skipf("the kernel cannot load it: %v", errLine(kErr))
			}
			_, werr := coll.Programs[n].Verify(context.Background(), &verifier.Options{Target: progtype.TargetHost})
			var ve *verifier.Error
			if werr != nil && !errors.As(werr, &ve) {
				t.Fatalf("waggle: %v", werr)
			}
			if want := strings.HasPrefix(n, "good_"); kAccepted != want {
				t.Errorf("the kernel's verdict is %v (%v), the name says %v", kAccepted, errLine(kErr), want)
			}
			if (werr == nil) != kAccepted {
				t.Fatalf("waggle: %v; kernel: %v", werr, kernelLastLine(kErr))
			}
			var kve *ebpf.VerifierError
			if werr != nil && errors.As(kErr, &kve) && !strings.Contains(strings.Join(kve.Log, "\n"), ve.Msg) {
				t.Errorf("waggle's refusal %q is not in the kernel's log, which ends %q", ve.Msg, kernelLastLine(kErr))
			}
		})
	}
}

// kernelLastLine is the verifier log's refusal line.
func kernelLastLine(err error) string {
	var ve *ebpf.VerifierError
	if !errors.As(err, &ve) {
		return errLine(err)
	}
	for i := len(ve.Log) - 1; i >= 0; i-- {
		l := ve.Log[i]
		if l == "" || strings.HasPrefix(l, "processed ") || strings.Contains(l, "verification time") {
			continue
		}
		return l
	}
	return errLine(err)
}
