package firewall

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/waggle-bpf/waggle"
)

// XDP actions (enum xdp_action).
const (
	XDPAborted uint32 = 0
	XDPDrop    uint32 = 1
	XDPPass    uint32 = 2
	XDPTX      uint32 = 3 // a SYN answered with a SYN cookie (RuleSYNCookie)
)

// ActionName names an XDP action.
func ActionName(a uint32) string {
	switch a {
	case XDPAborted:
		return "XDP_ABORTED"
	case XDPDrop:
		return "XDP_DROP"
	case XDPPass:
		return "XDP_PASS"
	case XDPTX:
		return "XDP_TX"
	case 4:
		return "XDP_REDIRECT"
	}
	return fmt.Sprintf("action-%d", a)
}

// Packet is a captured Ethernet frame and when it arrived.
type Packet struct {
	Data []byte
	Time time.Time
}

// Verdict is what the firewall decided for a packet, and which rule did.
type Verdict struct {
	Action uint32 // XDPDrop, XDPPass, XDPTX
	Rule   uint32
}

// Counter is a rule's slot in the per-CPU array "counters" (struct
// counter): what it decided, summed over CPUs by Counters.
type Counter struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// ReplayInput returns the data and context BPF_PROG_TEST_RUN (or
// waggle's Program.Run) takes to run the firewall on p in replay mode:
// MetaSize bytes of metadata carrying p's time, then the frame; and an
// xdp_md saying so (data = MetaSize, data_end = MetaSize+len). A zero
// time leaves the program its own clock.
func ReplayInput(p Packet) (dataIn, xdpMD []byte) {
	md := make([]byte, xdpMDSize)
	return replayInput(p, nil, md), md
}

// xdpMDSize is the size of struct xdp_md.
const xdpMDSize = 24

// replayInput is ReplayInput into data's and md's buffers.
func replayInput(p Packet, data, md []byte) []byte {
	data = append(data[:0], make([]byte, MetaSize)...)
	if !p.Time.IsZero() {
		ne.PutUint64(data, uint64(p.Time.UnixNano()))
	}
	data = append(data, p.Data...)
	clear(md)
	ne.PutUint32(md[0:], MetaSize)
	ne.PutUint32(md[4:], uint32(len(data)))
	return data
}

// RuleOf returns the rule the program reported in a replayed packet's
// data_out (its metadata), which must be at least MetaSize bytes.
func RuleOf(dataOut []byte) (uint32, error) {
	if len(dataOut) < MetaSize {
		return 0, fmt.Errorf("data_out of %d bytes has no replay metadata", len(dataOut))
	}
	return ne.Uint32(dataOut[8:]), nil
}

// Replayer runs the firewall over packets in user space, under waggle: the
// same object as in the kernel, its clock driven by the packets' times,
// so that a capture replays the same way every time. The program's state
// (rate-limit buckets, the attack window, the counters) carries over from
// one Run to the next, as on an interface.
type Replayer struct {
	coll  *waggle.Collection
	prog  *waggle.Program
	comp  atomic.Pointer[Compiled]
	runs  []waggle.BatchRun
	data  [][]byte
	outs  [][]byte
	mds   [][]byte
	batch int
}

// replayBatch is how many packets go to one RunBatch call.
const replayBatch = 256

