package waggle_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/target/target.c -o testdata/target/target.o

// TestVerify_target verifies testdata/target's programs for each target.
// Target linux accepts meta (bpf_xdp_adjust_meta in XDP) and xfrm
// (bpf_skb_get_xfrm_state in tc), and refuses unprivileged's bpf_jiffies64
// without CAP_BPF; target user gives the runtime's answer: meta is
// accepted exactly when the runtime implements bpf_xdp_adjust_meta, and
// then runs; xfrm is refused, the runtime lacking bpf_skb_get_xfrm_state.
// As root, target host gives the verdict the running kernel's
// BPF_PROG_LOAD gives, whatever this kernel's build offers.
func TestVerify_target(t *testing.T) {
	const path = "testdata/target/target.o"
	coll, err := waggle.LoadCollection(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	verify := func(name string, opts *verifier.Options) error {
		t.Helper()
		p := coll.Programs[name]
		if p == nil {
			t.Fatalf("no program %s", name)
		}
		_, err := p.Verify(context.Background(), opts)
		var ve *verifier.Error
		if err != nil && !errors.As(err, &ve) {
			t.Fatalf("%s: not a verdict: %v", name, err)
		}
		return err
	}
	linux := &verifier.Options{Target: progtype.TargetLinux}
	for _, name := range []string{"meta", "xfrm", "unprivileged"} {
		if err := verify(name, linux); err != nil {
			t.Errorf("%s, target linux: %v", name, err)
		}
	}
	err = verify("unprivileged", &verifier.Options{Target: progtype.TargetLinux, Unprivileged: true})
	if err == nil || !strings.Contains(err.Error(), "program of this type cannot use helper bpf_jiffies64#118") || !strings.Contains(err.Error(), "CAP_BPF") {
		t.Errorf("unprivileged, target linux without CAP_BPF: %v", err)
	}

	// Target user: the runtime's answer.
	xdp, err := progtype.Lookup(progtype.XDP)
	if err != nil {
		t.Fatal(err)
	}
	user, err := xdp.TargetHelpers(progtype.TargetUser, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, implemented := user[54]
	err = verify("meta", nil)
	if (err == nil) != implemented {
		t.Errorf("meta, target user: %v; the runtime implements bpf_xdp_adjust_meta: %v", err, implemented)
	}
	if err == nil {
		// In a collection of its own: a prepared program is not verified again.
		run, err := waggle.LoadCollection(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer run.Close()
		ret, err := run.Programs["meta"].Run(&waggle.RunOptions{Data: make([]byte, 64)})
		if err != nil || ret != 2 {
			t.Errorf("meta runs: %d, %v; want XDP_PASS", ret, err)
		}
	}
	err = verify("xfrm", nil)
	if err == nil || !strings.Contains(err.Error(), "program of this type cannot use helper bpf_skb_get_xfrm_state#66") || !strings.Contains(err.Error(), "target user") {
		t.Errorf("xfrm, target user: %v", err)
	}

	// Target host: the kernel's verdict.
	if err := kernel.Supported(); err != nil {
		t.Skipf("target host is compared with the kernel's BPF_PROG_LOAD, which needs root: %v", err)
	}
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	host := &verifier.Options{Target: progtype.TargetHost}
	for _, name := range []string{"meta", "xfrm", "unprivileged"} {
		kAccepted, _, kErr := loadAlone(spec, name)
		var kve *ebpf.VerifierError
		if kErr != nil && !errors.As(kErr, &kve) {
			t.Fatalf("%s: the kernel cannot load it: %v", name, kErr)
		}
		werr := verify(name, host)
		t.Logf("%s: kernel %v (%v), target host %v (%v)", name, kAccepted, errLine(kErr), werr == nil, werr)
		if (werr == nil) != kAccepted {
			t.Errorf("%s: the kernel accepts it: %v; target host: %v", name, kAccepted, werr)
		}
		if kErr != nil && werr != nil && strings.Contains(kErr.Error(), "cannot use helper") {
			// Both refuse for the helper: in the kernel's words.
			msg := kErr.Error()[strings.Index(kErr.Error(), "program of this type"):]
			msg, _, _ = strings.Cut(msg, "\n")
			if !strings.Contains(werr.Error(), strings.TrimSpace(msg)) {
				t.Errorf("%s: the kernel says %q, target host %q", name, msg, werr)
			}
		}
	}
}
