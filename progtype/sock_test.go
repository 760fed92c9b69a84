package progtype_test

import (
	"errors"
	"testing"

	"github.com/waggle-bpf/waggle/progtype"
)

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
}
