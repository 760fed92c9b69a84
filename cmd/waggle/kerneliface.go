package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/spf13/cobra"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/kernel"
)

// kernelIfaceRefused are the flags of a live run that --engine kernel
// cannot honour, and why.
var kernelIfaceRefused = []struct{ flag, why string }{
	{"out", "the kernel's hook hands the frames on itself; waggle never sees them to write them"},
	{"workers", "the kernel runs the program on the CPU each frame arrives on"},
}

// kernelIfaceFlags refuses the flags of a live kernel run that cannot
// be honoured, before anything touches the kernel.
func kernelIfaceFlags(cmd *cobra.Command, f *objectFlags) error {
	for _, r := range kernelIfaceRefused {
		if cmd.Flags().Changed(r.flag) {
			return fmt.Errorf("--engine kernel --iface with --%s: %s", r.flag, r.why)
		}
	}
	if f.pcapIn != "" {
		return errors.New("give --pcap or --iface, not both")
	}
	if f.packets == 0 && f.duration == 0 {
		return errors.New("--iface needs --packets or --duration to know when to stop")
	}
	return nil
}

// kernelIfacePoll is how often a live kernel run reads its counters, to
// stop at --packets.
const kernelIfacePoll = 20 * time.Millisecond

// runKernelIface attaches prog (an XDP program, or a tc one, at TCX
// ingress) of the object at path to --iface for real, the object changed
// to count the verdicts of its programs (kernel.CountVerdicts), and
// reports the counts as a user-space --iface run does. It detaches after
// --packets frames (the counts may exceed it by the frames that arrived
// in the meantime: the kernel does not wait for waggle), --duration, or
// --timeout.
func (e *env) runKernelIface(path string, prog *waggle.Program, f *objectFlags) error {
	var h kernel.Hook
	switch prog.Type() {
	case ebpf.XDP:
		h = kernel.Hook{Kind: kernel.HookXDP, Interface: f.iface}
	case ebpf.SchedCLS:
		h = kernel.Hook{Kind: kernel.HookTCX, Interface: f.iface, Direction: kernel.Ingress}
	default:
		return fmt.Errorf("--engine kernel --iface attaches XDP and tc programs; %s is %v (waggle attach takes the other hooks)", prog.Name(), prog.Type())
	}
	typ := prog.Type()
	a, err := kernel.AttachFile(path, kernel.AttachOptions{
		Program: prog.Name(),
		Hook:    h,
		Prepare: func(spec *ebpf.CollectionSpec) error { return kernel.CountVerdicts(spec, typ) },
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			fmt.Fprintf(e.stderr, "%+v\n", ve)
		}
		return fmt.Errorf("--engine kernel --iface: %w", err)
	}
	defer a.Close()
	counters := a.Collection.Maps[kernel.VerdictMap]
	start := time.Now()
	var deadline time.Time
	if f.duration > 0 {
		deadline = start.Add(f.duration)
	}
	ctx := f.context()
	tick := time.NewTicker(kernelIfacePoll)
	defer tick.Stop()
	stopped := ""
	for {
		v, err := kernel.ReadVerdicts(counters)
		if err != nil {
			return err
		}
		if f.packets > 0 && v.Total() >= uint64(f.packets) || !deadline.IsZero() && !time.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			stopped = "--timeout"
		case <-tick.C:
			continue
		}
		break
	}
	// Detach, then read: nothing counts after.
	if err := a.Attachment.Close(); err != nil {
		return fmt.Errorf("detach from %s: %w", f.iface, err)
	}
	elapsed := time.Since(start)
	v, err := kernel.ReadVerdicts(counters)
	if err != nil {
		return err
	}
	sum := &packetSummary{Program: prog.Name(), Type: prog.Type().String(), Engine: kernelEngine,
		Packets: int(v.Total()), Verdicts: map[string]int{}, Seconds: elapsed.Seconds()}
	for r, n := range v.Counts {
		if n > 0 {
			sum.Verdicts[prog.VerdictName(uint32(r))] += int(n)
		}
	}
	if v.Other > 0 {
		sum.Verdicts[fmt.Sprintf("%d or more", kernel.VerdictSlots)] = int(v.Other)
	}
	if sum.Seconds > 0 {
		sum.PacketsPerSec = float64(sum.Packets) / sum.Seconds
	}
	if stopped != "" {
		sum.Stopped = fmt.Sprintf("--timeout %v reached after %d packets", f.timeout, sum.Packets)
	}
	return e.printSummary(sum, f)
}
