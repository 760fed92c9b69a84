//go:build linux

package progtype_test

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/progtype"
)

// TestSockopt_kernel compares the socket options of bpf_setsockopt and
// bpf_getsockopt with a new socket of this kernel: bpf_setsockopt calls
// the socket's own setsockopt (sk_setsockopt, do_tcp_setsockopt,
// do_ip_setsockopt, ipv6_setsockopt), so setting each option to each
// value with setsockopt(2) and reading it back with getsockopt(2) must
// give the errno and value a sock_ops program sees. It needs no root;
// options that need privilege are compared as root only.
func TestSockopt_kernel(t *testing.T) {
	values := []int32{-2, -1, 0, 1, 2, 3, 7, 87, 88, 100, 127, 128, 255, 256, 1000, 2303, 32767, 32768, 100000}
	opts := []struct {
		family int
		level  int
		name   int
		values []int32
		root   bool
	}{
		{unix.AF_INET, progtype.SolSocket, progtype.SoReuseAddr, values, false},
		{unix.AF_INET, progtype.SolSocket, progtype.SoReusePort, values, false},
		{unix.AF_INET, progtype.SolSocket, progtype.SoKeepAlive, values, false},
		// The buffer sizes are clamped by net.core.[rw]mem_max, which
		// differ between hosts: values within Linux's default.
		{unix.AF_INET, progtype.SolSocket, progtype.SoSndBuf, []int32{0, 1, 2303, 4000, 100000}, false},
		{unix.AF_INET, progtype.SolSocket, progtype.SoRcvBuf, []int32{0, 1, 1000, 4000, 100000}, false},
		// A negative SO_RCVLOWAT is capped by net.ipv4.tcp_rmem[2].
		{unix.AF_INET, progtype.SolSocket, progtype.SoRcvLowat, []int32{0, 1, 1000, 100000}, false},
		{unix.AF_INET, progtype.SolSocket, progtype.SoPriority, values, true},
		{unix.AF_INET, progtype.SolSocket, progtype.SoMark, values, true},
		{unix.AF_INET, progtype.SolSocket, progtype.SoMaxPacingRate, values, false},
		{unix.AF_INET, progtype.SolSocket, progtype.SoBindToIfindex, []int32{-1, 0, 1}, false},
		{unix.AF_INET, progtype.SolSocket, progtype.SoTxRehash, values, false},
		{unix.AF_INET, progtype.SolTCP, progtype.TCPNoDelay, values, false},
		{unix.AF_INET, progtype.SolTCP, progtype.TCPMaxSeg, values, false},
		{unix.AF_INET, progtype.SolTCP, progtype.TCPKeepIdle, values, false},
		{unix.AF_INET, progtype.SolTCP, progtype.TCPKeepIntvl, values, false},
		{unix.AF_INET, progtype.SolTCP, progtype.TCPKeepCnt, values, false},
		{unix.AF_INET, progtype.SolTCP, progtype.TCPSynCnt, values, false},
		{unix.AF_INET, progtype.SolTCP, progtype.TCPWindowClamp, values, false},
		{unix.AF_INET, progtype.SolTCP, progtype.TCPThinLinearTO, values, false},
		{unix.AF_INET, progtype.SolTCP, progtype.TCPUserTimeout, values, false},
		{unix.AF_INET, progtype.SolTCP, progtype.TCPNotSentLowat, values, false},
		{unix.AF_INET, progtype.SolTCP, progtype.TCPSaveSyn, values, false},
		{unix.AF_INET, progtype.SolIP, progtype.IPTOS, values, false},
		{unix.AF_INET6, progtype.SolIP, progtype.IPTOS, values, false},
		{unix.AF_INET6, progtype.SolIPv6, progtype.IPv6TClass, values, false},
		{unix.AF_INET6, progtype.SolIPv6, progtype.IPv6AutoFlowLbl, values, false},
	}
	root := os.Geteuid() == 0
	compared := 0
	for _, o := range opts {
		if o.root && !root {
			continue
		}
		for _, v := range o.values {
			fd, err := unix.Socket(o.family, unix.SOCK_STREAM, 0)
			if err != nil {
				t.Skipf("socket: %v", err)
			}
			serr := unix.SetsockoptInt(fd, o.level, o.name, int(v))
			got, gerr := unix.GetsockoptInt(fd, o.level, o.name)
			unix.Close(fd)
			ctx := sockOpsCtx(4, uint32(o.family), true, map[int]uint32{88: 7}) // TCP_CLOSE
			out, err := runSockOps(t, sockoptProgram(o.level, o.name, v), ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			ws, wg, wv := sockoptResult(out)
			ks, kg := errnoNum(serr), errnoNum(gerr)
			if ws != ks || wg != kg || (kg == 0 && wv != int32(got)) {
				t.Errorf("family %d level %d option %d value %d: kernel set %d get %d value %d, waggle set %d get %d value %d",
					o.family, o.level, o.name, v, ks, kg, got, ws, wg, wv)
			}
			compared++
		}
	}
	t.Logf("%d settings compared", compared)
}

func errnoNum(err error) int {
	var e unix.Errno
	if errors.As(err, &e) {
		return int(e)
	}
	return 0
}
