package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

const traffic = "../../examples/traffic/traffic.pcap"

// readAll returns the packets of a capture (copied) and the error that
// ended it (nil at io.EOF).
func readAll(tb testing.TB, b []byte) ([]Packet, error) {
	tb.Helper()
	r, err := NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	var out []Packet
	for {
		p, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		p.Data = bytes.Clone(p.Data)
		out = append(out, p)
	}
}

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// gopacketFrames reads a capture with gopacket's pcapgo, the reference.
func gopacketFrames(tb testing.TB, b []byte) ([][]byte, []gopacket.CaptureInfo) {
	tb.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	var frames [][]byte
	var infos []gopacket.CaptureInfo
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return frames, infos
		}
		if err != nil {
			tb.Fatal(err)
		}
		frames, infos = append(frames, data), append(infos, ci)
	}
}

// pcapng writes the frames as a pcapng capture with gopacket's writer.
func pcapng(tb testing.TB, frames [][]byte, infos []gopacket.CaptureInfo) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
	if err != nil {
		tb.Fatal(err)
	}
	for i, f := range frames {
		ci := infos[i]
		if err := w.WritePacket(ci, f); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// TestReader_formats: the bundled capture, and the same frames as pcapng,
// big-endian pcap and nanosecond pcap, read as gopacket reads them.
func TestReader_formats(t *testing.T) {
	orig := mustRead(t, traffic)
	frames, infos := gopacketFrames(t, orig)
	if len(frames) != 1000 {
		t.Fatalf("reference: %d frames", len(frames))
	}
	for _, tc := range []struct {
		name, format string
		data         []byte
	}{
		{"pcap", "pcap", orig},
		{"pcapng", "pcapng", pcapng(t, frames, infos)},
		{"big-endian pcap", "pcap", bigEndian(t, frames, infos, false)},
		{"nanosecond pcap", "pcap", bigEndian(t, frames, infos, true)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tc.data), int64(len(tc.data)))
			if err != nil {
				t.Fatal(err)
			}
			if r.Format() != tc.format {
				t.Errorf("format %s, want %s", r.Format(), tc.format)
			}
			got, err := readAll(t, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(frames) {
				t.Fatalf("%d packets, want %d", len(got), len(frames))
			}
			for i, p := range got {
				if !bytes.Equal(p.Data, frames[i]) || p.Length != infos[i].Length || !p.Timestamp.Equal(infos[i].Timestamp) || p.LinkType != LinkTypeEthernet {
					t.Fatalf("packet %d: %d bytes, length %d, %v, link %d; want %d bytes, %d, %v", i+1, len(p.Data), p.Length, p.Timestamp, p.LinkType, len(frames[i]), infos[i].Length, infos[i].Timestamp)
				}
			}
		})
	}
}

// bigEndian writes a big-endian pcap by hand (gopacket writes only the
// host's order), with micro- or nanosecond timestamps.
func bigEndian(tb testing.TB, frames [][]byte, infos []gopacket.CaptureInfo, nano bool) []byte {
	be := binary.BigEndian
	magic := uint32(0xa1b2c3d4)
	if nano {
		magic = 0xa1b23c4d
	}
	b := be.AppendUint32(nil, magic)
	b = be.AppendUint16(b, 2)
	b = be.AppendUint16(b, 4)
	b = be.AppendUint64(b, 0)
	b = be.AppendUint32(b, 65535)
	b = be.AppendUint32(b, LinkTypeEthernet)
	for i, f := range frames {
		ts := infos[i].Timestamp
		frac := uint32(ts.Nanosecond())
		if !nano {
			frac /= 1000
		}
		b = be.AppendUint32(b, uint32(ts.Unix()))
		b = be.AppendUint32(b, frac)
		b = be.AppendUint32(b, uint32(len(f)))
		b = be.AppendUint32(b, uint32(infos[i].Length))
		b = append(b, f...)
	}
	return b
}

// pcapRecord is a pcap record header for hostile captures.
func pcapRecord(caplen, length uint32) []byte {
	b := binary.LittleEndian.AppendUint64(nil, 0)
	b = binary.LittleEndian.AppendUint32(b, caplen)
	return binary.LittleEndian.AppendUint32(b, length)
}

