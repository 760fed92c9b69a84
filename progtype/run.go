package progtype

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/netenv"
)

// Region is memory a run owns: the context's shadow struct, the packet,
// memory a hook lends. It has the fields of the engine seam's Region (internal/engine), so the runtime
// converts it with a plain conversion (engine.Region(r)).
type Region struct {
	Data     []byte
	Writable bool
	// Bounds, when not nil, narrows the region to the addresses from
	// Bounds[0] up to Bounds[1] inside Data, as they are at each access:
	// the packet from data to data_end (and its metadata from data_meta
	// to data), which helpers that change packet data move during a run.
	// The Run updates them; an engine reads them at every access.
	Bounds *[2]uint64
	// Name says what the region is, for fault messages.
	Name string
}

// Input is what one run of a program starts from: BPF_PROG_TEST_RUN's
// inputs (data_in, ctx_in, flags), and what user space supplies where the
// kernel would consult itself (the current task, memory that pointers in
// the context refer to).
type Input struct {
	// Data is the packet (data_in) of XDP and socket buffer types.
	Data []byte
	// Context is ctx_in: the context in its UAPI layout (an xdp_md, a
	// __sk_buff, pt_regs, a tracepoint record, raw tracepoint arguments),
	// nil for none. The fields the kernel's test run accepts are taken;
	// others must be zero, as there.
	Context []byte
	// Flags are BPF_PROG_TEST_RUN's flags: FlagSkbChecksumComplete for
	// socket buffer types; nothing else is supported.
	Flags uint32
	// Task is the current task for bpf_get_current_pid_tgid and friends;
	// nil means there is none, and those helpers fail as Linux's do
	// without a current task.
	Task *Task
	// FuncIP is what bpf_get_func_ip returns: the address of the probed
	// function for kprobes.
	FuncIP uint64
	// Memory is further memory the program may read through pointers the
	// hook gives it (in pt_regs, a raw tracepoint's arguments, a user
	// hook's fields): bpf_probe_read_* read only from this memory, the
	// context and the packet.
	Memory []Region
	// Net is the host's network the helpers consult (routes, neighbours,
	// sockets, interfaces); nil means netenv.Empty(), a host with nothing
	// but its loopback device.
	Net *netenv.Host
	// Tunnel is the tunnel metadata the packet arrived with, as on a
	// collect-metadata tunnel device (bpf_skb_get_tunnel_key reads it);
	// nil for none, as in a test run.
	Tunnel *netenv.Tunnel
	// Ingress says a tc program runs at ingress (skb->tc_at_ingress), as
	// on a clsact ingress hook, where bpf_sk_assign works.
	// BPF_PROG_TEST_RUN runs at neither ingress nor egress: false.
	Ingress bool
	// Socket is the socket the run is about: the one the packet belongs
	// to (skb->sk, which __sk_buff.sk points to and whose fields
	// __sk_buff.family, local_ip4, ... read), the one a cgroup socket
	// hook runs for (bpf_sock_addr.sk, a cgroup_sock context made
	// without ctx_in), the one a sock_ops callback runs on. Its cookie
	// and owner are what bpf_get_socket_cookie and bpf_get_socket_uid
	// return. bpf_setsockopt in sock_ops programs changes it (Options,
	// Congestion, Mark, Priority, Dev), so a Socket passed to the runs of
	// one connection's callbacks keeps its options across them, as a
	// socket does; a Socket is used by one run at a time. nil means the
	// socket the kernel would make: BPF_PROG_TEST_RUN's own for socket
	// buffer types (no protocol, the packet's addresses, cookie
	// TestRunSocketCookie, UID 0), a new socket of the context's family,
	// type and protocol for the cgroup socket types, a new TCP socket for
	// sock_ops.
	Socket *netenv.Socket
	// PerfValue is what bpf_perf_prog_read_value returns in a perf_event
	// run: the values of the event that ran the program; nil for none.
	PerfValue *PerfEventValue
}

