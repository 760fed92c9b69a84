package waggle_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/timer/timer.c -o testdata/timer/timer.o

const timerObj = "testdata/timer/timer.o"

// timerVerdicts are the verdicts of waggle's verifier, for target linux,
// on the programs of timer.c: "" for accepted, else the error's message,
// Linux 6.18's.
var timerVerdicts = map[string]string{
	"timer_array_ok":      "",
	"timer_hash_ok":       "",
	"timer_socket_ok":     "",
	"timer_two_callbacks": "",
	"timer_tracing":       "tracing progs cannot use bpf_timer yet",
	"lock_tracing":        "tracing progs cannot use bpf_spin_lock yet",
	"lock_socket":         "socket filter progs cannot use bpf_spin_lock yet",
	"timer_var_off":       "R1 doesn't have constant offset. bpf_timer has to be at the constant offset",
	"timer_wrong_off":     "off 0 doesn't point to 'struct bpf_timer' that is at 8",
	"timer_no_timer":      "map 'plain' has no valid bpf_timer",
	"timer_other_map":     "timer pointer in R1 map_uid=0 doesn't match map pointer in R2 map_uid=0",
	"timer_cb_ret1":       "At async callback return the register R0 has smin=1 smax=1 should have been in [0, 0]",
	"timer_store":         "bpf_timer cannot be accessed directly by load/store",
	"timer_load":          "bpf_timer cannot be accessed directly by load/store",
	"timer_cb_store":      "bpf_timer cannot be accessed directly by load/store",
	"timer_helper_value":  "bpf_timer cannot be accessed directly by load/store",
	"timer_on_stack":      "R1 type=fp expected=map_value",
	// Callbacks arming themselves, calling functions and bpf_loop.
	"timer_self_rearm":    "",
	"timer_cb_calls":      "",
	"timer_cb_loop":       "",
	"timer_cb_loop_value": "R3 type=map_value expected=fp",
	"timer_cb_ret_key":    "At async callback return the register R0 has smin=0 smax=4294967295 should have been in [0, 0]",
	"timer_cb_ret_ptr":    "At async callback return the register R0 is not a known value (map_value)",
	// A value with a lock and a timer.
	"timer_lock_ok":     "",
	"timer_lock_store":  "bpf_spin_lock cannot be accessed directly by load/store",
	"timer_locked_call": "function calls are not allowed while holding a lock",
	// Inner maps holding timers.
	"timer_inner_ok":       "",
	"timer_inner_mismatch": "timer pointer in R1 map_uid=1 doesn't match map pointer in R2 map_uid=2",
	"timer_cb_write_key":   "write to change key R2 not allowed",
	// The callback's function and stack.
	"timer_global_cb":  "callback function not static",
	"timer_big_stacks": "",
}

