package waggle_test

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/printk/printk.c -o testdata/printk/printk.o

const printkObject = "testdata/printk/printk.o"

// printkResults are the slots of printk.o's results map: what each
// bpf_trace_vprintk call returned (0..5) and CLOCK_TAI (6).
const printkResults = 7

func printkFrame() []byte {
	frame := make([]byte, 64)
	copy(frame[12:], []byte{0x08, 0x00})
	return frame
}

// TestTraceVprintk runs bpf_trace_vprintk (bpf_printk with more than three
// arguments) in waggle and checks the trace text; as root it runs the
// same object in Linux and requires the same return values, which are the
// lengths of the texts or EINVAL, and a CLOCK_TAI reading within the run's
// time on both sides.
func TestTraceVprintk(t *testing.T) {
	var trace bytes.Buffer
	coll, err := waggle.LoadCollection(printkObject, &waggle.CollectionOptions{Trace: &trace})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	before := taiNow(t)
	if _, err := coll.Programs["vprintk"].Run(&waggle.RunOptions{Data: printkFrame()}); err != nil {
		t.Fatal(err)
	}
	after := taiNow(t)
	mine := make([]int64, printkResults)
	for i := range mine {
		var v int64
		if err := coll.Maps["results"].Lookup(uint32(i), &v); err != nil {
			t.Fatal(err)
		}
		mine[i] = v
	}
	want := []string{"1 -2 3 4", "waggle|   42|ff  |10000000000|z|192.168.0.1", "no arguments"}
	if got := trace.String(); got != strings.Join(want, "") {
		t.Errorf("trace %q, want %q", got, strings.Join(want, ""))
	}
	wantRet := []int64{int64(len(want[0])), int64(len(want[1])), -22, -22, -22, int64(len(want[2]))}
	for i, w := range wantRet {
		if mine[i] != w {
			t.Errorf("call %d returned %d, want %d", i, mine[i], w)
		}
	}
	if tai := mine[6]; tai < before || tai > after {
		t.Errorf("ktime_get_tai_ns %d is outside the run (%d..%d)", tai, before, after)
	}

	kc := kernelCollection(t, printkObject, "vprintk")
	before = taiNow(t)
	if _, err := kc.Programs["vprintk"].Run(&ebpf.RunOptions{Data: printkFrame()}); err != nil {
		t.Fatal(err)
	}
	after = taiNow(t)
	for i := range printkResults {
		var b []byte
		if err := kc.Maps["results"].Lookup(uint32(i), &b); err != nil {
			t.Fatal(err)
		}
		theirs := int64(binary.NativeEndian.Uint64(b))
		switch {
		case i == 6 && (theirs < before || theirs > after):
			t.Errorf("kernel: ktime_get_tai_ns %d is outside the run (%d..%d)", theirs, before, after)
		case i < 6 && theirs != mine[i]:
			t.Errorf("call %d: kernel returned %d, waggle %d", i, theirs, mine[i])
		}
	}
	t.Logf("kernel and waggle returned %v", mine[:6])
}

// taiNow reads CLOCK_TAI as the helper does, from the same clock source.
func taiNow(t *testing.T) int64 {
	t.Helper()
	ns, err := clockTAI()
	if err != nil {
		t.Skipf("CLOCK_TAI: %v", err)
	}
	return ns
}