// Task describes the task a program runs on behalf of, as the kernel's
// current task: bpf_get_current_pid_tgid returns TGID<<32 | PID,
// bpf_get_current_uid_gid GID<<32 | UID, bpf_get_current_comm Comm.
type Task struct {
	PID, TGID uint32
	UID, GID  uint32
	Comm      string // at most 15 bytes are used (TASK_COMM_LEN 16)
	// Struct is the memory bpf_get_current_task points to, readable with
	// bpf_probe_read_kernel; nil makes the helper return 0.
	Struct []byte
	// Signals receives the signals bpf_send_signal and
	// bpf_send_signal_thread ask for; nil makes them fail with -EPERM.
	Signals chan<- Signal
	// Cgroup is the task's cgroup (and that of the sockets it creates),
	// for bpf_get_current_cgroup_id, bpf_current_task_under_cgroup and
	// bpf_skb_under_cgroup; nil is the root cgroup.
	Cgroup *Cgroup
	// Classid is the net_cls classid of the task's cgroup v1 (and of the
	// sockets it creates), for bpf_get_cgroup_classid and
	// bpf_skb_cgroup_classid; 0 is a task in no net_cls cgroup, as every
	// task of a cgroup v2 host is.
	Classid uint32
	// PIDNamespace is the pid namespace PID and TGID are numbered in, for
	// bpf_get_ns_current_pid_tgid; the zero value matches no namespace.
	PIDNamespace Namespace
}

// Namespace names a Linux namespace as stat(2) of its /proc/PID/ns file
// does: the nsfs device (st_dev) and the inode number (st_ino), which is
// what programs pass to bpf_get_ns_current_pid_tgid.
type Namespace struct {
	Dev, Ino uint64
}

// Signal is a request of bpf_send_signal (Thread false: to the whole
// process) or bpf_send_signal_thread (Thread true). In the kernel the
// signal is delivered to the current task when the program returns; in user
// space the hook that ran the program receives the request and decides what
// delivering it means.
type Signal struct {
	Sig    uint32
	Thread bool
}

// Output is what a run returns, as BPF_PROG_TEST_RUN returns it.
type Output struct {
	// Retval is the low 32 bits of r0.
	Retval uint32
	// Data is data_out: the packet after the run (for XDP from data_meta,
	// so metadata the program added is included; for socket filters and
	// cgroup_skb with the 14-byte Ethernet header zeroed, as the kernel's
	// test run leaves it). nil for types without a packet.
	Data []byte
	// Context is ctx_out: the context after the run in its UAPI layout,
	// for the fields the kernel's test run copies back. For xdp_md only
	// when Input.Context was given (the kernel needs ctx_in to place the
	// packet); for __sk_buff always.
	Context []byte
	// Redirect is the target the last bpf_redirect, bpf_redirect_map,
	// bpf_redirect_neigh or bpf_redirect_peer call recorded, nil if none
	// did.
	Redirect *Redirect
	// Tunnel is the packet's tunnel metadata after the run: what
	// bpf_skb_set_tunnel_key and bpf_skb_set_tunnel_opt set (TX set), or
	// what it arrived with; nil for none.
	Tunnel *netenv.Tunnel
	// Assigned is the socket bpf_sk_assign gave the packet, nil if none.
	Assigned *netenv.Socket
	// Clones are the copies of the packet bpf_clone_redirect sent, in
	// order.
	Clones []Clone
	// CgroupRetval is what bpf_set_retval last set (0 if it was not
	// called): for a cgroup hook, the errno its system call returns. The
	// hook's own rule applies on top, as in Linux
	// (bpf_prog_run_array_cg): a program that refuses (returns 0) while
	// CgroupRetval is 0 makes it -EPERM.
	CgroupRetval int32
}