// NewReplayer loads the firewall into waggle with c's maps. opts may be
// nil: the collection then has one CPU slot, so runs are in capture order
// and the per-CPU counters one value each.
func NewReplayer(c *Compiled, opts *waggle.CollectionOptions) (*Replayer, error) {
	spec, err := Spec()
	if err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &waggle.CollectionOptions{CPUs: 1}
	}
	coll, err := waggle.NewCollection(spec, opts)
	if err != nil {
		return nil, fmt.Errorf("firewall: load into waggle: %w", err)
	}
	prog := coll.Programs[ProgramName]
	if prog == nil {
		coll.Close()
		return nil, fmt.Errorf("firewall: the object has no program %s", ProgramName)
	}
	if err := prog.Prepare(); err != nil {
		coll.Close()
		return nil, fmt.Errorf("firewall: %w", err)
	}
	if err := c.Fill(func(name string) Putter {
		if m := coll.Maps[name]; m != nil {
			return m
		}
		return nil
	}, true); err != nil {
		coll.Close()
		return nil, err
	}
	r := &Replayer{coll: coll, prog: prog, batch: replayBatch}
	r.comp.Store(c)
	r.runs = make([]waggle.BatchRun, r.batch)
	r.data = make([][]byte, r.batch)
	r.outs = make([][]byte, r.batch)
	r.mds = make([][]byte, r.batch)
	for i := range r.outs {
		r.outs[i] = make([]byte, 0, MetaSize+maxFrame)
		r.mds[i] = make([]byte, xdpMDSize)
	}
	return r, nil
}

// maxFrame is the largest frame a replay passes: XDP's linear part.
const maxFrame = 3520

// Collection returns the waggle collection the replayer runs (its maps:
// Map("buckets"), ...).
func (r *Replayer) Collection() *waggle.Collection { return r.coll }

// Compiled returns the rules the replayer runs (the last Reload's).
func (r *Replayer) Compiled() *Compiled { return r.comp.Load() }

// Close releases the collection.
func (r *Replayer) Close() error {
	r.coll.Close()
	return nil
}

// Run runs the firewall on each packet, in order, and sets verdicts[i]
// (which must be as long as pkts). A frame XDP cannot take (shorter than
// an Ethernet header, longer than maxFrame) is an error naming it.
func (r *Replayer) Run(pkts []Packet, verdicts []Verdict) error {
	if len(verdicts) < len(pkts) {
		return errors.New("firewall: fewer verdicts than packets")
	}
	for start := 0; start < len(pkts); start += r.batch {
		n := min(r.batch, len(pkts)-start)
		for i := range n {
			p := pkts[start+i]
			if len(p.Data) < 14 || len(p.Data) > maxFrame {
				return fmt.Errorf("firewall: packet %d: a frame of %d bytes (XDP takes 14 to %d)", start+i+1, len(p.Data), maxFrame)
			}
			r.data[i] = replayInput(p, r.data[i], r.mds[i])
			r.runs[i] = waggle.BatchRun{Data: r.data[i], Context: r.mds[i], DataOut: r.outs[i][:cap(r.outs[i])]}
		}
		done, err := r.prog.RunBatch(r.runs[:n], nil)
		if err != nil {
			return fmt.Errorf("firewall: packet %d: %w", start+done+1, err)
		}
		for i := range n {
			rule, err := RuleOf(r.runs[i].DataOut)
			if err != nil {
				return fmt.Errorf("firewall: packet %d: %w", start+i+1, err)
			}
			verdicts[start+i] = Verdict{Action: r.runs[i].Retval, Rule: rule}
		}
	}
	return nil
}

// Counters returns the per-rule counters, summed over CPUs, for the rules
// that counted something.
func (r *Replayer) Counters() (map[uint32]Counter, error) {
	m := r.coll.Maps[MapCounters]
	if m == nil {
		return nil, fmt.Errorf("firewall: no map %s", MapCounters)
	}
	out := map[uint32]Counter{}
	for id := uint32(0); id < MaxRules; id++ {
		b, err := m.LookupBytes(id)
		if err != nil {
			return nil, err
		}
		c := sumCounters(b)
		if c != (Counter{}) {
			out[id] = c
		}
	}
	return out, nil
}

// sumCounters adds up the per-CPU values of a counter (8-byte aligned
// struct counter, one per CPU).
func sumCounters(b []byte) Counter {
	var c Counter
	for off := 0; off+counterSize <= len(b); off += counterSize {
		c.Packets += ne.Uint64(b[off:])
		c.Bytes += ne.Uint64(b[off+8:])
	}
	return c
}
