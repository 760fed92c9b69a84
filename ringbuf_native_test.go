package waggle_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
)

// The JIT reserves, submits and discards records of a ring buffer the
// program names in machine code (jit/amd64/ringbuf.go); these tests hold
// it to the Go helpers the interpreters call.

// ringSizes are the sample sizes of ringSpec's programs ("r8", "r24", ...).
var ringSizes = []int32{8, 24, 200, 1000}

// ringSpec returns a ring buffer "events" of ringBytes bytes and, per
// size of ringSizes, an XDP program that reserves a sample of that size,
// writes the packet's first word (a marker) at its start and the marker
// xor -1 at its end, and discards it if the second word's bit 0 is set,
// else submits it, with the second word's bits 8-9 as flags; it returns
// 1, or 2 when the reservation failed, 0 for a short packet. "stuck"
// reserves, then spins in a loop its budget stops, then submits.
func ringSpec(ringBytes uint32) *ebpf.CollectionSpec {
	spec := &ebpf.CollectionSpec{
		Maps:     map[string]*ebpf.MapSpec{"events": {Name: "events", Type: ebpf.RingBuf, MaxEntries: ringBytes}},
		Programs: map[string]*ebpf.ProgramSpec{},
	}
	for _, size := range ringSizes {
		insns := asm.Instructions{
			asm.Mov.Reg(asm.R6, asm.R1),
			asm.LoadMem(asm.R2, asm.R6, 0, asm.Word),
			asm.LoadMem(asm.R3, asm.R6, 4, asm.Word),
			asm.Mov.Reg(asm.R4, asm.R2),
			asm.Add.Imm(asm.R4, 16),
			asm.Mov.Imm(asm.R0, 0),
			asm.JGT.Reg(asm.R4, asm.R3, "out"),
			asm.LoadMem(asm.R8, asm.R2, 0, asm.DWord),
			asm.LoadMem(asm.R9, asm.R2, 8, asm.DWord),
			asm.LoadMapPtr(asm.R1, 0).WithReference("events"),
			asm.Mov.Imm(asm.R2, size),
			asm.Mov.Imm(asm.R3, 0),
			asm.FnRingbufReserve.Call(),
			asm.Mov.Imm(asm.R1, 2),
			asm.JNE.Imm(asm.R0, 0, "got"),
			asm.Mov.Reg(asm.R0, asm.R1),
			asm.Return(),
			asm.StoreMem(asm.R0, 0, asm.R8, asm.DWord).WithSymbol("got"),
			asm.Xor.Imm(asm.R8, -1),
			asm.StoreMem(asm.R0, int16(size-8), asm.R8, asm.DWord),
			asm.Mov.Reg(asm.R1, asm.R0),
			asm.Mov.Reg(asm.R2, asm.R9),
			asm.RSh.Imm(asm.R2, 8),
			asm.And.Imm(asm.R2, 3),
			asm.JSet.Imm(asm.R9, 1, "discard"),
			asm.FnRingbufSubmit.Call(),
			asm.Ja.Label("one"),
			asm.FnRingbufDiscard.Call().WithSymbol("discard"),
			asm.Mov.Imm(asm.R0, 1).WithSymbol("one"),
			asm.Return().WithSymbol("out"),
		}
		name := fmt.Sprintf("r%d", size)
		spec.Programs[name] = &ebpf.ProgramSpec{Name: name, Type: ebpf.XDP, License: "GPL", Instructions: insns}
	}
	for _, size := range ringSizes[:3] {
		// o<size>: the same sample built on the stack and written with
		// bpf_ringbuf_output (flags: the second word's bits 8-9); it
		// returns the helper's result.
		insns := asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
			asm.LoadMem(asm.R3, asm.R1, 4, asm.Word),
			asm.Mov.Reg(asm.R4, asm.R2),
			asm.Add.Imm(asm.R4, 16),
			asm.Mov.Imm(asm.R0, 0),
			asm.JGT.Reg(asm.R4, asm.R3, "out"),
			asm.LoadMem(asm.R8, asm.R2, 0, asm.DWord),
			asm.LoadMem(asm.R9, asm.R2, 8, asm.DWord),
		}
		for off := int16(0); off < int16(size); off += 8 {
			insns = append(insns, asm.StoreMem(asm.RFP, -256+off, asm.R8, asm.DWord))
		}
		insns = append(insns,
			asm.Xor.Imm(asm.R8, -1),
			asm.StoreMem(asm.RFP, int16(-256+size-8), asm.R8, asm.DWord),
			asm.LoadMapPtr(asm.R1, 0).WithReference("events"),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -256),
			asm.Mov.Imm(asm.R3, size),
			asm.Mov.Reg(asm.R4, asm.R9),
			asm.RSh.Imm(asm.R4, 8),
			asm.And.Imm(asm.R4, 3),
			asm.FnRingbufOutput.Call(),
			asm.Return().WithSymbol("out"),
		)
		name := fmt.Sprintf("o%d", size)
		spec.Programs[name] = &ebpf.ProgramSpec{Name: name, Type: ebpf.XDP, License: "GPL", Instructions: insns}
	}
	spec.Programs["stuck"] = &ebpf.ProgramSpec{Name: "stuck", Type: ebpf.XDP, License: "GPL", Instructions: asm.Instructions{
		asm.LoadMapPtr(asm.R1, 0).WithReference("events"),
		asm.Mov.Imm(asm.R2, 8),
		asm.Mov.Imm(asm.R3, 0),
		asm.FnRingbufReserve.Call(),
		asm.JNE.Imm(asm.R0, 0, "got"),
		asm.Return(),
		asm.Mov.Reg(asm.R6, asm.R0).WithSymbol("got"),
		asm.Mov.Imm(asm.R1, 0x5757),
		asm.StoreMem(asm.R6, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R7, 0),
		asm.Add.Imm(asm.R7, 1).WithSymbol("spin"),
		asm.JLT.Imm(asm.R7, 20000, "spin"),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRingbufSubmit.Call(),
		asm.Mov.Imm(asm.R0, 1),
		asm.Return(),
	}}
	return spec
}

