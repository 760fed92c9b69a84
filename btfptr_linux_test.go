package waggle_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/btfptr/btfptr.c -o testdata/btfptr/btfptr.o

const btfPtrObj = "testdata/btfptr/btfptr.o"

// btfPtrVerdicts are the verdicts of waggle's verifier (target linux, the
// running kernel's BTF) on the programs of btfptr.c: "" for accepted, else
// a substring of the error.
var btfPtrVerdicts = map[string]string{
	"ok_task_pid":          "",
	"ok_parent_tgid":       "",
	"ok_pt_regs":           "",
	"ok_comm":              "",
	"ok_void_ptr":          "",
	"ok_map_ptr":           "",
	"ok_find_vma":          "",
	"bad_task_key":         "bpf_map_lookup_elem() may write into memory pointed by R2 type=trusted_ptr_",
	"ok_trusted_not_null":  "",
	"bad_untrusted_null":   "invalid read from stack R10 off=8 size=8",
	"ok_ptr_arith":         "",
	"bad_arith_or_null":    "R0 pointer arithmetic on ptr_or_null_ prohibited, null-check it first",
	"ok_output_comm":       "",
	"bad_output_beyond":    "access beyond the end of member comm (mend:1768) in struct task_struct with off 1752 size 32",
	"bad_read_into_task":   "bpf_probe_read_kernel() may write into memory pointed by R1 type=trusted_ptr_",
	"ok_sleepable_task":    "",
	"bad_sleepable_parent": "R1 type=untrusted_ptr_ expected=ptr_, trusted_ptr_, rcu_ptr_",
	"bad_find_vma_write":   "only read is supported",
	"ok_skb_tcp_sock":      "",
	"ok_tcp6_of_tcp":       "",
	"ok_lookup_tcp_sock":   "",
	"bad_write":            "only read is supported",
	"bad_beyond":           "access beyond struct task_struct at off 3264 size 4",
	"bad_var_off":          "R6 is ptr_task_struct invalid variable offset: off=0, var_off=(0x4f0; 0x8)",
	"bad_ptr_half":         "cannot access ptr member real_parent with moff 1280 in struct task_struct with off 1284 size 4",
	"bad_member_end":       "access beyond the end of member comm (mend:1768) in struct task_struct with off 1764 size 8",
	"bad_wrong_type":       "R1 is of type pt_regs but task_struct is expected",
	"bad_untrusted_arg":    "R1 type=untrusted_ptr_ expected=ptr_, trusted_ptr_, rcu_ptr_",
	"ok_grandparent":       "",
	"bad_map_ptr_write":    "only read from bpf_array is supported",
	"bad_unchecked":        "R0 invalid mem access 'ptr_or_null_'",
	"bad_release_cast":     "R1 type=scalar expected=sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_",
}

// TestBTFPointers verifies programs that read kernel objects through
// BTF-typed pointers (tasks, kernel sockets, pt_regs, a map's struct
// bpf_array) for target linux and checks waggle's verdicts and messages.
// As root it compares each verdict with the running kernel's.
func TestBTFPointers(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	coll, err := waggle.LoadCollection(btfPtrObj, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	var spec *ebpf.CollectionSpec
	if kernel.Supported() == nil {
		if spec, err = ebpf.LoadCollectionSpec(btfPtrObj); err != nil {
			t.Fatal(err)
		}
	}
	kt := verifier.NewKernelTypes()
	for name, want := range btfPtrVerdicts {
		t.Run(name, func(t *testing.T) {
			p := coll.Programs[name]
			if p == nil {
				t.Fatalf("no program %s", name)
			}
			_, err := p.Verify(context.Background(), &verifier.Options{Target: progtype.TargetLinux, KernelTypes: kt})
			switch {
			case want == "" && err != nil:
				t.Errorf("rejected: %v", err)
			case want != "" && err == nil:
				t.Errorf("accepted, want %q", want)
			case want != "" && !strings.Contains(err.Error(), want):
				t.Errorf("error %q, want %q", err, want)
			}
			if spec == nil {
				return
			}
			ok, _, kerr := loadAlone(spec, name)
			if kerr != nil && !isVerifierError(kerr) {
				t.Logf("the kernel cannot load it: %v", errLine(kerr))
				return
			}
			if ok != (err == nil) {
				t.Errorf("waggle accepts: %v, the kernel accepts: %v (%v)", err == nil, ok, errLine(kerr))
			}
			if testing.Verbose() && kerr != nil {
				t.Logf("kernel: %v", lastLine(kerr))
			}
		})
	}
}

func lastLine(err error) string {
	s := strings.TrimSpace(err.Error())
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		s = s[i+1:]
	}
	return s
}