// ngBlock is a little-endian pcapng block with a correct trailer.
func ngBlock(typ uint32, body []byte) []byte {
	le := binary.LittleEndian
	n := uint32(12 + len(body))
	b := le.AppendUint32(nil, typ)
	b = le.AppendUint32(b, n)
	b = append(b, body...)
	return le.AppendUint32(b, n)
}

var (
	ngSection = ngBlock(blockSectionHeader, []byte{0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	ngIface   = ngBlock(blockInterface, []byte{1, 0, 0, 0, 0, 0, 0, 0})
)

// ngEPB is an enhanced packet block of interface 0.
func ngEPB(caplen uint32, data []byte) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 0)
	b = le.AppendUint64(b, 0)
	b = le.AppendUint32(b, caplen)
	b = le.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return ngBlock(blockEnhanced, b)
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestReader_hostile: malformed and truncated captures end in an error
// naming the packet and what is wrong, after the packets before it, and
// never allocate what a header claims but the file does not hold.
func TestReader_hostile(t *testing.T) {
	orig := mustRead(t, traffic)
	frame := make([]byte, 60)
	frame[12], frame[13] = 0x08, 0x00
	for _, tc := range []struct {
		name    string
		data    []byte
		packets int    // read before the error
		want    string // in the error; "" for a clean end
		trunc   bool   // the error is ErrTruncated
	}{
		{"empty", nil, 0, "not a capture file: truncated", true},
		{"not a capture", []byte("\x7fELF\x02\x01\x01\x00"), 0, "not a pcap or pcapng file", false},
		{"pcap header cut", orig[:10], 0, "pcap file header: truncated", true},
		{"pcap version", concat(orig[:4], []byte{9, 0}, orig[6:24]), 0, "version 9.", false},
		{"4 GiB caplen", concat(orig[:24], pcapRecord(0xffffffff, 0xffffffff)), 0, "packet 1 (byte 24): the record claims 4294967295 captured bytes, more than 262144", false},
		{"caplen beyond the file", concat(orig[:24], pcapRecord(200000, 200000), frame), 0, "claims 200000 captured bytes, the file has 60 left", true},
		{"cut in a record header", orig[:24+16+213+5], 1, "packet 2 (byte 253): truncated: the record header has 5 of 16 bytes", true},
		{"cut mid-record", orig[:len(orig)-10], 999, "packet 1000", true},
		{"whole", orig, 1000, "", false},
		{"pcapng bad byte order", concat(ngBlock(blockSectionHeader, []byte{1, 2, 3, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})), 0, "byte-order magic", false},
		{"pcapng section too long", concat(ngSection[:4], []byte{0, 0, 0, 0x7f}, ngSection[8:]), 0, "claims", true},
		{"pcapng block length 8", concat(ngSection, ngIface, []byte{6, 0, 0, 0, 8, 0, 0, 0}), 0, "not a multiple of 4 of at least 12", false},
		{"pcapng block length odd", concat(ngSection, ngIface, []byte{6, 0, 0, 0, 13, 0, 0, 0, 0}), 0, "not a multiple of 4", false},
		{"pcapng 4 GiB block", concat(ngSection, ngIface, []byte{6, 0, 0, 0, 0xfc, 0xff, 0xff, 0xff}), 0, "claims 4294967292 bytes", true},
		{"pcapng caplen past the block", concat(ngSection, ngIface, ngEPB(4096, frame)), 0, "claims 4096 captured bytes in a block of", false},
		{"pcapng 4 GiB caplen", concat(ngSection, ngIface, ngEPB(0xffffffff, frame)), 0, "claims 4294967295 captured bytes", false},
		{"pcapng undeclared interface", concat(ngSection, ngEPB(60, frame)), 0, "packet of interface 0; the section describes 0", false},
		{"pcapng simple packet first", concat(ngSection, ngBlock(blockSimplePacket, concat([]byte{60, 0, 0, 0}, frame))), 0, "before any interface", false},
		{"pcapng trailer mismatch", concat(ngSection, ngIface, ngEPB(60, frame)[:len(ngEPB(60, frame))-4], []byte{1, 0, 0, 0}), 0, "at the start and 1 at the end", false},
		{"pcapng cut mid-block", concat(ngSection, ngIface, ngEPB(60, frame), ngEPB(60, frame)[:50]), 1, "packet 2", true},
		{"pcapng bad tsresol", concat(ngSection, ngBlock(blockInterface, []byte{1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 0, 0x7f, 0, 0, 0}), ngEPB(60, frame)), 0, "if_tsresol 0x7f", false},
		{"pcapng option past the block", concat(ngSection, ngBlock(blockInterface, []byte{1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0xff, 0}), ngEPB(60, frame)), 0, "runs past the block", false},
		{"pcapng good", concat(ngSection, ngIface, ngEPB(60, frame), ngBlock(0x1234, []byte{1, 2, 3, 4}), ngBlock(blockSimplePacket, concat([]byte{60, 0, 0, 0}, frame))), 2, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			got, err := readAll(t, tc.data)
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(4*len(tc.data))+1<<20 {
				t.Errorf("allocated %d bytes reading %d", alloc, len(tc.data))
			}
			if len(got) != tc.packets {
				t.Errorf("%d packets before the error, want %d", len(got), tc.packets)
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if errors.Is(err, ErrTruncated) != tc.trunc {
				t.Errorf("errors.Is(%v, ErrTruncated) = %v", err, !tc.trunc)
			}
		})
	}
}

// TestReader_sticky: after an error, Next keeps returning it.
func TestReader_sticky(t *testing.T) {
	orig := mustRead(t, traffic)
	b := orig[:24+16+10]
	r, err := NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	_, err1 := r.Next()
	_, err2 := r.Next()
	var e *Error
	if !errors.As(err1, &e) || e.Packet != 1 || e.Offset != 24 || err2 != err1 {
		t.Fatalf("errors %v, %v", err1, err2)
	}
}

// TestReader_unknownSize: without a size, a truncated record is still an
// error naming the packet (the allocation is bounded by MaxPacket).
func TestReader_unknownSize(t *testing.T) {
	orig := mustRead(t, traffic)
	b := orig[:len(orig)-3]
	r, err := NewReader(io.MultiReader(bytes.NewReader(b)), -1)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := r.Next()
		if err != nil {
			if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "packet 1000") {
				t.Fatalf("after %d packets: %v", n, err)
			}
			break
		}
		n++
	}
	if n != 999 || r.Packets() != 999 {
		t.Fatalf("%d packets", n)
	}
}

