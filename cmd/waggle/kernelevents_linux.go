package main

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/perf"
	"github.com/cilium/ebpf/ringbuf"
)

// kernelReaders reads the kernel's ring buffers and perf event arrays
// with cilium/ebpf's readers.
type kernelReaders struct {
	rings []namedKernelRing
	perfs []namedKernelPerf
	rec   ringbuf.Record
	prec  perf.Record
}

type namedKernelRing struct {
	name string
	r    *ringbuf.Reader
}

type namedKernelPerf struct {
	name string
	r    *perf.Reader
}

// newKernelEventPrinter reads the records programs write to the kernel's
// ring buffers and perf event arrays (kmaps, by the names of om's maps),
// as newEventPrinter reads waggle's.
func newKernelEventPrinter(e *env, om *objectMaps, kmaps map[string]*ebpf.Map, asJSON bool) (*eventPrinter, error) {
	kr := &kernelReaders{}
	ep := &eventPrinter{e: e, asJSON: asJSON, kernel: kr}
	for _, name := range om.order {
		km := kmaps[name]
		if km == nil {
			continue
		}
		switch km.Type() {
		case ebpf.RingBuf:
			r, err := ringbuf.NewReader(km)
			if err != nil {
				ep.close()
				return nil, fmt.Errorf("--events: map %s in the kernel: %w", name, err)
			}
			kr.rings = append(kr.rings, namedKernelRing{name, r})
		case ebpf.PerfEventArray:
			r, err := perf.NewReader(km, perfBuffer)
			if err != nil {
				ep.close()
				return nil, fmt.Errorf("--events: map %s in the kernel: %w", name, err)
			}
			kr.perfs = append(kr.perfs, namedKernelPerf{name, r})
		}
	}
	if len(kr.rings) == 0 && len(kr.perfs) == 0 {
		ep.close()
		return nil, fmt.Errorf("--events: the object has no ring buffer or perf event array; its maps are %s", om.names())
	}
	return ep, nil
}

func (kr *kernelReaders) drain(ep *eventPrinter, packet int) {
	for _, r := range kr.rings {
		r.r.SetDeadline(time.Now())
		for r.r.ReadInto(&kr.rec) == nil {
			ep.print(event{Packet: packet, Map: r.name, Type: "ringbuf", Data: hex.EncodeToString(kr.rec.RawSample)})
		}
	}
	for _, p := range kr.perfs {
		p.r.SetDeadline(time.Now())
		for p.r.ReadInto(&kr.prec) == nil {
			cpu := kr.prec.CPU
			ev := event{Packet: packet, Map: p.name, Type: "perf_event_array", CPU: &cpu, Lost: kr.prec.LostSamples}
			if ev.Lost == 0 {
				ev.Data = hex.EncodeToString(kr.prec.RawSample)
			}
			ep.print(ev)
		}
	}
}

func (kr *kernelReaders) close() {
	for _, r := range kr.rings {
		r.r.Close()
	}
	for _, p := range kr.perfs {
		p.r.Close()
	}
}
