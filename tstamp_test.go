package waggle_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/tstamp/tstamp.c -o testdata/tstamp/tstamp.o

const tstampObject = "testdata/tstamp/tstamp.o"

// TestSkbSetTstamp sets packets' times with bpf_skb_set_tstamp on each
// clock, with times 0 and not 0, on IPv4, IPv6 and ARP packets, in waggle
// and as root in Linux: the answer, the tstamp_type read back and the
// tstamp in ctx_out must be the same.
func TestSkbSetTstamp(t *testing.T) {
	frame := func(ethType uint16) []byte {
		f := make([]byte, 64)
		binary.BigEndian.PutUint16(f[12:], ethType)
		f[14] = 0x45 // an IPv4 header's first byte; harmless for the others
		return f
	}
	cases := []struct {
		name              string
		clock, sec, nsec  uint32
		ethType           uint16
		wantRet, wantType int32
		wantTstamp        uint64
	}{
		{"realtime 0", 0, 0, 0, 0x0800, 0, 0, 0},
		{"realtime", 0, 5, 7, 0x0800, 0, 0, 5e9 + 7},
		{"monotonic 0", 1, 0, 0, 0x0800, -22, 0, 0},
		{"monotonic ipv6", 1, 3, 0, 0x86dd, 0, 1, 3e9},
		{"tai", 2, 9, 1, 0x0800, 0, 2, 9e9 + 1},
		{"tai 0", 2, 0, 0, 0x86dd, -22, 0, 0},
		{"unknown clock", 3, 1, 0, 0x0800, -22, 0, 0},
		{"arp", 1, 1, 0, 0x0806, -95, 0, 0},
	}
	coll, err := waggle.LoadCollection(tstampObject, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	type result struct {
		ret    uint32
		data   []byte
		ctxOut []byte
	}
	ctxFor := func(clock, sec, nsec uint32) []byte {
		ctx := make([]byte, 192)
		binary.LittleEndian.PutUint32(ctx[48:], clock) // cb[0]
		binary.LittleEndian.PutUint32(ctx[52:], sec)
		binary.LittleEndian.PutUint32(ctx[56:], nsec)
		return ctx
	}
	mine := make([]result, len(cases))
	for i, c := range cases {
		r := result{data: make([]byte, 64), ctxOut: make([]byte, 192)}
		ret, err := coll.Programs["set_tstamp"].Run(&waggle.RunOptions{Data: frame(c.ethType), DataOut: r.data,
			Context: ctxFor(c.clock, c.sec, c.nsec), ContextOut: r.ctxOut})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		r.ret = ret
		mine[i] = r
		cb := r.ctxOut[48:]
		gotRet, gotType := int32(binary.LittleEndian.Uint32(cb)), int32(binary.LittleEndian.Uint32(cb[4:]))
		gotTstamp := uint64(binary.LittleEndian.Uint32(cb[8:]))<<32 | uint64(binary.LittleEndian.Uint32(cb[12:]))
		if gotRet != c.wantRet || gotType != c.wantType || gotTstamp != c.wantTstamp {
			t.Errorf("%s: returned %d, tstamp_type %d, tstamp %d; want %d, %d, %d", c.name, gotRet, gotType, gotTstamp, c.wantRet, c.wantType, c.wantTstamp)
		}
	}

	kc := kernelCollection(t, tstampObject, "set_tstamp")
	for i, c := range cases {
		r := result{data: make([]byte, 64), ctxOut: make([]byte, 192)}
		ret, err := kc.Programs["set_tstamp"].Run(&ebpf.RunOptions{Data: frame(c.ethType), DataOut: r.data,
			Context: ctxFor(c.clock, c.sec, c.nsec), ContextOut: r.ctxOut})
		if err != nil {
			t.Fatalf("kernel: %s: %v", c.name, err)
		}
		r.ret = ret
		if r.ret != mine[i].ret || !bytes.Equal(r.data, mine[i].data) || !bytes.Equal(r.ctxOut, mine[i].ctxOut) {
			t.Errorf("%s:\nwaggle %d % x\nkernel %d % x", c.name, mine[i].ret, mine[i].ctxOut, r.ret, r.ctxOut)
		}
	}
}