// TestReader_timestamps: pcapng interfaces with nanosecond and binary
// resolutions and an offset.
func TestReader_timestamps(t *testing.T) {
	le := binary.LittleEndian
	frame := make([]byte, 14)
	idb := func(opts ...byte) []byte {
		return ngBlock(blockInterface, concat([]byte{1, 0, 0, 0, 0, 0, 0, 0}, opts, []byte{0, 0, 0, 0}))
	}
	epb := func(id uint32, ts uint64) []byte {
		b := le.AppendUint32(nil, id)
		b = le.AppendUint32(b, uint32(ts>>32))
		b = le.AppendUint32(b, uint32(ts))
		b = le.AppendUint32(b, 14)
		b = le.AppendUint32(b, 14)
		b = append(b, frame...)
		b = append(b, 0, 0)
		return ngBlock(blockEnhanced, b)
	}
	data := concat(ngSection,
		idb(9, 0, 1, 0, 9, 0, 0, 0), // nanoseconds
		idb(9, 0, 1, 0, 0x80|10, 0, 0, 0, 14, 0, 8, 0, 100, 0, 0, 0, 0, 0, 0, 0), // 1/1024 s, +100 s
		epb(0, 1_500_000_000),
		epb(1, 3*1024+512),
	)
	got, err := readAll(t, data)
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Time{time.Unix(1, 5e8).UTC(), time.Unix(103, 5e8).UTC()}
	for i, p := range got {
		if !p.Timestamp.Equal(want[i]) || p.Interface != i {
			t.Errorf("packet %d: %v on interface %d, want %v", i+1, p.Timestamp, p.Interface, want[i])
		}
	}
}

func TestReadFile(t *testing.T) {
	frames, err := ReadFile("../../examples/traffic/traffic.pcap")
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 1000 {
		t.Fatalf("%d frames, want the bundled capture's 1000", len(frames))
	}
	if len(frames[0]) < 14 || &frames[0][0] == &frames[1][0] {
		t.Error("frames are not copies of their own")
	}
	if _, err := ReadFile("capture_test.go"); err == nil || !strings.Contains(err.Error(), "capture_test.go") {
		t.Errorf("a Go file read as a capture: %v", err)
	}
}
