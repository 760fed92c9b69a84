//go:build linux && amd64

package amd64_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/jit/amd64"
	"github.com/waggle-bpf/waggle/maps"
)

// TestRingbuf_withoutMaps: a run whose helpers.State has no map set
// (whose Go helpers cannot resolve its maps) reserves natively, then
// exits to Go, which cannot find the ring of the record: the run fails,
// and the record is given back, so the ring does not stop at it.
func TestRingbuf_withoutMaps(t *testing.T) {
	m, err := maps.New(maps.Spec{Type: maps.RingBuf, MaxEntries: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rb := m.(maps.RingBuffer)
	prog := parse(t, fmt.Sprintf(`
		r1 = %#x ll
		r2 = 8
		r3 = 0
		call %d
		if r0 == 0 goto out
		r6 = r0
		call %d
		r1 = r6
		r2 = 0
		call %d
	out:
		r0 = 0
		exit`, m.Handle(), helpers.IDRingbufReserve, helpers.IDKtimeGetNs, helpers.IDRingbufSubmit))
	p, err := amd64.Engine{}.Load(prog, engine.Options{Helpers: helpers.Generic().Table(), Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := amd64.NewMachine().Run(p, &engine.Args{State: &helpers.State{}}); err == nil {
		t.Fatal("a run without its maps: no error")
	}
	if err := rb.Output([]byte("after"), 0); err != nil {
		t.Fatal(err)
	}
	rd, err := maps.NewRingBufReader(m)
	if err != nil {
		t.Fatal(err)
	}
	rd.SetDeadline(time.Now().Add(time.Second))
	if rec, err := rd.Read(); err != nil || string(rec.RawSample) != "after" {
		t.Fatalf("read %q, %v; want the record after the given back one", rec.RawSample, err)
	}
}
