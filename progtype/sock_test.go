package progtype_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/netenv"
	"github.com/waggle-bpf/waggle/progtype"
)

// sockOpsCtx builds a struct bpf_sock_ops: a full TCP socket from
// 10.0.0.1:40000 to 10.0.0.2:80 (or IPv6), with the TCP state fields given.
func sockOpsCtx(op uint32, family uint32, full bool, fields map[int]uint32) []byte {
	b := make([]byte, progtype.SockOpsSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], op)
	le.PutUint32(b[20:], family)
	if family == 2 {
		copy(b[24:], []byte{10, 0, 0, 2})
		copy(b[28:], []byte{10, 0, 0, 1})
	} else {
		for i := 0; i < 16; i++ {
			b[32+i], b[48+i] = 0x20, byte(i)
		}
	}
	binary.BigEndian.PutUint16(b[66:], 80) // remote_port: be16 in the upper half
	le.PutUint32(b[68:], 40000)
	le.PutUint32(b[88:], 1) // state: established
	if full {
		le.PutUint32(b[72:], 1)
		le.PutUint32(b[76:], 10)   // snd_cwnd
		le.PutUint32(b[112:], 536) // mss_cache
	}
	for off, v := range fields {
		le.PutUint32(b[off:], v)
	}
	return b
}

// sockoptProgram sets and then gets one int option and returns the value
// read, with the two results in reply: set's in the low 16 bits, get's in
// the high.
func sockoptProgram(level, name int, val int32) string {
	return fmt.Sprintf(`
		r6 = r1
		r2 = %d
		*(u32 *)(r10 - 4) = r2
		r1 = r6
		r2 = %d
		r3 = %d
		r4 = r10
		r4 += -4
		r5 = 4
		call 49
		r7 = r0
		r7 &= 0xffff
		r1 = r6
		r2 = %d
		r3 = %d
		r4 = r10
		r4 += -8
		r5 = 4
		call 57
		r0 <<= 16
		r7 |= r0
		*(u32 *)(r6 + 4) = r7
		r0 = *(u32 *)(r10 - 8)
		exit`, val, level, name, level, name)
}

// runSockOps runs a sock_ops program on ctx with sock.
func runSockOps(tb testing.TB, src string, ctx []byte, sock *netenv.Socket) (*progtype.Output, error) {
	tb.Helper()
	return runProg(tb, checked, mustKind(tb, progtype.SockOps), mustParse(tb, src), progtype.Input{Context: ctx, Socket: sock}, 1)
}

// sockoptResult splits what sockoptProgram returns.
func sockoptResult(out *progtype.Output) (setErr, getErr int, val int32) {
	reply := binary.LittleEndian.Uint32(out.Context[4:])
	return -int(int16(reply)), -int(int16(reply >> 16)), int32(out.Retval)
}