// ringRun runs program r<size> with marker and op (bit 0 discard, bits
// 8-9 flags).
func ringRun(t testing.TB, coll *waggle.Collection, size int32, marker, op uint64) uint32 {
	t.Helper()
	return ringRunProg(t, coll, fmt.Sprintf("r%d", size), marker, op)
}

func ringRunProg(t testing.TB, coll *waggle.Collection, name string, marker, op uint64) uint32 {
	t.Helper()
	data := make([]byte, 64)
	binary.LittleEndian.PutUint64(data, marker)
	binary.LittleEndian.PutUint64(data[8:], op)
	ret, err := coll.Programs[name].Run(&waggle.RunOptions{Data: data})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ret
}

// ringDrain reads every record the ring holds now, as "marker/len" (the
// sample's end checked), with a short deadline for the last.
func ringDrain(t testing.TB, rd *maps.RingBufReader) []string {
	t.Helper()
	var out []string
	for {
		rd.SetDeadline(time.Now().Add(20 * time.Millisecond))
		rec, err := rd.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return out
		}
		if err != nil {
			out = append(out, "error: "+err.Error())
			continue
		}
		s := rec.RawSample
		m := binary.LittleEndian.Uint64(s)
		if len(s) < 8 || binary.LittleEndian.Uint64(s[len(s)-8:]) != ^m {
			out = append(out, fmt.Sprintf("bad sample %x", s))
			continue
		}
		out = append(out, fmt.Sprintf("%d/%d", m, len(s)))
	}
}

