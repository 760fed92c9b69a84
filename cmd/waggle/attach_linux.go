//go:build linux

package main

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// drainSocket reads the packets a socket filter lets through to fd until
// ctx is done; the function it returns waits for that and says how many
// packets and bytes there were.
func drainSocket(ctx context.Context, fd int) func() (packets, bytes int) {
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	done := make(chan struct{})
	var packets, bytes int
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for ctx.Err() == nil {
			n, _, err := unix.Recvfrom(fd, buf, unix.MSG_TRUNC)
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return
			}
			packets++
			bytes += n
		}
	}()
	return func() (int, int) {
		<-done
		return packets, bytes
	}
}