// Redirect is the target recorded by bpf_redirect, bpf_redirect_map,
// bpf_redirect_neigh or bpf_redirect_peer.
type Redirect struct {
	// Ifindex is the device: bpf_redirect's argument, or the ifindex of
	// the devmap entry bpf_redirect_map found.
	Ifindex uint32
	// Map and Key are bpf_redirect_map's map and key (nil for
	// bpf_redirect); Entry is what the map holds there (a cpumap's queue
	// size, an xskmap's socket), zero for a BPF_F_BROADCAST redirect.
	Map   maps.Map
	Key   uint32
	Entry maps.Redirect
	// Flags are the helper's flags (BPF_F_INGRESS, BPF_F_BROADCAST,
	// BPF_F_EXCLUDE_INGRESS).
	Flags uint64
	// Neigh is set by bpf_redirect_neigh: the packet leaves through
	// Ifindex with its link-layer header filled in from the neighbour
	// table, for Nexthop if the program gave one (else for the next hop
	// of the packet's destination).
	Neigh   bool
	Nexthop netip.Addr
	// Peer is set by bpf_redirect_peer: the packet enters the peer of the
	// veth or netkit device Ifindex, in the peer's namespace; PeerIfindex
	// is the peer's index when the host knows it.
	Peer        bool
	PeerIfindex uint32
}

// Run is the state of one run of a program of a Kind, or of a series of
// runs on the same input (BPF_PROG_TEST_RUN's repeat runs the program again
// on what the previous run left): the context's shadow struct, the packet
// buffer, what helpers change. Engines run the program with r1 = Ctx(),
// the memory in Regions(), and helpers.State.Hook set to the Run, through
// which type-specific helpers reach it. Finish returns the result.
//
// A Run is used by one goroutine at a time. Reset reuses it for the next
// input without allocating.
type Run struct {
	kind    *Kind
	shadow  []byte
	regions []Region
	xdp     *xdpState
	skb     *skbState
	trace   *traceState
	hook    *hookRun
	sock    *sockState // cgroup_sock, sock_ops, sk_lookup
	flow    *flowState // flow_dissector
	in      Input      // the input, with Context and Data owned by the caller
	// ctxEnd, when ctxLimited, is where the context's regions end: a raw
	// tracepoint's ctx_in, for a program whose reads are not known before
	// it runs (Program.NewRun).
	ctxEnd     int
	ctxLimited bool
	rd         Redirect
	hasRd      bool // rd is set; rd is zero when not
	net        netState
	// cgRetval is the cgroup run context's retval (bpf_get_retval,
	// bpf_set_retval): 0 at the start of a run, as a hook's is.
	cgRetval int32
	// fixedN is how many of regions buildRegions made for a context of
	// fixedLen bytes and keeps (fixedOK) across resets.
	fixedN, fixedLen int
	fixedOK          bool
	regionsGen       uint64 // RegionsGen
	// ctxInBuf holds the copy of ctx_in (Run.ctxIn), ctxOut the context
	// FinishInto lends: reused, so that runs allocate nothing.
	ctxInBuf, ctxOut []byte
}

// Run errors.
var (
	// ErrNoRun is returned (wrapped) by a helper of this package when the
	// run's helpers.State.Hook is not a *Run of a suitable kind.
	ErrNoRun = errors.New("helper called without the program type's run state")
)

// NewRun prepares a run of a program of this Kind on in. It checks the
// input as BPF_PROG_TEST_RUN does and fails with the errno the kernel
// would give (maps.EINVAL, ...), wrapped.
func (k *Kind) NewRun(in Input) (*Run, error) {
	r := &Run{kind: k}
	if err := r.Reset(in); err != nil {
		return nil, err
	}
	return r, nil
}

// Reset prepares the Run for a new input, reusing its buffers. After a
// failed Reset the Run must not be run until a Reset succeeds. Reset clears
// the part of the packet buffer the previous packet covered (as the kernel's
// fresh buffer is zeroed); a program that wrote outside its packet, which
// the verifier does not let happen, may leave bytes a later adjust_head
// exposes.
func (r *Run) Reset(in Input) error {
	r.in = in
	return r.reset()
}

