package waggle_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/kernel"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/pastend/pastend.c -o testdata/pastend/pastend.o

// TestRun_pastDataEnd: the runtime's checked runs reach the packet up to
// data_end and no further. A program that reads the byte after its bounds
// check, which the kernel's verifier refuses (and waggle's), faults when
// run unverified on a packet that ends where the check does, and the error
// names the C line; the program that reads the last checked byte runs
// clean, as in the kernel.
func TestRun_pastDataEnd(t *testing.T) {
	coll, err := waggle.LoadCollection("testdata/pastend/pastend.o", &waggle.CollectionOptions{Unverified: true})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	verified, err := waggle.LoadCollection("testdata/pastend/pastend.o", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer verified.Close()
	pkt := make([]byte, 14) // an Ethernet header, no more
	pkt[13] = 1
	for _, tc := range []struct {
		program string
		fault   string // the source line of the fault, "" for none
		want    uint32
	}{
		{program: "in_bounds", want: 2},
		{program: "past_end", fault: "pastend.c:32"},
		{program: "tc_past_end", fault: "pastend.c:43"},
	} {
		t.Run(tc.program, func(t *testing.T) {
			ret, err := coll.Programs[tc.program].Run(&waggle.RunOptions{Data: pkt})
			switch {
			case tc.fault == "" && (err != nil || ret != tc.want):
				t.Fatalf("%d, %v; want %d", ret, err, tc.want)
			case tc.fault != "" && !errors.Is(err, waggle.ErrMemory):
				t.Fatalf("%d, %v; want a memory fault", ret, err)
			case tc.fault != "":
				for _, want := range []string{tc.fault, "outside the packet (data to data_end)"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("the fault does not say %q: %v", want, err)
					}
				}
				// One byte more and the byte the program reads exists.
				if _, err := coll.Programs[tc.program].Run(&waggle.RunOptions{Data: append(pkt, 0)}); err != nil {
					t.Errorf("on a 15-byte packet: %v", err)
				}
			}
			vret, err := verified.Programs[tc.program].Run(&waggle.RunOptions{Data: pkt})
			switch {
			case tc.fault == "" && (err != nil || vret != tc.want):
				t.Errorf("verified: %d, %v; want %d", vret, err, tc.want)
			case tc.fault != "" && (err == nil || errors.Is(err, waggle.ErrMemory)):
				t.Errorf("verified: %d, %v; want the verifier to refuse it", vret, err)
			case err != nil:
				t.Logf("verified: %v", err)
			}
			if kernel.Supported() != nil {
				return
			}
			spec, err := ebpf.LoadCollectionSpec("testdata/pastend/pastend.o")
			if err != nil {
				t.Fatal(err)
			}
			kp, err := ebpf.NewProgram(spec.Programs[tc.program])
			switch {
			case tc.fault != "" && err == nil:
				kp.Close()
				t.Fatal("the kernel accepts it")
			case tc.fault != "" && !strings.Contains(err.Error(), "outside of the packet"):
				t.Fatalf("the kernel rejects it for another reason: %v", err)
			case tc.fault != "":
				t.Logf("the kernel rejects it: %v", err)
				return
			case err != nil:
				t.Fatalf("the kernel rejects it: %v", err)
			}
			defer kp.Close()
			kret, err := kp.Run(&ebpf.RunOptions{Data: pkt})
			if err != nil || kret != tc.want {
				t.Fatalf("kernel: %d, %v; want %d", kret, err, tc.want)
			}
		})
	}
}
