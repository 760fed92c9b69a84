package waggle_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/maps"
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
			if werr == nil || !errors.As(kErr, &kve) {
				return
			}
			// waggle says a global function's bad argument on one line,
			// "Caller passes invalid args into func#1 ('f'): why", the
			// kernel on two.
			log := strings.Join(kve.Log, "\n")
			for _, part := range strings.SplitN(ve.Msg, "'): ", 2) {
				if strings.HasPrefix(part, "Caller passes") {
					part += "')"
				}
				if !strings.Contains(log, part) {
					t.Errorf("waggle's refusal %q is not in the kernel's log, which ends %q", part, kernelLastLine(kErr))
				}
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

// TestDynptrRun_kernel runs the good programs of testdata/dynptr in waggle
// and in Linux with the same samples in the user ring buffer: the return
// values, the maps and the records in the ring buffer must be the same.
func TestDynptrRun_kernel(t *testing.T) {
	const path = "testdata/dynptr/dynptr.o"
	samples := [][]byte{
		{5, 0, 0, 0, 0, 0, 0, 0},
		{7, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd},
		nil, // discarded
		{9, 1, 0, 0},
		{},
		{0, 0, 0, 0, 0, 0, 0, 1, 2},
	}
	for _, name := range []string{"good_local", "good_ringbuf", "good_overwrite_local", "good_reinit_local", "good_drain", "good_drain_slice", "good_global", "good_join_local", "good_join_ringbuf"} {
		t.Run(name, func(t *testing.T) {
			kc := kernelProgram(t, path, name)
			coll, err := waggle.LoadCollection(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			w, err := maps.NewUserRingBufWriter(coll.Maps["urb"].Underlying())
			if err != nil {
				t.Fatal(err)
			}
			kw := newKernelUserRingBuf(t, kc.Maps["urb"])
			for _, s := range samples {
				if s == nil {
					ws, err := w.Reserve(3)
					if err != nil {
						t.Fatal(err)
					}
					if err := ws.Discard(); err != nil {
						t.Fatal(err)
					}
					kw.write(t, make([]byte, 3), true)
					continue
				}
				if err := w.Write(s); err != nil {
					t.Fatal(err)
				}
				kw.write(t, s, false)
			}
			ret, err := coll.Programs[name].Run(&waggle.RunOptions{Data: make([]byte, 64)})
			if err != nil {
				t.Fatalf("waggle: %v", err)
			}
			kret, err := kc.Programs[name].Run(&ebpf.RunOptions{Data: make([]byte, 64)})
			if err != nil || kret != ret {
				t.Fatalf("kernel: %d, %v; waggle %d", kret, err, ret)
			}
			compareMaps(t, coll, kc)
			var out [16]uint64
			for i := range out {
				_ = coll.Maps["out"].Lookup(uint32(i), &out[i])
			}
			t.Logf("out %v", out)
			// The ring buffer's records.
			wr, err := maps.NewRingBufReader(coll.Maps["rb"].Underlying())
			if err != nil {
				t.Fatal(err)
			}
			kr, err := ringbuf.NewReader(kc.Maps["rb"])
			if err != nil {
				t.Fatal(err)
			}
			defer kr.Close()
			for i := 0; ; i++ {
				wr.SetDeadline(time.Now())
				kr.SetDeadline(time.Now())
				wrec, werr := wr.Read()
				krec, kerr := kr.Read()
				if (werr == nil) != (kerr == nil) {
					t.Fatalf("record %d: waggle %v, kernel %v", i, werr, kerr)
				}
				if werr != nil {
					break
				}
				if !bytes.Equal(wrec.RawSample, krec.RawSample) {
					t.Errorf("record %d: waggle %x, kernel %x", i, wrec.RawSample, krec.RawSample)
				}
			}
		})
	}
}

// kernelProgram loads program name of the object into the kernel with
// the maps, alone (the object's bad programs do not load).
func kernelProgram(t *testing.T, path, name string) *ebpf.Collection {
	t.Helper()
	if err := kernel.Supported(); err != nil {
		t.Skipf("kernel BPF: %v", err)
	}
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	for n := range spec.Programs {
		if n != name {
			delete(spec.Programs, n)
		}
	}
	kc, err := ebpf.NewCollection(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kc.Close() })
	return kc
}

// kernelUserRingBuf produces into a kernel user ring buffer as libbpf's
// user_ring_buffer does: the consumer page mapped read-only, the producer
// page and the data (mapped twice by the kernel) read-write.
type kernelUserRingBuf struct {
	cons, prodData []byte
	size           uint64
}

func newKernelUserRingBuf(t *testing.T, m *ebpf.Map) *kernelUserRingBuf {
	t.Helper()
	ps := os.Getpagesize()
	cons, err := unix.Mmap(m.FD(), 0, ps, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(cons) })
	size := uint64(m.MaxEntries())
	pd, err := unix.Mmap(m.FD(), int64(ps), ps+2*int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(pd) })
	return &kernelUserRingBuf{cons: cons, prodData: pd, size: size}
}

// write appends one sample (discarded if discard), as
// user_ring_buffer__reserve then __submit or __discard.
func (k *kernelUserRingBuf) write(t *testing.T, s []byte, discard bool) {
	t.Helper()
	ps := uint64(os.Getpagesize())
	prodp := (*uint64)(unsafe.Pointer(&k.prodData[0]))
	consp := (*uint64)(unsafe.Pointer(&k.cons[0]))
	prod, cons := atomic.LoadUint64(prodp), atomic.LoadUint64(consp)
	total := (uint64(len(s)) + 8 + 7) &^ 7
	if k.size-(prod-cons) < total {
		t.Fatal("kernel user ring buffer full")
	}
	h := ps + prod&(k.size-1)
	l := uint32(len(s))
	if discard {
		l |= 1 << 30
	}
	binary.NativeEndian.PutUint32(k.prodData[h+4:], 0)
	copy(k.prodData[h+8:], s)
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&k.prodData[h])), l)
	atomic.StoreUint64(prodp, prod+total)
}
