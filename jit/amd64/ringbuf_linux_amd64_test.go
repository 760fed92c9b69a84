//go:build linux && amd64

package amd64_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/jit/amd64"
	"github.com/waggle-bpf/waggle/maps"
)

// TestRingbuf_withoutMaps: a run whose helpers.State has no map set
// (whose Go helpers cannot resolve its maps) reserves natively, then a
// helper fails the run, which ends holding the record, whose ring Go
// cannot find: the record is given back all the same, so the ring does
// not stop at it.
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
	table := helpers.Generic().Table()
	table[helpers.IDKtimeGetNs] = func(helpers.Env, *[5]uint64) (uint64, error) { return 0, errors.New("no clock") }
	p, err := amd64.Engine{}.Load(prog, engine.Options{Helpers: table, Verified: true})
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

// TestRingbuf_helperFails: a record reserved natively and held while a
// helper served in Go fails the run is in helpers.State.Records when the
// run returns, for Release to give back; the ring goes on working.
func TestRingbuf_helperFails(t *testing.T) {
	m, err := maps.New(maps.Spec{Type: maps.RingBuf, MaxEntries: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
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
	table := helpers.Generic().Table()
	table[helpers.IDKtimeGetNs] = func(helpers.Env, *[5]uint64) (uint64, error) { return 0, errors.New("no clock") }
	p, err := amd64.Engine{}.Load(prog, engine.Options{Helpers: table, Verified: true})
	if err != nil {
		t.Fatal(err)
	}
	st := &helpers.State{Maps: maps.NewSet(m)}
	mc := amd64.NewMachine()
	for range 3 {
		if _, err := mc.Run(p, &engine.Args{State: st}); err == nil {
			t.Fatal("the failing helper: no error")
		}
		if len(st.Records) != 1 || st.Records[0].Size != 8 {
			t.Fatalf("records after the failed run: %+v, want the one reserved", st.Records)
		}
		if !st.Release() {
			t.Fatal("Release gave nothing back")
		}
	}
	rb := m.(maps.RingBuffer)
	if err := rb.Output([]byte("after"), 0); err != nil {
		t.Fatal(err)
	}
	rd, err := maps.NewRingBufReader(m)
	if err != nil {
		t.Fatal(err)
	}
	rd.SetDeadline(time.Now().Add(time.Second))
	if rec, err := rd.Read(); err != nil || string(rec.RawSample) != "after" {
		t.Fatalf("read %q, %v; want the record after the given back ones", rec.RawSample, err)
	}
}
