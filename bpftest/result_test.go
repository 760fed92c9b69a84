package bpftest_test

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/waggle-bpf/waggle/bpftest"
)

func TestLog_String(t *testing.T) {
	for _, tc := range []struct {
		format string
		args   []uint64
		want   string
	}{
		{"plain", nil, "plain"},
		{"x.c:1: got %d, want %u\x00", []uint64{0xfffffffffffffffb, 0xfffffffffffffffb}, "x.c:1: got -5, want 4294967291"},
		{"%lld %llu", []uint64{0xfffffffffffffffb, 0xfffffffffffffffb}, "-5 18446744073709551611"},
		{"%x %lx %X", []uint64{0x1234567890ab, 0x1234567890ab, 0xab}, "567890ab 1234567890ab AB"},
		{"%hx %hhx %hd", []uint64{0x12345, 0x1ff, 0xffff}, "2345 ff -1"},
		{"%08x|%-4d|%+d|%#x", []uint64{0xbeef, 7, 7, 255}, "0000beef|7   |+7|0xff"},
		{"%p %c %%", []uint64{0xffff8880deadbeef, 'A'}, "0xffff8880deadbeef A %"},
		{"%ds", []uint64{3}, "3s"},
		{"%d and %d", []uint64{1}, "1 and %!d(MISSING)"},
		{"%s %q", []uint64{1, 2}, "%s %q"},
		{"trailing %", nil, "trailing %"},
		{"%zu %lu", []uint64{1 << 40, 1 << 40}, "1099511627776 1099511627776"},
	} {
		if got := (bpftest.Log{Format: tc.format, Args: tc.args}).String(); got != tc.want {
			t.Errorf("%q %v: got %q, want %q", tc.format, tc.args, got, tc.want)
		}
	}
}

// encode builds protobuf messages for the decoding tests.
type encode []byte

func (e encode) bytes(num protowire.Number, v []byte) encode {
	e = protowire.AppendTag(e, num, protowire.BytesType)
	return protowire.AppendBytes(e, v)
}

func (e encode) varint(num protowire.Number, v uint64) encode {
	e = protowire.AppendTag(e, num, protowire.VarintType)
	return protowire.AppendVarint(e, v)
}

func (e encode) fixed64(num protowire.Number, v uint64) encode {
	e = protowire.AppendTag(e, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(e, v)
}

func TestDecodeSuiteResult(t *testing.T) {
	log1 := encode{}.bytes(1, []byte("a.c:3: got %d\x00")).fixed64(2, 5)
	packed := binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 1), 2)
	log2 := encode{}.bytes(1, []byte("%d %d")).bytes(2, packed)
	rec := encode{}.bytes(1, []byte("first\x00")).varint(2, 102).bytes(3, log1).varint(9, 1) // field 9: unknown, skipped
	// Cilium's TEST() writes a record's length as a two-byte varint even
	// when one byte would do.
	long := append(encode{0x0a, 0x80 | byte(len(rec)), 0x00}, rec...)
	msg := encode{}.bytes(2, log2)
	msg = append(msg, long...)
	buf := make([]byte, 256) // the map value: the message, then zeros
	copy(buf, msg)
	got, err := bpftest.DecodeSuiteResult(buf)
	if err != nil {
		t.Fatal(err)
	}
	want := &bpftest.SuiteResult{
		Subtests: []bpftest.Subtest{{Name: "first", Status: bpftest.Fail, Logs: []bpftest.Log{{Format: "a.c:3: got %d", Args: []uint64{5}}}}},
		Logs:     []bpftest.Log{{Format: "%d %d", Args: []uint64{1, 2}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}

	empty, err := bpftest.DecodeSuiteResult(make([]byte, 64))
	if err != nil || len(empty.Subtests)+len(empty.Logs) != 0 {
		t.Errorf("zeros: %+v, %v", empty, err)
	}

	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"truncated record", encode{0x0a, 0x10, 0x0a}, "suite result at byte 0: field 1"},
		{"truncated varint tag", []byte{0x80}, "suite result at byte 0"},
		{"bad record", encode{}.bytes(1, []byte{0x0a, 0x05, 'a'}), "test result 0"},
		{"bad log", encode{}.bytes(2, []byte{0x11, 0x01}), "suite log"},
		{"packed args not 8-byte", encode{}.bytes(2, encode{}.bytes(2, []byte{1, 2, 3})), "not a multiple of 8"},
		// A message whose length overflows test_log()'s one byte: the
		// length reads as an unfinished varint.
		{"overlong log", append(encode{0x12, 0x90}, make([]byte, 8)...), "suite result at byte 0"},
	} {
		if _, err := bpftest.DecodeSuiteResult(tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func FuzzDecodeSuiteResult(f *testing.F) {
	f.Add([]byte{0x0a, 0x83, 0x00, 0x10, 0x65, 0x00})
	f.Add([]byte(encode{}.bytes(2, encode{}.bytes(1, []byte("%d")).fixed64(2, 1))))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := bpftest.DecodeSuiteResult(b)
		if err != nil {
			return
		}
		for _, st := range r.Subtests {
			for _, l := range st.Logs {
				_ = l.String()
			}
		}
		for _, l := range r.Logs {
			_ = l.String()
		}
	})
}

func TestStatus_String(t *testing.T) {
	for s, want := range map[bpftest.Status]string{
		bpftest.Pass: "PASS", bpftest.Fail: "FAIL", bpftest.Skip: "SKIP", bpftest.Error: "ERROR",
		bpftest.Unknown: "UNKNOWN", 7: "STATUS(7)",
	} {
		if got := s.String(); got != want {
			t.Errorf("%d: %q, want %q", int(s), got, want)
		}
	}
}