// TestRingbufNative_engines reserves (or outputs) records of several sizes
// on every engine until the ring is full (NULL or -EAGAIN, a drop counted), discards some,
// submits others with each wakeup flag, reads them between rounds so that
// positions wrap around the ring many times, and requires of every engine
// the interpreter's return values, records and drop count.
func TestRingbufNative_engines(t *testing.T) {
	var want []string
	for _, e := range waggle.Engines() {
		t.Run(e.String(), func(t *testing.T) {
			coll, err := waggle.NewCollection(ringSpec(4096), &waggle.CollectionOptions{CPUs: 1, Engine: e})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			ring := coll.Maps["events"].Underlying()
			rd, err := maps.NewRingBufReader(ring)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			var got []string
			marker := uint64(0)
			for round := range 12 {
				var rets []uint32
				for i := range 20 + round {
					marker++
					size := ringSizes[(i+round)%len(ringSizes)]
					op := uint64(i%5) << 8 & 0x300
					if i%7 == 3 {
						op |= 1
					}
					name := fmt.Sprintf("r%d", size)
					if i%4 == 2 && size <= 200 {
						name = fmt.Sprintf("o%d", size) // bpf_ringbuf_output
					}
					rets = append(rets, ringRunProg(t, coll, name, marker, op))
				}
				got = append(got, fmt.Sprint("round ", round, " returns ", rets))
				got = append(got, ringDrain(t, rd)...)
				got = append(got, fmt.Sprint("dropped ", ring.(maps.RingBuffer).Dropped()))
			}
			if want == nil {
				want = got
				return
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s differs from %s:\n got %v\nwant %v", e, waggle.Engines()[0], got, want)
			}
		})
	}
	if !slicesContains(want, "2") || !slicesContains(want, "4294967285") {
		// The rounds must have filled the ring: a reservation failed
		// (NULL), and an output (-EAGAIN).
		t.Errorf("no reservation or output failed: %v", want)
	}
}

func slicesContains(lines []string, ret string) bool {
	for _, l := range lines {
		if len(l) > 6 && l[:6] == "round " {
			for i := 0; i+len(ret) <= len(l); i++ {
				if l[i:i+len(ret)] == ret && (i == 0 || l[i-1] == ' ' || l[i-1] == '[') {
					return true
				}
			}
		}
	}
	return false
}

