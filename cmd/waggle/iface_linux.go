//go:build linux

package main

import (
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle"
)

// runIface runs the program on the frames arriving at an interface, read
// from an AF_PACKET socket, as an XDP or TC program attached there would
// see them (but alongside the kernel's own path: waggle observes, it does
// not intercept). With --out, the frames the program passes or transmits
// are written to a capture, modified as the program left them. It stops
// after --packets frames or --duration.
func (e *env) runIface(prog *waggle.Program, f *objectFlags) error {
	ifc, err := net.InterfaceByName(f.iface)
	if err != nil {
		return fmt.Errorf("--iface: %w", err)
	}
	// Flags first: a wrong command line is told so, whatever the
	// privileges.
	if f.packets == 0 && f.duration == 0 {
		return errors.New("--iface needs --packets or --duration to know when to stop")
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return fmt.Errorf("AF_PACKET socket (needs CAP_NET_RAW): %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
		return fmt.Errorf("bind to %s: %w", f.iface, err)
	}
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	var deadline time.Time
	if f.duration > 0 {
		deadline = time.Now().Add(f.duration)
	}
	buf := make([]byte, 65536)
	// With wait false, a frame not yet there is errWouldBlock: the reader
	// hands out the frames it has rather than wait with them.
	next := func(wait bool) ([]byte, time.Time, error) {
		flags := 0
		if !wait {
			flags = unix.MSG_DONTWAIT
		}
		for {
			// --timeout too: a quiet interface leaves Recvfrom every
			// 200 ms (SO_RCVTIMEO).
			if !deadline.IsZero() && time.Now().After(deadline) || f.context().Err() != nil {
				return nil, time.Time{}, errStop
			}
			n, from, err := unix.Recvfrom(fd, buf, flags)
			if errors.Is(err, unix.EAGAIN) && !wait {
				return nil, time.Time{}, errWouldBlock
			}
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return nil, time.Time{}, fmt.Errorf("read %s: %w", f.iface, err)
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue // ingress only, as XDP sees
			}
			return buf[:n], time.Now(), nil
		}
	}
	write, closeOut, err := e.captureWriter(f)
	if err != nil {
		return err
	}
	sum, err := e.runPackets(prog, f, next, write)
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return e.printSummary(sum, f)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
