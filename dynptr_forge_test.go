package waggle_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/interp"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// TestHostile_forgedDynptr: unverified programs that make dynptrs up
// (bytes on the stack laid out as one) and give them to the dynptr
// helpers fail with an error naming what is wrong, never reaching memory
// the run does not own, never submitting a ring buffer record the run did
// not reserve; a dynptr of an unknown type reads nothing (-EFAULT).
func TestHostile_forgedDynptr(t *testing.T) {
	coll, err := waggle.LoadCollection("testdata/dynptr/dynptr.o", &waggle.CollectionOptions{Unverified: true})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	w, err := maps.NewUserRingBufWriter(coll.Maps["urb"].Underlying())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]byte("sample!!")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		prog string
		err  error  // nil: the run ends normally
		msg  string // in the error
		ret  uint32
	}{
		{prog: "bad_forge_read", err: interp.ErrMemory},
		{prog: "bad_forge_submit", msg: "is not a ring buffer record this run reserved"},
		{prog: "bad_forge_type", ret: 0xfffffff2}, // -EFAULT,
		{prog: "bad_forge_data", err: interp.ErrMemory},
		{prog: "bad_forge_scribble", err: interp.ErrMemory},
	} {
		t.Run(tc.prog, func(t *testing.T) {
			ret, err := coll.Programs[tc.prog].Run(&waggle.RunOptions{Data: make([]byte, 64)})
			switch {
			case tc.err == nil && tc.msg == "":
				if err != nil || ret != tc.ret {
					t.Fatalf("%d, %v; want %d", ret, err, tc.ret)
				}
			case err == nil:
				t.Fatalf("the run succeeded (%d)", ret)
			case tc.err != nil && !errors.Is(err, tc.err), !strings.Contains(err.Error(), tc.msg):
				t.Fatalf("%v; want %v %q", err, tc.err, tc.msg)
			}
			t.Log(err)
		})
	}
}

// TestVerify_dynptr verifies every program of testdata/dynptr for target
// linux: the good_ ones pass, the bad_ ones fail with Linux 6.18's words
// (TestDynptrVerdicts_kernel checks them against the running kernel).
func TestVerify_dynptr(t *testing.T) {
	coll, err := waggle.LoadCollection("testdata/dynptr/dynptr.o", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	want := map[string]string{
		"bad_bytes_as_mem":          "invalid read from stack R3 off -16+0 size 8",
		"bad_double_release":        "arg 1 is an unacquired reference",
		"bad_drain_deref":           "R1 invalid mem access 'dynptr_ptr'",
		"bad_drain_map":             "cannot pass map_type 27 into func bpf_user_ringbuf_drain#209",
		"bad_drain_release":         "cannot release unowned const bpf_dynptr",
		"bad_drain_ret":             "At callback return the register R0 has smin=2 smax=2 should have been in [0, 1]",
		"bad_fill_over":             "potential write to dynptr at off=-16 disallowed",
		"bad_forge_data":            "Expected an initialized dynptr as arg #0",
		"bad_forge_read":            "Expected an initialized dynptr as arg #2",
		"bad_forge_scribble":        "R1 invalid mem access 'dynptr_ptr'",
		"bad_forge_submit":          "arg 1 is an unacquired reference",
		"bad_forge_type":            "Expected an initialized dynptr as arg #2",
		"bad_from_stack":            "Unsupported reg type fp for bpf_dynptr_from_mem data",
		"bad_global_deref":          "R1 invalid mem access 'dynptr_ptr'",
		"bad_global_release":        "cannot release unowned const bpf_dynptr",
		"bad_global_uninit":         "Caller passes invalid args into func#1 ('global_read'): Expected an initialized dynptr as arg #0",
		"bad_join_init":             "Expected an initialized dynptr as arg #2",
		"bad_join_overwrite":        "cannot overwrite referenced dynptr",
		"bad_join_types":            "arg 1 is an unacquired reference",
		"bad_leak":                  "Unreleased reference id=2 alloc_insn=6",
		"bad_leak_on_failure":       "Unreleased reference id=2 alloc_insn=6",
		"bad_misaligned":            "cannot pass in dynptr at an offset=-28",
		"bad_overwrite_ringbuf":     "cannot overwrite referenced dynptr",
		"bad_read_bytes":            "invalid read from stack off -16+0 size 8",
		"bad_reinit_ringbuf":        "cannot overwrite referenced dynptr",
		"bad_slice_after_overwrite": "R0 invalid mem access 'scalar'",
		"bad_slice_after_release":   "R6 invalid mem access 'scalar'",
		"bad_slice_null":            "R0 invalid mem access 'mem_or_null'",
		"bad_slice_oob":             "invalid access to memory, mem_size=4 off=4 size=1",
		"bad_uninit":                "Expected an initialized dynptr as arg #2",
		"bad_wrong_type":            "arg 1 is an unacquired reference",
	}
	for name, p := range coll.Programs {
		t.Run(name, func(t *testing.T) {
			_, err := p.Verify(context.Background(), &verifier.Options{Target: progtype.TargetLinux})
			if strings.HasPrefix(name, "good_") {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			msg, ok := want[name]
			if !ok {
				t.Fatalf("no expected refusal for %s (%v)", name, err)
			}
			var ve *verifier.Error
			if !errors.As(err, &ve) || ve.Msg != msg {
				t.Fatalf("%v, want %q", err, msg)
			}
		})
	}
}

// TestDynptr_run runs good_local and good_drain in waggle alone and
// checks what they record, as Linux 6.18 records it
// (TestDynptrRun_kernel compares with the kernel where there is one).
func TestDynptr_run(t *testing.T) {
	neg := func(e maps.Errno) uint64 { return uint64(-int64(e)) }
	for _, tc := range []struct {
		prog    string
		samples [][]byte
		want    []uint64
	}{
		// from_mem, write, read, write past the end (-E2BIG), the bytes
		// read back, a slice's byte, a slice past the end (NULL), flags
		// (-EINVAL), a read through the NULL dynptr that left (-EINVAL).
		{prog: "good_local", want: []uint64{0, 0, 0, neg(maps.E2BIG), 0x0000080706050403, 6, 1, neg(maps.EINVAL), neg(maps.EINVAL)}},
		// Three samples given to the callback (the third, 4 bytes, makes
		// it stop), the sum of the first two.
		{prog: "good_drain", samples: [][]byte{{5, 0, 0, 0, 0, 0, 0, 0}, {7, 0, 0, 0, 0, 0, 0, 0, 1}, {9, 0, 0, 0}, {1, 0, 0, 0, 0, 0, 0, 0}},
			want: []uint64{3, 12}},
	} {
		t.Run(tc.prog, func(t *testing.T) {
			coll, err := waggle.LoadCollection("testdata/dynptr/dynptr.o", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			w, err := maps.NewUserRingBufWriter(coll.Maps["urb"].Underlying())
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.samples {
				if err := w.Write(s); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := coll.Programs[tc.prog].Run(&waggle.RunOptions{Data: make([]byte, 64)}); err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.want {
				var got uint64
				if err := coll.Maps["out"].Lookup(uint32(i), &got); err != nil || got != want {
					t.Errorf("out[%d] = %#x (%v), want %#x", i, got, err, want)
				}
			}
		})
	}
}