// TestSockOps_socket checks what a sock_ops run does with its context and
// socket: the socket struct behind sk, the options, the callback flags,
// the TCP fields options change, reply and sk_txhash, and a socket that is
// not full.
func TestSockOps_socket(t *testing.T) {
	le := binary.LittleEndian
	t.Run("sk", func(t *testing.T) {
		// Read the socket's family, ports, addresses, state, type and
		// protocol through sk.
		out, err := runSockOps(t, `
			r6 = r1
			r2 = *(u64 *)(r6 + 184)
			r0 = 0
			if r2 == 0 goto out
			r3 = *(u32 *)(r2 + 4)
			r4 = *(u32 *)(r2 + 44)
			r3 <<= 16
			r3 |= r4
			r0 = r3
			r3 = *(u16 *)(r2 + 48)
			r4 = *(u32 *)(r2 + 72)
			r3 <<= 8
			r3 |= r4
			*(u32 *)(r6 + 4) = r3
			r3 = *(u32 *)(r2 + 8)
			r4 = *(u32 *)(r2 + 12)
			r3 <<= 8
			r3 |= r4
			*(u32 *)(r6 + 164) = r3
		out:
			exit`, sockOpsCtx(4, 2, true, nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		if out.Retval != 2<<16|40000 {
			t.Errorf("family, local port %#x, want %#x", out.Retval, 2<<16|40000)
		}
		if got, want := le.Uint32(out.Context[4:]), uint32(0x5000)<<8|1; got != want {
			t.Errorf("dst_port, state %#x, want %#x", got, want)
		}
		if got := le.Uint32(out.Context[164:]); got != 1<<8|6 {
			t.Errorf("type, protocol %#x, want SOCK_STREAM, IPPROTO_TCP", got)
		}
		for _, off := range []int{184, 192, 200} {
			if le.Uint64(out.Context[off:]) != 0 {
				t.Errorf("ctx_out carries a run pointer at %d", off)
			}
		}
	})
	t.Run("options", func(t *testing.T) {
		sock := &netenv.Socket{}
		out, err := runSockOps(t, sockoptProgram(progtype.SolTCP, progtype.TCPBPFIW, 40), sockOpsCtx(4, 2, true, nil), sock)
		if err != nil {
			t.Fatal(err)
		}
		if s, g, _ := sockoptResult(out); s != 0 || g != int(maps.EINVAL) {
			t.Errorf("TCP_BPF_IW: set %d get %d, want 0 and EINVAL (not readable)", s, g)
		}
		if cwnd := le.Uint32(out.Context[76:]); cwnd != 40 {
			t.Errorf("snd_cwnd after TCP_BPF_IW: %d", cwnd)
		}
		out, err = runSockOps(t, sockoptProgram(progtype.SolTCP, progtype.TCPBPFIW, 40), sockOpsCtx(4, 2, true, map[int]uint32{152: 3}), sock)
		if err != nil {
			t.Fatal(err)
		}
		if s, _, _ := sockoptResult(out); s != int(maps.EINVAL) {
			t.Errorf("TCP_BPF_IW after data went out: %d, want EINVAL", s)
		}
		out, err = runSockOps(t, sockoptProgram(progtype.SolTCP, progtype.TCPBPFSndCwndClp, 100), sockOpsCtx(4, 2, true, nil), sock)
		if err != nil {
			t.Fatal(err)
		}
		clamp := sock.Options[netenv.SockOpt{Level: progtype.SolTCP, Name: progtype.TCPBPFSndCwndClp}]
		if th := le.Uint32(out.Context[96:]); th != 100 || clamp != 100 {
			t.Errorf("TCP_BPF_SNDCWND_CLAMP: ssthresh %d, clamp %d", th, clamp)
		}
		// Options persist in the Socket across runs.
		out, err = runSockOps(t, sockoptProgram(progtype.SolSocket, progtype.SoSndBuf, 10000), sockOpsCtx(4, 2, true, nil), sock)
		if err != nil {
			t.Fatal(err)
		}
		if s, g, v := sockoptResult(out); s != 0 || g != 0 || v != 20000 {
			t.Errorf("SO_SNDBUF 10000: set %d get %d value %d, want 20000", s, g, v)
		}
		if sock.Options[netenv.SockOpt{Level: progtype.SolSocket, Name: progtype.SoSndBuf}] != 20000 {
			t.Errorf("Socket.Options: %v", sock.Options)
		}
		// A socket that is not full refuses options and reads no sk.
		out, err = runSockOps(t, sockoptProgram(progtype.SolSocket, progtype.SoMark, 5), sockOpsCtx(4, 2, false, nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		if s, g, v := sockoptResult(out); s != int(maps.EINVAL) || g != int(maps.EINVAL) || v != 0 {
			t.Errorf("without a full socket: set %d get %d value %d, want EINVAL, EINVAL, 0", s, g, v)
		}
	})
	t.Run("congestion", func(t *testing.T) {
		host, err := netenv.New(&netenv.Config{CongestionControls: []string{"reno", "cubic", "dctcp"}})
		if err != nil {
			t.Fatal(err)
		}
		sock := &netenv.Socket{}
		prog := func(name string) string {
			b := make([]byte, 8)
			copy(b, name)
			return fmt.Sprintf(`
				r6 = r1
				r2 = %d ll
				*(u64 *)(r10 - 8) = r2
				r1 = r6
				r2 = 6
				r3 = 13
				r4 = r10
				r4 += -8
				r5 = 8
				call 49
				*(u32 *)(r6 + 4) = r0
				r1 = r6
				r2 = 6
				r3 = 13
				r4 = r10
				r4 += -16
				r5 = 8
				call 57
				r0 = *(u64 *)(r10 - 16)
				r0 >>= 0
				exit`, int64(binary.LittleEndian.Uint64(b)))
		}
		for _, c := range []struct {
			name string
			ret  int32
			now  string
		}{
			{"dctcp", 0, "dctcp"}, {"nv", -int32(maps.ENOENT), "dctcp"}, {"cdg", -524, "dctcp"}, {"reno", 0, "reno"},
		} {
			out, err := runProg(t, checked, mustKind(t, progtype.SockOps), mustParse(t, prog(c.name)), progtype.Input{Context: sockOpsCtx(3, 2, true, nil), Socket: sock, Net: host}, 1)
			if err != nil {
				t.Fatal(err)
			}
			if ret := int32(le.Uint32(out.Context[4:])); ret != c.ret || sock.Congestion != c.now {
				t.Errorf("TCP_CONGESTION %q: %d, now %q; want %d, %q", c.name, ret, sock.Congestion, c.ret, c.now)
			}
			var want [8]byte
			copy(want[:7], c.now)
			if got := uint32(out.Retval); got != le.Uint32(want[:]) {
				t.Errorf("getsockopt after %q: %q", c.name, le.AppendUint32(nil, got))
			}
		}
	})
	t.Run("cb_flags", func(t *testing.T) {
		out, err := runSockOps(t, "r6 = r1\nr2 = 0x183\ncall 59\nr1 = *(u32 *)(r6 + 84)\n*(u32 *)(r6 + 4) = r1\nexit", sockOpsCtx(4, 2, true, nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		if out.Retval != 0x180 || le.Uint32(out.Context[4:]) != 0x03 || le.Uint32(out.Context[84:]) != 0x03 {
			t.Errorf("cb_flags_set(0x183): ret %#x, seen %#x, ctx %#x; want 0x180, 3, 3", out.Retval, le.Uint32(out.Context[4:]), le.Uint32(out.Context[84:]))
		}
	})
	t.Run("txhash", func(t *testing.T) {
		for _, full := range []bool{true, false} {
			out, err := runSockOps(t, "*(u32 *)(r1 + 164) = 0x77\nr0 = 1\nexit", sockOpsCtx(4, 2, full, nil), nil)
			if err != nil {
				t.Fatal(err)
			}
			want := uint32(0)
			if full {
				want = 0x77
			}
			if got := le.Uint32(out.Context[164:]); got != want {
				t.Errorf("full %v: sk_txhash %#x, want %#x", full, got, want)
			}
		}
	})
	t.Run("skb", func(t *testing.T) {
		seg := []byte{0x1f, 0x90, 0, 0x50, 1, 2, 3, 4}
		ctx := sockOpsCtx(13, 2, true, map[int]uint32{212: 0x12})
		out, err := runProg(t, checked, mustKind(t, progtype.SockOps), mustParse(t, `
			r2 = *(u64 *)(r1 + 192)
			r3 = *(u64 *)(r1 + 200)
			r4 = r2
			r4 += 8
			r0 = 0
			if r4 > r3 goto out
			r0 = *(u32 *)(r2 + 4)
			r5 = *(u32 *)(r1 + 208)
			r6 = *(u8 *)(r1 + 212)
			r5 <<= 8
			r5 |= r6
			*(u32 *)(r1 + 4) = r5
		out:
			exit`), progtype.Input{Context: ctx, Data: seg}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if out.Retval != 0x04030201 || le.Uint32(out.Context[4:]) != 8<<8|0x12 {
			t.Errorf("segment word %#x, skb_len/tcp_flags %#x", out.Retval, le.Uint32(out.Context[4:]))
		}
	})
	t.Run("ctx_in", func(t *testing.T) {
		bad := func(name string, ctx []byte, data []byte) {
			_, err := mustKind(t, progtype.SockOps).NewRun(progtype.Input{Context: ctx, Data: data})
			if !errors.Is(err, maps.EINVAL) {
				t.Errorf("%s: %v, want EINVAL", name, err)
			}
		}
		bad("sk set", sockOpsCtx(4, 2, true, map[int]uint32{184: 1}), nil)
		bad("skb_len set", sockOpsCtx(4, 2, true, map[int]uint32{208: 1}), nil)
		bad("tcp field without a full socket", sockOpsCtx(4, 2, false, map[int]uint32{76: 1}), nil)
		bad("is_fullsock 2", sockOpsCtx(4, 2, true, map[int]uint32{72: 2}), nil)
		bad("remote_port low half", sockOpsCtx(4, 2, true, map[int]uint32{64: 80}), nil)
		bad("tcp flags without a segment", sockOpsCtx(4, 2, true, map[int]uint32{212: 2}), nil)
		if _, err := mustKind(t, progtype.SockOps).NewRun(progtype.Input{Flags: 1}); !errors.Is(err, maps.EINVAL) {
			t.Errorf("flags: %v, want EINVAL", err)
		}
		long := append(sockOpsCtx(4, 2, true, nil), 1)
		if _, err := mustKind(t, progtype.SockOps).NewRun(progtype.Input{Context: long}); !errors.Is(err, maps.E2BIG) {
			t.Errorf("long ctx_in: %v", err)
		}
	})
}

// TestCgroupSock_run writes a created socket's mark, priority and device
// and reads its fields, as a cgroup/sock program does.
func TestCgroupSock_run(t *testing.T) {
	le := binary.LittleEndian
	ctx := make([]byte, progtype.BpfSockSize)
	le.PutUint32(ctx[4:], 10) // AF_INET6
	le.PutUint32(ctx[8:], 2)  // SOCK_DGRAM
	le.PutUint32(ctx[12:], 17)
	le.PutUint32(ctx[72:], 7)
	le.PutUint32(ctx[76:], 0xffffffff) // no queue
	prog := `
		r2 = *(u32 *)(r1 + 4)
		if r2 != 10 goto deny
		r2 = *(u32 *)(r1 + 12)
		*(u32 *)(r1 + 16) = r2
		r2 = 0x1234
		*(u32 *)(r1 + 20) = r2
		*(u32 *)(r1 + 0) = 3
		r2 = *(u32 *)(r1 + 76)
		r3 = *(u16 *)(r1 + 76)
		r4 = *(u8 *)(r1 + 76)
		r0 = 1
		if r2 != -1 goto deny
		if r3 != -1 goto deny
		if r4 != 0xff goto deny
		exit
	deny:
		r0 = 0
		exit`
	k := mustKind(t, progtype.CgroupSock)
	if k.AttachType() != progtype.AttachCgroupInetSockCreate {
		t.Errorf("default attach type %d, want BPF_CGROUP_INET_SOCK_CREATE", k.AttachType())
	}
	out, err := runProg(t, checked, k, mustParse(t, prog), progtype.Input{Context: ctx}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if out.Retval != 1 {
		t.Fatalf("retval %d: a field read differently", out.Retval)
	}
	want := append([]byte(nil), ctx...)
	le.PutUint32(want[0:], 3)
	le.PutUint32(want[16:], 17)
	le.PutUint32(want[20:], 0x1234)
	if string(out.Context) != string(want) {
		t.Errorf("ctx out\n% x\nwant\n% x", out.Context, want)
	}
	for name, c := range map[string]func([]byte){
		"family":      func(b []byte) { le.PutUint32(b[4:], 0x10000) },
		"state":       func(b []byte) { le.PutUint32(b[72:], 0x100) },
		"queue":       func(b []byte) { le.PutUint32(b[76:], 0xffff) },
		"dst padding": func(b []byte) { b[50] = 1 },
	} {
		b := append([]byte(nil), ctx...)
		c(b)
		if _, err := k.NewRun(progtype.Input{Context: b}); !errors.Is(err, maps.EINVAL) {
			t.Errorf("%s: %v, want EINVAL", name, err)
		}
	}
	if _, err := k.NewRun(progtype.Input{Context: ctx, Data: make([]byte, 20)}); !errors.Is(err, maps.EINVAL) {
		t.Errorf("with a packet: %v, want EINVAL", err)
	}
	// Without ctx_in the context is the hook's socket: Input.Socket, or a
	// new TCP socket over IPv4.
	for _, c := range []struct {
		name string
		sock *netenv.Socket
		want [5]uint32 // family, type, protocol, src_port, state
	}{
		{"new socket", nil, [5]uint32{2, 1, 6, 0, 7}},
		{"given socket", &netenv.Socket{Proto: "udp", Local: netip.MustParseAddrPort("[2001:db8::1]:53"), State: netenv.SockClose}, [5]uint32{10, 2, 17, 53, 7}},
	} {
		out, err := runProg(t, checked, k, mustParse(t, "r0 = 1\nexit"), progtype.Input{Socket: c.sock}, 1)
		if err != nil {
			t.Fatal(err)
		}
		b := out.Context
		if got := [5]uint32{le.Uint32(b[4:]), le.Uint32(b[8:]), le.Uint32(b[12:]), le.Uint32(b[44:]), le.Uint32(b[72:])}; got != c.want || int32(le.Uint32(b[76:])) != -1 {
			t.Errorf("%s: family, type, protocol, src_port, state %v, rx_queue_mapping %d; want %v, -1", c.name, got, int32(le.Uint32(b[76:])), c.want)
		}
	}
}

// TestPerfProgReadValue reads the values of the event that ran a perf_event
// program, and fails as Linux does for another size or without an event.
func TestPerfProgReadValue(t *testing.T) {
	k := mustKind(t, progtype.PerfEvent)
	prog := func(size int) string {
		return fmt.Sprintf(`
			r2 = -1
			*(u64 *)(r10 - 24) = r2
			r2 = r10
			r2 += -24
			r3 = %d
			call 56
			r1 = *(u64 *)(r10 - 24)
			r0 &= 0xff
			r1 <<= 8
			r0 |= r1
			exit`, size)
	}
	v := &progtype.PerfEventValue{Counter: 77, Enabled: 10, Running: 9}
	for _, c := range []struct {
		name string
		size int
		in   *progtype.PerfEventValue
		want uint32
	}{
		{"value", 24, v, 77 << 8},
		{"size", 16, v, 0xea}, // -EINVAL, buffer zeroed
		{"none", 24, nil, 0xea},
	} {
		out, err := runProg(t, checked, k, mustParse(t, prog(c.size)), progtype.Input{PerfValue: c.in}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if out.Retval != c.want {
			t.Errorf("%s: %#x, want %#x (counter << 8 | result & 0xff)", c.name, out.Retval, c.want)
		}
	}
}

// TestCheckAccess_sock checks the context rules of cgroup_sock_addr and
// cgroup_sock programs (sock_addr_is_valid_access and
// sock_filter_is_valid_access): fields of the attach type's family only,
// narrow and wide loads where Linux allows them, writes to the address
// fields and, for socket creation, to bound_dev_if, mark and priority.
func TestCheckAccess_sock(t *testing.T) {
	for _, c := range []struct {
		name      string
		typ       progtype.Type
		attach    progtype.AttachType
		off, size int
		write, ok bool
	}{
		{"connect4 user_ip4", progtype.CgroupSockAddr, progtype.AttachCgroupInet4Connect, 4, 4, false, true},
		{"connect4 user_ip4 byte", progtype.CgroupSockAddr, progtype.AttachCgroupInet4Connect, 7, 1, false, true},
		{"connect4 user_ip4 write", progtype.CgroupSockAddr, progtype.AttachCgroupInet4Connect, 4, 4, true, true},
		{"connect4 user_ip4 narrow write", progtype.CgroupSockAddr, progtype.AttachCgroupInet4Connect, 4, 2, true, false},
		{"connect4 user_ip6", progtype.CgroupSockAddr, progtype.AttachCgroupInet4Connect, 8, 4, false, false},
		{"connect6 user_ip6 wide", progtype.CgroupSockAddr, progtype.AttachCgroupInet6Connect, 16, 8, false, true},
		{"connect6 user_ip6 wide write", progtype.CgroupSockAddr, progtype.AttachCgroupInet6Connect, 8, 8, true, true},
		{"connect6 user_ip4", progtype.CgroupSockAddr, progtype.AttachCgroupInet6Connect, 4, 4, false, false},
		{"user_port write", progtype.CgroupSockAddr, progtype.AttachCgroupInet4Connect, 24, 4, true, true},
		{"user_port 8 bytes", progtype.CgroupSockAddr, progtype.AttachCgroupInet4Connect, 24, 8, false, false},
		{"family", progtype.CgroupSockAddr, progtype.AttachCgroupInet4Connect, 28, 4, false, true},
		{"family write", progtype.CgroupSockAddr, progtype.AttachCgroupInet4Connect, 28, 4, true, false},
		{"family byte", progtype.CgroupSockAddr, progtype.AttachCgroupInet4Connect, 28, 1, false, false},
		{"msg_src_ip4 sendmsg", progtype.CgroupSockAddr, progtype.AttachCgroupUDP4Sendmsg, 40, 4, true, true},
		{"msg_src_ip4 connect", progtype.CgroupSockAddr, progtype.AttachCgroupInet4Connect, 40, 4, false, false},
		{"sk", progtype.CgroupSockAddr, progtype.AttachCgroupInet4Connect, 64, 8, false, true},
		{"sk half", progtype.CgroupSockAddr, progtype.AttachCgroupInet4Connect, 64, 4, false, false},
		{"sk write", progtype.CgroupSockAddr, progtype.AttachCgroupInet4Connect, 64, 8, true, false},
		{"sk upper half", progtype.CgroupSockAddr, progtype.AttachCgroupInet4Connect, 68, 4, false, false},
		{"padding before sk", progtype.CgroupSockAddr, progtype.AttachCgroupUDP6Sendmsg, 60, 4, false, false},
		{"past the end", progtype.CgroupSockAddr, progtype.AttachCgroupInet4Connect, 72, 4, false, false},
		{"sock family", progtype.CgroupSock, progtype.AttachCgroupInetSockCreate, 4, 4, false, true},
		{"sock mark create", progtype.CgroupSock, progtype.AttachCgroupInetSockCreate, 16, 4, true, true},
		{"sock mark post bind", progtype.CgroupSock, progtype.AttachCgroupInet4PostBind, 16, 4, false, false},
		{"sock src_ip4 post bind", progtype.CgroupSock, progtype.AttachCgroupInet4PostBind, 24, 4, false, true},
		{"sock src_ip4 create", progtype.CgroupSock, progtype.AttachCgroupInetSockCreate, 24, 4, false, false},
		{"sock src_port post bind6", progtype.CgroupSock, progtype.AttachCgroupInet6PostBind, 44, 4, false, true},
		{"sock dst_port half", progtype.CgroupSock, progtype.AttachCgroupInetSockRelease, 48, 2, false, true},
		{"sock dst_port padding", progtype.CgroupSock, progtype.AttachCgroupInetSockRelease, 50, 2, false, false},
		{"sock state write", progtype.CgroupSock, progtype.AttachCgroupInetSockCreate, 72, 4, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, err := progtype.LookupAttach(c.typ, c.attach)
			if err != nil {
				t.Fatal(err)
			}
			_, err = k.CheckAccess(c.off, c.size, c.write, false)
			if (err == nil) != c.ok {
				t.Fatalf("got %v, want ok=%v", err, c.ok)
			}
			if err != nil && !errors.Is(err, progtype.ErrContextAccess) {
				t.Fatalf("%v is not an access error", err)
			}
		})
	}
	if _, err := progtype.LookupAttach(progtype.CgroupSockAddr, progtype.AttachNone); !errors.Is(err, progtype.ErrUnsupported) {
		t.Fatalf("a socket address program without an attach type: %v", err)
	}
	k, err := progtype.Lookup(progtype.CgroupSock)
	if err != nil || k.AttachType() != progtype.AttachCgroupInetSockCreate {
		t.Fatalf("cgroup_sock without an attach type: %v, %v", k, err)
	}
	if _, err := progtype.LookupAttach(progtype.CgroupSock, progtype.AttachCgroupInet4Connect); !errors.Is(err, progtype.ErrUnsupported) {
		t.Fatalf("a socket program with a socket address attach type: %v", err)
	}
}

// sockHost is a host with a TCP listener on 10.0.0.1:80 and a connection
// to it, and options set on the listener.
func sockHost(tb testing.TB) *netenv.Host {
	tb.Helper()
	h, err := netenv.New(&netenv.Config{
		Interfaces: []netenv.Interface{{Index: 2, Name: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}},
		Sockets: []netenv.Socket{
			{Proto: "tcp", Local: netip.MustParseAddrPort("10.0.0.1:80"),
				Options: map[netenv.SockOpt]int32{{Level: progtype.SolSocket, Name: progtype.SoSndBuf}: 9000}},
			{Proto: "tcp", Local: netip.MustParseAddrPort("10.0.0.1:80"), Remote: netip.MustParseAddrPort("10.0.0.9:1234")},
			{Proto: "tcp", Local: netip.MustParseAddrPort("10.0.0.1:81"), Remote: netip.MustParseAddrPort("10.0.0.9:1235"), State: netenv.SockTimeWait},
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// lookupTCP is a program prefix that looks up the TCP socket of
// 10.0.0.9:sport -> 10.0.0.1:dport and leaves it in r6, returning 100
// when there is none.
func lookupTCP(sport, dport uint16) string {
	return fmt.Sprintf(`
		r9 = r1
		r2 = 0x0100000a0900000a ll
		*(u64 *)(r10 - 16) = r2
		r2 = %d
		*(u32 *)(r10 - 8) = r2
		r1 = r9
		r2 = r10
		r2 += -16
		r3 = 12
		r4 = -1
		r5 = 0
		call 84
		if r0 != 0 goto +2
		r0 = 100
		exit
		r6 = r0
	`, uint32(sport>>8|sport<<8&0xff00)|uint32(dport>>8|dport<<8&0xff00)<<16)
}

// TestSockets_model checks that a socket is one thing wherever a pointer
// to it comes from: a lookup's result, its bpf_tcp_sock, __sk_buff.sk
// and bpf_sock_ops.sk work with every socket helper, and the socket
// helpers refuse pointers that are not a socket.
func TestSockets_model(t *testing.T) {
	le := binary.LittleEndian
	host := sockHost(t)
	tc := mustKind(t, progtype.SchedCLS)
	run := func(t *testing.T, k *progtype.Kind, src string, in progtype.Input) (*progtype.Output, error) {
		t.Helper()
		return runProg(t, checked, k, mustParse(t, src), in, 1)
	}
	t.Run("lookup", func(t *testing.T) {
		// bpf_tcp_sock of a listener found by bpf_sk_lookup_tcp: a new
		// socket's TCP state; bpf_sk_fullsock and bpf_get_listener_sock
		// take the bpf_tcp_sock pointer and give the socket back.
		out, err := run(t, tc, lookupTCP(1000, 80)+`
			r1 = r6
			call 96
			if r0 != 0 goto +4
			r1 = r6
			call 86
			r0 = 101
			exit
			r7 = r0
			r8 = *(u32 *)(r7 + 0)
			r8 <<= 16
			r2 = *(u32 *)(r7 + 28)
			r8 |= r2
			r1 = r7
			call 95
			r1 = 102
			if r0 != r6 goto fail
			r1 = r7
			call 98
			r1 = 103
			if r0 != r6 goto fail
			r1 = r6
			call 86
			r0 = r8
			exit
		fail:
			r8 = r1
			r1 = r6
			call 86
			r0 = r8
		out:
			exit`, progtype.Input{Data: ipv4UDP(), Net: host})
		if err != nil {
			t.Fatal(err)
		}
		if out.Retval != 10<<16|536 {
			t.Errorf("snd_cwnd<<16|mss_cache = %#x (or failure code %d), want %#x", out.Retval, out.Retval, 10<<16|536)
		}
	})
	t.Run("established", func(t *testing.T) {
		// The connection is found first; it is no listener.
		out, err := run(t, tc, lookupTCP(1234, 80)+`
			r1 = r6
			call 98
			r7 = r0
			r1 = r6
			call 86
			r0 = r7
			exit`, progtype.Input{Data: ipv4UDP(), Net: host})
		if err != nil || out.Retval != 0 {
			t.Errorf("bpf_get_listener_sock of a connection: %v, %v", out, err)
		}
	})
	t.Run("skb socket", func(t *testing.T) {
		// The packet's socket is Input.Socket: __sk_buff.sk points to
		// it, the __sk_buff fields read it (cgroup_skb may read them),
		// and the socket helpers take it.
		s := &netenv.Socket{Proto: "tcp", State: netenv.SockEstablished, Cookie: 7, UID: 5,
			Local: netip.MustParseAddrPort("10.0.0.1:80"), Remote: netip.MustParseAddrPort("10.0.0.9:1234")}
		out, err := run(t, mustKind(t, progtype.CgroupSKB), `
			r6 = r1
			r7 = *(u64 *)(r6 + 168)
			r2 = *(u32 *)(r6 + 88)
			*(u32 *)(r6 + 48) = r2
			r2 = *(u32 *)(r6 + 96)
			*(u32 *)(r6 + 52) = r2
			r2 = *(u32 *)(r6 + 132)
			*(u32 *)(r6 + 56) = r2
			r2 = *(u32 *)(r6 + 136)
			*(u32 *)(r6 + 60) = r2
			r1 = r7
			call 96
			if r0 == 0 goto +1
			r0 = *(u32 *)(r0 + 0)
			*(u32 *)(r6 + 64) = r0
			r1 = r6
			call 46
			exit`, progtype.Input{Data: ipv4UDP(), Socket: s})
		if err != nil {
			t.Fatal(err)
		}
		cb := out.Context[48:]
		if got := [5]uint32{le.Uint32(cb), le.Uint32(cb[4:]), le.Uint32(cb[8:]), le.Uint32(cb[12:]), le.Uint32(cb[16:])}; got != [5]uint32{2, 0x0100000a, 0xd2040000, 80, 10} {
			t.Errorf("family, local_ip4, remote_port (__be16 1234 in the upper half), local_port, snd_cwnd = %#x", got)
		}
		if out.Retval != 7 {
			t.Errorf("cookie %d, want 7", out.Retval)
		}
	})
	t.Run("sock_ops", func(t *testing.T) {
		// bpf_sock_ops.sk is the callback's socket; its bpf_tcp_sock
		// has the context's TCP fields, after the options changed them.
		out, err := runSockOps(t, `
			r6 = r1
			r2 = 40
			*(u32 *)(r10 - 4) = r2
			r1 = r6
			r2 = 6
			r3 = 1001
			r4 = r10
			r4 += -4
			r5 = 4
			call 49
			r1 = *(u64 *)(r6 + 184)
			if r1 == 0 goto out
			call 96
			if r0 == 0 goto out
			r0 = *(u32 *)(r0 + 0)
		out:
			exit`, sockOpsCtx(4, 2, true, nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		if out.Retval != 40 {
			t.Errorf("snd_cwnd through bpf_tcp_sock after TCP_BPF_IW: %d, want 40", out.Retval)
		}
	})
	t.Run("not a socket", func(t *testing.T) {
		for name, ptr := range map[string]string{
			"context":           "r1 = r9",
			"inside the socket": "r1 = r6\nr1 += 8",
			"past the tcp_sock": "r1 = r6\nr1 += 84",
			"a made-up pointer": "r1 = 4096",
		} {
			_, err := run(t, tc, lookupTCP(1000, 80)+ptr+`
				call 96
				exit`, progtype.Input{Data: ipv4UDP(), Net: host})
			if err == nil || !strings.Contains(err.Error(), "not a socket") {
				t.Errorf("%s: %v, want an error naming it no socket", name, err)
			}
		}
	})
}

// TestSockOps_socketOptions checks that a sock_ops socket's options are its
// fields where netenv.Socket has them (SO_MARK, SO_PRIORITY, the bound
// device, found in the run's host), and that setting an option never
// writes into an Options map the socket shares.
func TestSockOps_socketOptions(t *testing.T) {
	le := binary.LittleEndian
	host := sockHost(t)
	run := func(t *testing.T, src string, s *netenv.Socket) *progtype.Output {
		t.Helper()
		out, err := runProg(t, checked, mustKind(t, progtype.SockOps), mustParse(t, src), progtype.Input{Context: sockOpsCtx(4, 2, true, nil), Socket: s, Net: host}, 1)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	t.Run("mark", func(t *testing.T) {
		s := &netenv.Socket{Proto: "tcp"}
		out := run(t, sockoptProgram(progtype.SolSocket, progtype.SoMark, 5), s)
		if se, ge, v := sockoptResult(out); se != 0 || ge != 0 || v != 5 || s.Mark != 5 {
			t.Errorf("SO_MARK 5: set %d get %d value %d, socket mark %d", se, ge, v, s.Mark)
		}
		// The socket behind sk shows it.
		out = run(t, "r1 = *(u64 *)(r1 + 184)\nr0 = *(u32 *)(r1 + 16)\nexit", s)
		if out.Retval != 5 {
			t.Errorf("bpf_sock.mark %d, want 5", out.Retval)
		}
	})
	bind := func(name string) string {
		b := make([]byte, 8)
		copy(b, name)
		return fmt.Sprintf(`
			r6 = r1
			r2 = %d ll
			*(u64 *)(r10 - 8) = r2
			r1 = r6
			r2 = 1
			r3 = 25
			r4 = r10
			r4 += -8
			r5 = 8
			call 49
			*(u32 *)(r6 + 4) = r0
			r1 = r6
			r2 = 1
			r3 = 62
			r4 = r10
			r4 += -16
			r5 = 4
			call 57
			r0 = *(u32 *)(r10 - 16)
			exit`, int64(le.Uint64(b)))
	}
	for _, c := range []struct {
		name, dev string
		rc        int32
		index     uint32
		want      string
	}{
		{"host device", "eth0", 0, 2, "eth0"},
		{"loopback", "lo", 0, 1, "lo"},
		{"no such device", "eth9", -int32(maps.ENODEV), 0, ""},
		{"unbind", "", 0, 0, ""},
	} {
		t.Run("bindtodevice "+c.name, func(t *testing.T) {
			s := &netenv.Socket{Proto: "tcp", Dev: "lo"}
			if c.name == "no such device" {
				s.Dev = ""
			}
			out := run(t, bind(c.dev), s)
			if rc := int32(le.Uint32(out.Context[4:])); rc != c.rc || out.Retval != c.index || s.Dev != c.want {
				t.Errorf("SO_BINDTODEVICE %q: %d, SO_BINDTOIFINDEX %d, Dev %q; want %d, %d, %q", c.dev, rc, out.Retval, s.Dev, c.rc, c.index, c.want)
			}
		})
	}
	t.Run("bindtoifindex", func(t *testing.T) {
		// Linux does not check the index: one the host lacks is kept in
		// Options, with no device name.
		s := &netenv.Socket{Proto: "tcp"}
		out := run(t, sockoptProgram(progtype.SolSocket, progtype.SoBindToIfindex, 99), s)
		key := netenv.SockOpt{Level: progtype.SolSocket, Name: progtype.SoBindToIfindex}
		if se, _, v := sockoptResult(out); se != 0 || v != 99 || s.Dev != "" || s.Options[key] != 99 {
			t.Errorf("SO_BINDTOIFINDEX 99: set %d value %d, Dev %q, Options %v", se, v, s.Dev, s.Options)
		}
		out = run(t, sockoptProgram(progtype.SolSocket, progtype.SoBindToIfindex, 2), s)
		if _, _, v := sockoptResult(out); v != 2 || s.Dev != "eth0" || len(s.Options) != 0 {
			t.Errorf("SO_BINDTOIFINDEX 2: value %d, Dev %q, Options %v", v, s.Dev, s.Options)
		}
	})
	t.Run("copy on write", func(t *testing.T) {
		s := host.Socket(0)
		run(t, sockoptProgram(progtype.SolSocket, progtype.SoSndBuf, 10000), &s)
		key := netenv.SockOpt{Level: progtype.SolSocket, Name: progtype.SoSndBuf}
		if s.Options[key] != 20000 || host.Socket(0).Options[key] != 9000 {
			t.Errorf("SO_SNDBUF: the socket has %d (want 20000), the host's %d (want 9000)", s.Options[key], host.Socket(0).Options[key])
		}
	})
}

// TestCgroupRetval: bpf_get_retval reads 0 at the start of a run and then
// what bpf_set_retval set (an int: the low 32 bits), Output.CgroupRetval
// carries it out, and the next run starts from 0 again. Linux cannot
// test-run cgroup_sock, so this is against kernel/bpf/cgroup.c's code.
func TestCgroupRetval(t *testing.T) {
	k := mustKind(t, progtype.CgroupSock)
	if !k.Allowed(186) || !k.Allowed(187) {
		t.Fatal("cgroup/sock_create may not call bpf_get_retval and bpf_set_retval")
	}
	prog := mustParse(t, `
		call 186
		r6 = r0
		r1 = 0x7fffffff
		r1 <<= 4
		r1 |= 0xd
		call 187
		r7 = r0
		call 186
		r0 += r6
		r0 += r7
		exit`)
	for i := range 2 {
		out, err := runProg(t, checked, k, prog, progtype.Input{}, 1)
		if err != nil {
			t.Fatal(err)
		}
		// set_retval keeps 0x7fffffffd's low 32 bits, 0xfffffffd: -3.
		if out.Retval != 0xfffffffd || out.CgroupRetval != -3 {
			t.Errorf("run %d: r0 %#x, CgroupRetval %d; want 0xfffffffd, -3", i, out.Retval, out.CgroupRetval)
		}
	}
}