// reset is Reset of the input in r.in, which the resets of the types read
// in place.
func (r *Run) reset() error {
	in := &r.in
	r.ctxLimited = false
	r.cgRetval = 0
	if r.hasRd { // rd is zero otherwise
		r.rd, r.hasRd = Redirect{}, false
	}
	if r.shadow == nil {
		r.shadow = mem.Aligned(r.kind.layout.RuntimeSize)
	} else {
		clear(r.shadow)
	}
	if err := r.resetNet(in); err != nil {
		return fmt.Errorf("%s: %w", r.kind.name, err)
	}
	var err error
	switch r.kind.run {
	case runXDP:
		err = r.resetXDP(in)
	case runSKB:
		err = r.resetSKB(in)
	case runTrace:
		err = r.resetTrace(in)
	case runHook:
		err = r.resetHook(in)
	case runSock:
		err = r.resetSock(in)
	case runSockAddr:
		err = r.resetSockAddr(in)
	case runSockOps:
		err = r.resetSockOps(in)
	case runSkLookup:
		err = r.resetSkLookup(in)
	case runFlow:
		err = r.resetFlow(in)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", r.kind.name, err)
	}
	r.buildRegions()
	return nil
}

// buildRegions lists the run's memory for the engine.
func (r *Run) buildRegions() {
	// The packet first: a checked engine tries regions in order, and
	// packet accesses are the most frequent. Packet and metadata are two
	// regions, as the verifier keeps packet and metadata pointers apart:
	// a metadata access stays below data, a packet access below data_end.
	//
	// The regions up to the metadata lie in buffers the Run keeps for
	// its life, and the type's reset makes them the same way every time:
	// they change only with the context's limit (ctxLimited), so they
	// are built once per limit and kept, which saves a reset the
	// comparisons regionList makes.
	shadow := r.shadow
	if r.ctxLimited {
		shadow = shadow[:min(r.ctxEnd, len(shadow))]
	}
	l := regionList{r: r.regions, n: r.fixedN}
	if !r.fixedOK || r.fixedLen != len(shadow) {
		l.n = 0
		switch {
		case r.xdp != nil:
			l.add(Region{Data: r.xdp.buf[:xdpHardEnd], Writable: true, Bounds: &r.xdp.bounds, Name: namePacket})
		case r.skb != nil && r.skb.direct:
			l.add(Region{Data: r.skb.buf, Writable: r.skb.writable, Bounds: &r.skb.bounds, Name: namePacket})
		}
		r.kind.layout.regions(shadow, &l)
		if r.xdp != nil {
			l.add(Region{Data: r.xdp.buf[:xdpHardEnd], Writable: true, Bounds: &r.xdp.metaBounds, Name: nameMeta})
		}
		r.fixedN, r.fixedLen, r.fixedOK = l.n, len(shadow), true
	}
	if r.sock != nil && r.kind.run == runSockOps && len(r.sock.pkt) > 0 {
		l.add(Region{Data: r.sock.pkt, Name: "the packet (skb_data to skb_data_end)"})
	}
	if r.flow != nil {
		l.add(Region{Data: r.flow.buf[:r.flow.n], Name: namePacket})
		l.add(Region{Data: r.flow.keys, Writable: true, Name: "the bpf_flow_keys"})
	}
	for _, m := range r.in.Memory {
		if len(m.Data) > 0 {
			l.add(m)
		}
	}
	if r.in.Task != nil && len(r.in.Task.Struct) > 0 {
		l.add(Region{Data: r.in.Task.Struct})
	}
	if len(r.net.arena) > 0 {
		l.add(Region{Data: r.net.arena})
	}
	if l.changed || l.n != len(r.regions) {
		r.regionsGen++
	}
	r.regions = l.r[:l.n]
}

// regionList rebuilds a Run's regions in place, storing a region only
// where it differs from what its slot holds: a reset Run's regions are
// mostly those of the run before, and storing a Region (three pointers)
// costs write barriers whenever the garbage collector is marking.
type regionList struct {
	r       []Region
	n       int
	changed bool // a slot was stored
}

func (l *regionList) add(reg Region) {
	if l.n < len(l.r) {
		if p := &l.r[l.n]; len(p.Data) != len(reg.Data) || len(reg.Data) != 0 && &p.Data[0] != &reg.Data[0] ||
			p.Writable != reg.Writable || p.Bounds != reg.Bounds || p.Name != reg.Name {
			*p = reg
			l.changed = true
		}
	} else {
		l.r = append(l.r, reg)
		l.changed = true
	}
	l.n++
}