// TestVerifyTimer_messages verifies the bpf_timer programs of timer.c for
// target linux and checks each verdict and message; as root it checks
// that the running kernel's verifier gives the same verdict and ends its
// log with the same message. Target user refuses them all, saying that
// waggle's runtime has no timers.
func TestVerifyTimer_messages(t *testing.T) {
	coll, err := waggle.LoadCollection(timerObj, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	var spec *ebpf.CollectionSpec
	if kernel.Supported() == nil {
		if spec, err = ebpf.LoadCollectionSpec(timerObj); err != nil {
			t.Fatal(err)
		}
	}
	if len(coll.Programs) != len(timerVerdicts) {
		t.Errorf("timer.o has %d programs, the table %d", len(coll.Programs), len(timerVerdicts))
	}
	for name, want := range timerVerdicts {
		t.Run(name, func(t *testing.T) {
			p := coll.Programs[name]
			if p == nil {
				t.Fatalf("no program %s", name)
			}
			res, err := p.Verify(context.Background(), &verifier.Options{Target: progtype.TargetLinux})
			switch {
			case want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case want != "" && !errors.Is(err, verifier.ErrRejected):
				t.Fatalf("got %v, want a rejection with %q", err, want)
			case want != "" && !strings.Contains(err.Error(), want):
				t.Fatalf("error %q, want %q", err, want)
			}
			if spec == nil {
				return
			}
			accepted, insns, kerr := loadAlone(spec, name)
			if kerr != nil && !isVerifierError(kerr) {
				t.Skipf("the kernel cannot load it: %v", errLine(kerr))
			}
			if accepted != (want == "") {
				t.Fatalf("the kernel's verdict differs: accepted=%v %v", accepted, errLine(kerr))
			}
			if accepted {
				t.Logf("processed insns: waggle %d, kernel %d", res.Processed, insns)
			} else {
				var ve *ebpf.VerifierError
				if !errors.As(kerr, &ve) || !strings.Contains(strings.Join(ve.Log, "\n"), want) {
					t.Errorf("the kernel's log does not say %q: %v", want, errLine(kerr))
				}
			}
		})
	}
	// Target user: the runtime has no timers.
	_, err = coll.Programs["timer_array_ok"].Verify(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "waggle's user-space runtime does not implement bpf_timer_init") {
		t.Errorf("target user: got %v, want bpf_timer_init refused as not implemented by the runtime", err)
	}
}

// TestTimerMapTypes: Linux creates maps whose values hold a struct
// bpf_timer only as hash, LRU hash and array maps, and those holding a
// struct bpf_spin_lock as hash and array maps (and local storages)
// (map_check_btf, EOPNOTSUPP); waggle's collections refuse the others
// alike. As root the kernel's answer is checked too.
func TestTimerMapTypes(t *testing.T) {
	u64 := &btf.Int{Name: "u64", Size: 8}
	timer := &btf.Struct{Name: "elem", Size: 24, Members: []btf.Member{
		{Name: "n", Type: u64, Offset: 0},
		{Name: "t", Type: &btf.Struct{Name: "bpf_timer", Size: 16}, Offset: 64},
	}}
	lock := &btf.Struct{Name: "locked", Size: 16, Members: []btf.Member{
		{Name: "n", Type: u64, Offset: 0},
		{Name: "l", Type: &btf.Struct{Name: "bpf_spin_lock", Size: 4, Members: []btf.Member{{Name: "val", Type: &btf.Int{Name: "u32", Size: 4}}}}, Offset: 64},
		{Name: "pad", Type: &btf.Int{Name: "u32", Size: 4}, Offset: 96},
	}}
	key := &btf.Int{Name: "u32", Size: 4}
	for _, tc := range []struct {
		typ   ebpf.MapType
		value *btf.Struct
		ok    bool
	}{
		{ebpf.Array, timer, true}, {ebpf.Hash, timer, true}, {ebpf.LRUHash, timer, true},
		{ebpf.PerCPUArray, timer, false}, {ebpf.PerCPUHash, timer, false}, {ebpf.LRUCPUHash, timer, false},
		{ebpf.Array, lock, true}, {ebpf.Hash, lock, true},
		{ebpf.LRUHash, lock, false}, {ebpf.PerCPUArray, lock, false}, {ebpf.PerCPUHash, lock, false},
	} {
		t.Run(tc.typ.String()+"/"+tc.value.Members[1].Type.TypeName(), func(t *testing.T) {
			ms := &ebpf.MapSpec{Name: "special", Type: tc.typ, KeySize: 4, ValueSize: tc.value.Size, MaxEntries: 4, Key: key, Value: tc.value}
			spec := &ebpf.CollectionSpec{Maps: map[string]*ebpf.MapSpec{"special": ms}, Programs: map[string]*ebpf.ProgramSpec{}}
			coll, err := waggle.NewCollection(spec, nil)
			if err == nil {
				coll.Close()
			}
			switch {
			case tc.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tc.ok && !errors.Is(err, maps.EOPNOTSUPP):
				t.Fatalf("got %v, want EOPNOTSUPP", err)
			case !tc.ok && !strings.Contains(err.Error(), "struct "+tc.value.Members[1].Type.TypeName()):
				t.Fatalf("error %q does not name the field", err)
			}
			if kernel.Supported() != nil {
				return
			}
			m, kerr := ebpf.NewMap(ms)
			if kerr == nil {
				m.Close()
			}
			if (kerr == nil) != tc.ok {
				t.Fatalf("the kernel differs: %v", kerr)
			}
		})
	}
}
