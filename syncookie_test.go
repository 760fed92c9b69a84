package waggle_test

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/syncookie/syncookie.c -o testdata/syncookie/syncookie.o

const syncookieObject = "testdata/syncookie/syncookie.o"

// thLenDoff is syncookie.c's TH_LEN_DOFF: the TCP header's own length.
const thLenDoff = 0xff

// cookieFrame is an Ethernet frame with an IPv4 or IPv6 header and a TCP
// SYN (seq 1000, ports 40000 to 80) with opts, padded to 60 bytes of TCP
// header and more, as syncookie.c wants.
func cookieFrame(v6 bool, opts ...byte) []byte {
	f := make([]byte, 14)
	var ip []byte
	if v6 {
		binary.BigEndian.PutUint16(f[12:], 0x86dd)
		ip = make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(20+len(opts)))
		ip[6], ip[7] = 6, 64
		copy(ip[8:], []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
		copy(ip[24:], []byte{0x20, 0x01, 0x0d, 0xb8, 15: 2})
	} else {
		binary.BigEndian.PutUint16(f[12:], 0x0800)
		ip = make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(40+len(opts)))
		ip[8], ip[9] = 64, 6
		copy(ip[12:], []byte{192, 0, 2, 1, 198, 51, 100, 7})
	}
	th := make([]byte, 20+len(opts))
	binary.BigEndian.PutUint16(th[0:], 40000)
	binary.BigEndian.PutUint16(th[2:], 80)
	binary.BigEndian.PutUint32(th[4:], 1000)
	th[12] = byte(len(th)/4) << 4
	th[13] = 0x02
	copy(th[20:], opts)
	f = append(append(f, ip...), th...)
	return append(f, make([]byte, 64)...)
}

// TestSyncookie_kernel runs the SYN cookie helpers in waggle and, as root,
// in Linux, on SYNs with various MSS options and TCP header lengths: the
// errors, the MSS a cookie encodes (bits 32-47 of gen's result), and
// whether the answering ACK and a forged one check must be the same. The
// cookies themselves differ: each side has its own secret. out[1] == 0 on
// the kernel's side is the kernel's own gen→check round trip.
func TestSyncookie_kernel(t *testing.T) {
	mss := func(m uint16) []byte { return []byte{2, 4, byte(m >> 8), byte(m)} }
	for _, tc := range []struct {
		name  string
		v6    bool
		opts  []byte
		thLen uint32
		mss   int64 // want; 0: an error
	}{
		{"v4 mss 1460", false, mss(1460), thLenDoff, 1460},
		{"v4 mss 1400", false, mss(1400), thLenDoff, 1300},
		{"v4 mss 100", false, mss(100), thLenDoff, 536},
		{"v4 no options", false, nil, thLenDoff, 536},
		{"v4 nop nop mss", false, append([]byte{1, 1}, append(mss(1440), 0, 0)...), thLenDoff, 1440},
		{"v4 eol then mss", false, append([]byte{0, 0, 0, 0}, mss(1460)...), thLenDoff, 536},
		{"v4 partial option", false, []byte{1, 1, 2, 8}, thLenDoff, 536},
		{"v4 th_len 0", false, nil, 0, 0},
		{"v4 th_len 19", false, nil, 19, 0},
		{"v4 th_len 20, doff 6", false, mss(1460), 20, 0},
		{"v4 th_len 28, doff 6", false, mss(1460), 28, 0},
		{"v4 th_len 24 of 20", false, nil, 24, 0},
		{"v6 mss 9000", true, mss(9000), thLenDoff, 8940},
		{"v6 mss 1460", true, mss(1460), thLenDoff, 1440},
		{"v6 no options", true, nil, thLenDoff, 1220},
		{"v6 th_len 0", true, nil, 0, 0},
		{"v6 th_len 24 of 20", true, nil, 24, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mine := runSyncookie(t, tc.v6, tc.opts, tc.thLen, false)
			if tc.mss == 0 {
				if mine[0] != -22 {
					t.Errorf("waggle: gen = %d, want -EINVAL", mine[0])
				}
			} else if mine[0] < 0 || mine[0]>>32 != tc.mss || mine[1] != 0 || mine[2] != -13 {
				t.Errorf("waggle: gen %#x (MSS %d), check %d, forged %d; want MSS %d, 0, -EACCES", mine[0], mine[0]>>32, mine[1], mine[2], tc.mss)
			}
			theirs := runSyncookie(t, tc.v6, tc.opts, tc.thLen, true)
			if mine[0] >= 0 && theirs[0] >= 0 {
				mine[0] >>= 32 // the MSS; the cookies' secrets differ
				theirs[0] >>= 32
			}
			if mine != theirs {
				t.Errorf("waggle %v, kernel %v", mine, theirs)
			}
		})
	}
}

// runSyncookie runs syncookie.c's program in waggle or in the kernel and
// returns its out map.
func runSyncookie(t *testing.T, v6 bool, opts []byte, thLen uint32, inKernel bool) [3]int64 {
	t.Helper()
	frame := cookieFrame(v6, opts...)
	var got [3]int64
	if inKernel {
		kc := kernelCollection(t, syncookieObject, "cookie")
		if err := kc.Maps["cfg"].Put(uint32(0), thLen); err != nil {
			t.Fatal(err)
		}
		if ret, err := kc.Programs["cookie"].Run(&ebpf.RunOptions{Data: frame}); err != nil || ret != 2 {
			t.Fatalf("kernel: %d, %v", ret, err)
		}
		for i := range got {
			if err := kc.Maps["out"].Lookup(uint32(i), &got[i]); err != nil {
				t.Fatal(err)
			}
		}
		return got
	}
	coll, err := waggle.LoadCollection(syncookieObject, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	if err := coll.Maps["cfg"].Put(uint32(0), thLen); err != nil {
		t.Fatal(err)
	}
	if ret, err := coll.Programs["cookie"].Run(&waggle.RunOptions{Data: frame}); err != nil || ret != 2 {
		t.Fatalf("waggle: %d, %v", ret, err)
	}
	for i := range got {
		if err := coll.Maps["out"].Lookup(uint32(i), &got[i]); err != nil {
			t.Fatal(err)
		}
	}
	return got
}