// Names of the packet regions in fault messages.
const (
	namePacket = "the packet (data to data_end)"
	nameMeta   = "the packet's metadata (data_meta to data)"
)

// Kind returns the Kind the Run is for.
func (r *Run) Kind() *Kind { return r.kind }

// Ctx returns the address of the context's shadow struct: r1 at entry.
func (r *Run) Ctx() uint64 { return mem.Addr(r.shadow) }

// Regions returns the memory the program may access besides its stack: the
// shadow struct (its writable fields writable, the rest read-only), the
// packet from data to data_end and XDP's metadata from data_meta to data
// (writable where the type may write packets; their Bounds follow the
// helpers that move them, across the repeated runs of one input too), the
// sockets (read-only), and the memory of Input.Memory and Task.Struct
// (read-only unless marked). A checked engine confines the program to
// these, which are the bounds Linux's verifier proves: a program the
// kernel accepts stays inside them. The slice is reused by Reset.
func (r *Run) Regions() []Region { return r.regions }

// RegionsGen changes whenever a Reset changes the Regions, and only then:
// a caller that keeps a converted copy of them (an engine's) converts
// again only when it changed.
func (r *Run) RegionsGen() uint64 { return r.regionsGen }

// ContextFault explains a memory fault of a run at addr (n bytes): a read
// of a raw tracepoint's context past ctx_in, by a program whose reads were
// not known before it ran (Kind.Rewrite's), is BPF_PROG_TEST_RUN's
// refusal of that ctx_in (maps.EINVAL, wrapped), which Linux gives before
// the run for the program its verifier has seen. nil for any other fault.
func (r *Run) ContextFault(addr uint64, n int) error {
	ctx := r.Ctx()
	if !r.ctxLimited || addr < ctx+uint64(r.ctxEnd) || addr-ctx >= uint64(r.kind.layout.Size) {
		return nil
	}
	return fmt.Errorf("%s: %w", r.kind.name, einval("ctx_in of %d bytes, the program reads %d", r.ctxEnd, addr-ctx+uint64(n)))
}

// Packet returns the bytes legacy packet loads (BPF_LD_ABS and BPF_LD_IND)
// read, from skb->data to its end; nil for types without a socket buffer.
// Helpers that change the packet do not change an engine's copy of this
// slice taken before the run.
func (r *Run) Packet() []byte {
	if r.skb == nil {
		return nil
	}
	return r.skb.buf[r.skb.data:r.skb.tail]
}

// Finish ends the run (or the series of repeated runs) whose r0 was r0 and
// returns what BPF_PROG_TEST_RUN would, every part of it, in memory of its
// own. It may fail where the kernel's test run fails after the program ran
// (a CHECKSUM_COMPLETE mismatch).
func (r *Run) Finish(r0 uint64) (*Output, error) {
	out := &Output{}
	if err := r.FinishInto(r0, out, OutputAll); err != nil {
		return nil, err
	}
	out.Data = cloneBytes(out.Data)
	out.Context = cloneBytes(out.Context)
	return out, nil
}

// OutputParts selects what Run.FinishInto puts in an Output beyond the
// return values.
type OutputParts uint8

// The parts of an Output.
const (
	// OutputData is Output.Data, the packet after the run (data_out).
	OutputData OutputParts = 1 << iota
	// OutputContext is Output.Context, the context after the run
	// (ctx_out).
	OutputContext
	// OutputEffects are Redirect, Tunnel, Assigned and Clones: what
	// the program asked of the network.
	OutputEffects
	// OutputAll is every part, what Finish returns.
	OutputAll = OutputData | OutputContext | OutputEffects
)

