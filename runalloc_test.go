package waggle_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/progtype"
)

// exitSpec is a collection of one program of type typ that returns ret.
func exitSpec(typ ebpf.ProgramType, ret int32) *ebpf.CollectionSpec {
	return &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{"exit": {
		Name: "exit", Type: typ, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, ret), asm.Return()},
	}}}
}

// TestRun_allocs requires that Program.Run allocates nothing once its
// runner exists, on every engine, for an XDP and a socket buffer (tc)
// program: with no outputs, and with DataOut and ContextOut buffers of
// the caller's, which receive copies. The rewrite example also calls
// helpers that change the packet and its checksums.
func TestRun_allocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops pooled runners at random: allocation counts are meaningless")
	}
	frames := readPcap(t, "examples/traffic/traffic.pcap")
	dns := frames[0]
	for _, f := range frames {
		if len(f) > 37 && f[23] == 17 && f[36] == 0 && f[37] == 53 { // IPv4 UDP to port 53
			dns = f
			break
		}
	}
	for _, e := range waggle.Engines() {
		for _, tc := range []struct {
			name    string
			load    func() (*waggle.Collection, error)
			program string
			data    []byte
			ret     uint32
		}{
			{"xdp", func() (*waggle.Collection, error) {
				return waggle.NewCollection(exitSpec(ebpf.XDP, 2), &waggle.CollectionOptions{CPUs: 1, Engine: e})
			}, "exit", make([]byte, 64), 2},
			{"tc", func() (*waggle.Collection, error) {
				return waggle.NewCollection(exitSpec(ebpf.SchedCLS, 2), &waggle.CollectionOptions{CPUs: 1, Engine: e})
			}, "exit", make([]byte, 64), 2},
			{"counter", func() (*waggle.Collection, error) {
				return waggle.LoadCollection("examples/counter/counter.o", &waggle.CollectionOptions{CPUs: 1, Engine: e})
			}, "xdp_count", frames[0], 2},
			{"tcrewrite", func() (*waggle.Collection, error) {
				return waggle.LoadCollection("examples/tcrewrite/rewrite.o", &waggle.CollectionOptions{CPUs: 1, Engine: e})
			}, "tc_rewrite", dns, 0},
		} {
			t.Run(e.String()+"/"+tc.name, func(t *testing.T) {
				coll, err := tc.load()
				if err != nil {
					t.Fatal(err)
				}
				defer coll.Close()
				prog := coll.Programs[tc.program]
				dataOut := make([]byte, len(tc.data)+256)
				ctxOut := make([]byte, 256)
				var ctxIn any = make([]byte, 184) // a zero __sk_buff
				if prog.Type() == ebpf.XDP {
					md := make([]byte, 24) // an xdp_md whose data_end is the packet's end
					binary.NativeEndian.PutUint32(md[4:], uint32(len(tc.data)))
					ctxIn = md
				}
				for _, opts := range []struct {
					name string
					opts waggle.RunOptions
				}{
					{"plain", waggle.RunOptions{Data: tc.data}},
					{"out", waggle.RunOptions{Data: tc.data, Context: ctxIn, DataOut: dataOut, ContextOut: ctxOut}},
				} {
					run := func() {
						o := opts.opts
						ret, err := prog.Run(&o)
						if err != nil || ret != tc.ret {
							t.Fatalf("%s: ret %d, %v; want %d", opts.name, ret, err, tc.ret)
						}
						if o.DataOut != nil && len(o.DataOut) != len(tc.data) {
							t.Fatalf("%s: DataOut has %d bytes, want %d", opts.name, len(o.DataOut), len(tc.data))
						}
						if o.DataOut != nil && tc.name == "tcrewrite" && bytes.Equal(o.DataOut, tc.data) {
							t.Fatalf("%s: the DNS query was not rewritten", opts.name)
						}
					}
					if n := testing.AllocsPerRun(100, run); n != 0 {
						t.Errorf("%s: %v allocations per run, want 0", opts.name, n)
					}
				}
			})
		}
	}
}

// TestRun_inputChanges requires that a run sees the input its RunOptions
// give, although Run resets the run state of the run before with only the
// packet and context when nothing else changed: a new Task, the same Task
// changed in place, and no Task.
func TestRun_inputChanges(t *testing.T) {
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{"pid": {
		Name: "pid", Type: ebpf.Kprobe, License: "GPL",
		Instructions: asm.Instructions{asm.FnGetCurrentPidTgid.Call(), asm.Return()},
	}}}
	coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{CPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	prog := coll.Programs["pid"]
	a, b := &progtype.Task{PID: 11, TGID: 11}, &progtype.Task{PID: 22, TGID: 22}
	for i, step := range []struct {
		task *progtype.Task
		pid  uint32 // the low half of bpf_get_current_pid_tgid, 0 without a task
		set  uint32 // a's PID before the run, if not 0
	}{
		{a, 11, 0}, {a, 11, 0}, {b, 22, 0}, {a, 11, 0}, {a, 33, 33}, {nil, 0, 0}, {a, 33, 0},
	} {
		if step.set != 0 {
			a.PID = step.set
		}
		ret, err := prog.Run(&waggle.RunOptions{Task: step.task})
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if step.task == nil {
			if ret == 11 || ret == 22 || ret == 33 {
				t.Fatalf("run %d without a task: pid %d, the task of a run before", i, ret)
			}
			continue
		}
		if ret != step.pid {
			t.Fatalf("run %d: pid %d, want %d", i, ret, step.pid)
		}
	}
}