// TestRingbufNative_concurrent produces from JIT code on two goroutines
// (reserve and submit or discard; output) and from Go (Output) on a third while a reader consumes, each producer
// trying again while the ring is full: every record submitted is read
// once, each producer's in the order it reserved them, none lost, and none
// read that was discarded.
func TestRingbufNative_concurrent(t *testing.T) {
	const perProducer = 5000
	for _, e := range waggle.Engines() {
		t.Run(e.String(), func(t *testing.T) {
			coll, err := waggle.NewCollection(ringSpec(1<<14), &waggle.CollectionOptions{CPUs: 2, Engine: e})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			ring := coll.Maps["events"].Underlying()
			rd, err := maps.NewRingBufReader(ring)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			// Producer 0 reserves and submits or discards, 1 outputs.
			prog, ok := [2]string{"r24", "o24"}, [2]uint32{1, 0}
			var submitted [3]atomic.Uint64
			var wg sync.WaitGroup
			for p := range 2 {
				wg.Go(func() {
					data := make([]byte, 64)
					for i := uint64(1); i <= perProducer; i++ {
						marker := uint64(p)<<56 | i
						op := uint64(0)
						if i%11 == 0 && p == 0 {
							op = 1 // discard
						}
						if i%13 == 0 {
							op |= uint64(maps.RingBufNoWakeup) << 8
						}
						binary.LittleEndian.PutUint64(data, marker)
						binary.LittleEndian.PutUint64(data[8:], op)
						for {
							ret, err := coll.Programs[prog[p]].Run(&waggle.RunOptions{Data: data, CPU: uint32(p), Flags: 1 /* BPF_F_TEST_RUN_ON_CPU */})
							if err != nil {
								t.Error(err)
								return
							}
							if ret == ok[p] {
								break
							}
							runtime.Gosched() // the ring is full: let the reader in
						}
						if op&1 == 0 {
							submitted[p].Add(1)
						}
					}
				})
			}
			wg.Go(func() {
				rb := ring.(maps.RingBuffer)
				sample := make([]byte, 24)
				for i := uint64(1); i <= perProducer; i++ {
					binary.LittleEndian.PutUint64(sample, 2<<56|i)
					binary.LittleEndian.PutUint64(sample[16:], ^(2<<56 | i))
					for rb.Output(sample, 0) != nil {
						runtime.Gosched()
					}
					submitted[2].Add(1)
				}
			})
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			var last [3]uint64
			var read [3]uint64
			finished := false
			for {
				rd.SetDeadline(time.Now().Add(50 * time.Millisecond))
				rec, err := rd.Read()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					if finished {
						break
					}
					select {
					case <-done:
						finished = true // one more pass for what is left
					default:
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				s := rec.RawSample
				m := binary.LittleEndian.Uint64(s)
				p, i := m>>56, m&(1<<56-1)
				if len(s) != 24 || p > 2 || binary.LittleEndian.Uint64(s[16:]) != ^m {
					t.Fatalf("bad record %x", s)
				}
				if i <= last[p] {
					t.Fatalf("producer %d: record %d after %d", p, i, last[p])
				}
				if p == 0 && i%11 == 0 {
					t.Fatalf("producer %d: discarded record %d read", p, i)
				}
				last[p] = i
				read[p]++
			}
			for p := range 3 {
				if read[p] != submitted[p].Load() || read[p] == 0 {
					t.Errorf("producer %d: %d records read, %d submitted", p, read[p], submitted[p].Load())
				}
			}
		})
	}
}

// TestRingbufNative_budget stops a run between its reservation and its
// submit (the budget runs out in a loop): the run fails with ErrBudget,
// its record is given back (discarded), and the ring goes on working, on
// every engine.
func TestRingbufNative_budget(t *testing.T) {
	for _, e := range waggle.Engines() {
		t.Run(e.String(), func(t *testing.T) {
			coll, err := waggle.NewCollection(ringSpec(4096), &waggle.CollectionOptions{CPUs: 1, Engine: e, Budget: 5000})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			rd, err := maps.NewRingBufReader(coll.Maps["events"].Underlying())
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			var got []string
			for i := range 3 {
				_, err := coll.Programs["stuck"].Run(&waggle.RunOptions{Data: make([]byte, 64)})
				if !errors.Is(err, waggle.ErrBudget) {
					t.Fatalf("stuck: %v, want ErrBudget", err)
				}
				if ret := ringRun(t, coll, 24, uint64(i+1), 0); ret != 1 {
					t.Fatalf("a reservation after the stopped run returned %d", ret)
				}
				got = append(got, ringDrain(t, rd)...)
			}
			if fmt.Sprint(got) != "[1/24 2/24 3/24]" {
				t.Errorf("records %v, want [1/24 2/24 3/24]", got)
			}
		})
	}
}

// TestRingbufNative_corrupt writes over the ring between runs: a record
// header (of a record submitted, not yet read) claiming more than was
// reserved after it, and the producers' lock word. The reservation that
// meets it fails (NULL, counted; Go reports ErrCorrupt), and the ring works
// on, with the same answers on every engine and no hang.
func TestRingbufNative_corrupt(t *testing.T) {
	var want []string
	for _, e := range waggle.Engines() {
		t.Run(e.String(), func(t *testing.T) {
			coll, err := waggle.NewCollection(ringSpec(4096), &waggle.CollectionOptions{CPUs: 1, Engine: e})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			ring := coll.Maps["events"].Underlying()
			h := ring.Handle()
			data, mask := mem.Load64(h+maps.HeaderData), uint64(mem.Load32(h+maps.HeaderMask))
			rd, err := maps.NewRingBufReader(ring)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			var got []string
			for i := range uint64(4) {
				got = append(got, fmt.Sprint(ringRun(t, coll, 24, 10*i+1, 0)))
				got = append(got, ringDrain(t, rd)...)
				pos := mem.Load64(h + maps.HeaderRingProd)
				got = append(got, fmt.Sprint(ringRun(t, coll, 24, 10*i+2, 0)))
				switch i % 2 {
				case 0:
					mem.Store32(data+pos&mask, 4000) // the record just submitted claims 4000 bytes
				case 1:
					mem.Store32(h+maps.HeaderRingLock, 1)
				}
				got = append(got, fmt.Sprint(ringRun(t, coll, 24, 10*i+3, 0)))
				got = append(got, fmt.Sprint(ringRun(t, coll, 24, 10*i+4, 0)))
				got = append(got, ringDrain(t, rd)...)
				got = append(got, fmt.Sprint("dropped ", ring.(maps.RingBuffer).Dropped()))
			}
			if want == nil {
				want = got
				return
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s differs from %s:\n got %v\nwant %v", e, waggle.Engines()[0], got, want)
			}
		})
	}
}

// TestRingbufNative_wakeup plays ping-pong with a reader that waits
// without a deadline of its own: the program submits one record, the
// reader reads it and asks for the next. A wakeup lost between the
// reader's announcement and a commit (native or Go) would leave the
// reader waiting until the test's deadline for a record that is there.
func TestRingbufNative_wakeup(t *testing.T) {
	const n = 3000
	for _, e := range waggle.Engines() {
		t.Run(e.String(), func(t *testing.T) {
			coll, err := waggle.NewCollection(ringSpec(4096), &waggle.CollectionOptions{CPUs: 1, Engine: e})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			rd, err := maps.NewRingBufReader(coll.Maps["events"].Underlying())
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			next := make(chan struct{})
			errc := make(chan error, 1)
			go func() {
				defer close(next)
				for k := uint64(1); k <= n; k++ {
					rd.SetDeadline(time.Now().Add(20 * time.Second)) // a hang, not a timing
					rec, err := rd.Read()
					if err != nil {
						errc <- fmt.Errorf("record %d: %w", k, err)
						return
					}
					if m := binary.LittleEndian.Uint64(rec.RawSample); m != k {
						errc <- fmt.Errorf("record %d has marker %d", k, m)
						return
					}
					next <- struct{}{}
				}
				errc <- nil
			}()
			for k := uint64(1); k <= n; k++ {
				op := uint64(0)
				if k%3 == 0 {
					op = uint64(maps.RingBufForceWakeup) << 8
				}
				if ret := ringRun(t, coll, 24, k, op); ret != 1 {
					t.Fatalf("record %d: reservation returned %d", k, ret)
				}
				if _, ok := <-next; !ok {
					break
				}
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRingbufNative_manyRecords holds more records at once than the JIT
// keeps natively (jitrt.MaxRecords, 8): a program reserves 12, spilled to
// its stack, and submits them in reverse order. The reservations past the
// eighth go to Go, which then holds the first eight too; the submits find
// each record wherever it is. Every engine gives the same records, in
// reservation order.
func TestRingbufNative_manyRecords(t *testing.T) {
	const n = 12
	var insns asm.Instructions
	for k := range int16(n) {
		ok := fmt.Sprintf("ok%d", k)
		insns = append(insns,
			asm.LoadMapPtr(asm.R1, 0).WithReference("events"),
			asm.Mov.Imm(asm.R2, 24),
			asm.Mov.Imm(asm.R3, 0),
			asm.FnRingbufReserve.Call(),
			asm.JNE.Imm(asm.R0, 0, ok),
		)
		for j := range k {
			insns = append(insns,
				asm.LoadMem(asm.R1, asm.RFP, -8*(j+1), asm.DWord),
				asm.Mov.Imm(asm.R2, 0),
				asm.FnRingbufDiscard.Call(),
			)
		}
		insns = append(insns,
			asm.Mov.Imm(asm.R0, 2),
			asm.Return(),
			asm.Mov.Imm(asm.R1, int32(k+100)).WithSymbol(ok),
			asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
			asm.Xor.Imm(asm.R1, -1),
			asm.StoreMem(asm.R0, 16, asm.R1, asm.DWord),
			asm.StoreMem(asm.RFP, -8*(k+1), asm.R0, asm.DWord),
		)
	}
	for k := int16(n - 1); k >= 0; k-- {
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.RFP, -8*(k+1), asm.DWord),
			asm.Mov.Imm(asm.R2, 0),
			asm.FnRingbufSubmit.Call(),
		)
	}
	insns = append(insns, asm.Mov.Imm(asm.R0, 1), asm.Return())
	spec := ringSpec(4096)
	spec.Programs["many"] = &ebpf.ProgramSpec{Name: "many", Type: ebpf.XDP, License: "GPL", Instructions: insns}
	want := "[1 100/24 101/24 102/24 103/24 104/24 105/24 106/24 107/24 108/24 109/24 110/24 111/24]"
	for _, e := range waggle.Engines() {
		t.Run(e.String(), func(t *testing.T) {
			coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{CPUs: 1, Engine: e})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			rd, err := maps.NewRingBufReader(coll.Maps["events"].Underlying())
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			for range 3 {
				got := []string{fmt.Sprint(ringRunProg(t, coll, "many", 0, 0))}
				got = append(got, ringDrain(t, rd)...)
				if fmt.Sprint(got) != want {
					t.Errorf("got %v, want %v", got, want)
				}
			}
		})
	}
}