// FinishInto is Finish for callers that run a program many times and want
// only part of what it returns: it does what ending a run does (a hook's
// writable fields copied back, the CHECKSUM_COMPLETE check, the Ethernet
// header pushed back), sets out's Retval and CgroupRetval, and fills the
// parts selected, leaving the others as they are. It allocates nothing
// once the Run has built one context after a run: Data and Context are
// the Run's own memory, valid until its next Reset or Finish, which the
// caller copies if it keeps them. OutputEffects are copies, made only when
// the program redirected, set tunnel metadata, assigned a socket or
// cloned the packet.
func (r *Run) FinishInto(r0 uint64, out *Output, parts OutputParts) error {
	out.Retval, out.CgroupRetval = uint32(r0), r.cgRetval
	if parts&OutputEffects != 0 {
		out.Redirect = nil
		if r.hasRd {
			rd := r.rd
			out.Redirect = &rd
		}
		r.finishNet(out)
	}
	var err error
	switch {
	case r.xdp != nil:
		r.finishXDP(out, parts)
	case r.skb != nil:
		err = r.finishSKB(out, parts)
	case r.hook != nil:
		r.finishHook(out, parts)
	case r.kind.run == runSock:
		r.finishSock(out, parts)
	case r.kind.run == runSockAddr:
		r.finishSockAddr(out, parts)
	case r.kind.run == runSockOps:
		r.finishSockOps(out, parts)
	case r.kind.run == runSkLookup:
		r.finishSkLookup(out, parts)
	case r.flow != nil:
		r.finishFlow(out, parts)
	case r.trace != nil:
		if parts&OutputContext != 0 {
			out.Context = r.shadow[:r.kind.layout.Size]
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", r.kind.name, err)
	}
	return nil
}

// FinishRetval ends the run whose r0 was r0 as FinishInto does when the
// caller wants no part of the output, and returns only the return value:
// the per-packet end of a caller that keeps only verdicts.
func (r *Run) FinishRetval(r0 uint64) (uint32, error) {
	if r.xdp != nil {
		return uint32(r0), nil // finishXDP checks nothing
	}
	var out Output
	if err := r.FinishInto(r0, &out, 0); err != nil {
		return 0, err
	}
	return out.Retval, nil
}

// ctxOutBuf returns the Run's buffer for a context after the run, n
// bytes, zeroed: what FinishInto lends.
func (r *Run) ctxOutBuf(n int) []byte {
	if cap(r.ctxOut) < n {
		r.ctxOut = make([]byte, n)
	}
	r.ctxOut = r.ctxOut[:n]
	clear(r.ctxOut)
	return r.ctxOut
}

// ctxIn is bpf_ctx_init (net/bpf/test_run.c) into the Run's ctx_in
// buffer: ctx_in may be shorter than the struct (the rest is zero) or
// longer if the excess is zero. The copy is valid until the next Reset.
func (r *Run) ctxIn(in []byte, size int, name string) ([]byte, error) {
	for i := size; i < len(in); i++ {
		if in[i] != 0 {
			return nil, fmt.Errorf("ctx_in of %d bytes: byte %d beyond %s (%d bytes) is not zero: %w", len(in), i, name, size, maps.E2BIG)
		}
	}
	if cap(r.ctxInBuf) < size {
		r.ctxInBuf = make([]byte, size)
	}
	ctx := r.ctxInBuf[:size]
	clear(ctx[copy(ctx, in):])
	return ctx, nil
}

// cloneBytes returns a copy of b, nil for an empty b.
func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// runOf returns the Run of the program calling a helper.
func runOf(env helpers.Env) (*Run, error) {
	if r, ok := env.State().Hook.(*Run); ok && r != nil {
		return r, nil
	}
	return nil, ErrNoRun
}

// errno returns -e as a helper's r0.
func errno(e maps.Errno) uint64 { return uint64(-int64(e)) }

// einval and friends build the errors of Reset.
func einval(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, maps.EINVAL)...)
}

// probeMemory returns the n bytes at addr if they lie inside memory the run
// lends to probe_read: the shadow struct, the packet buffer, Input.Memory,
// the task struct and a hook's memory.
func (r *Run) probeMemory(addr, n uint64) ([]byte, bool) {
	if n == 0 {
		return nil, true
	}
	for _, reg := range r.regions {
		lo := mem.Addr(reg.Data)
		if lo != 0 && addr >= lo && addr-lo <= uint64(len(reg.Data)) && uint64(len(reg.Data))-(addr-lo) >= n {
			off := addr - lo
			return reg.Data[off : off+n], true
		}
	}
	return nil, false
}
