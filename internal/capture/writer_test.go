package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// TestWriter_roundTrip: the bundled capture's frames written in either
// resolution read back the same with this package's reader and with
// gopacket's pcapgo, and the bytes are those pcapgo's writer writes.
func TestWriter_roundTrip(t *testing.T) {
	frames, infos := gopacketFrames(t, mustRead(t, traffic))
	// Timestamps with nanoseconds, which microsecond pcap rounds down.
	for i := range infos {
		infos[i].Timestamp = infos[i].Timestamp.Add(time.Duration(i*7919) % time.Microsecond)
		infos[i].Length = len(frames[i]) + i%3 // some cut short by the snap length
	}
	for _, tc := range []struct {
		name string
		res  Resolution
		unit time.Duration
		ref  func(io.Writer) *pcapgo.Writer
	}{
		{"microseconds", Microseconds, time.Microsecond, pcapgo.NewWriter},
		{"nanoseconds", Nanoseconds, time.Nanosecond, pcapgo.NewWriterNanos},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, LinkTypeEthernet, tc.res)
			if err != nil {
				t.Fatal(err)
			}
			for i, f := range frames {
				if err := w.WritePacket(infos[i].Timestamp, infos[i].Length, f); err != nil {
					t.Fatalf("packet %d: %v", i+1, err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}

			got, err := readAll(t, buf.Bytes())
			if err != nil || len(got) != len(frames) {
				t.Fatalf("read back %d packets, %v; want %d", len(got), err, len(frames))
			}
			r, err := pcapgo.NewReader(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if r.LinkType() != layers.LinkTypeEthernet || r.Snaplen() != MaxPacket {
				t.Errorf("pcapgo reads link type %v, snap length %d", r.LinkType(), r.Snaplen())
			}
			for i, p := range got {
				want := infos[i].Timestamp.Truncate(tc.unit)
				if !bytes.Equal(p.Data, frames[i]) || p.Length != infos[i].Length || !p.Timestamp.Equal(want) || p.LinkType != LinkTypeEthernet {
					t.Fatalf("packet %d: %d bytes, length %d, %v; want %d bytes, %d, %v", i+1, len(p.Data), p.Length, p.Timestamp, len(frames[i]), infos[i].Length, want)
				}
				data, ci, err := r.ReadPacketData()
				if err != nil || !bytes.Equal(data, frames[i]) || ci.Length != infos[i].Length || ci.CaptureLength != len(frames[i]) || !ci.Timestamp.Equal(want) {
					t.Fatalf("pcapgo: packet %d: %d bytes, %+v, %v", i+1, len(data), ci, err)
				}
			}
			if _, _, err := r.ReadPacketData(); err != io.EOF {
				t.Errorf("pcapgo after the last packet: %v", err)
			}

			// pcapgo writes the host's byte order, this writer little-endian:
			// on a little-endian host the bytes are the same.
			if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
				var ref bytes.Buffer
				rw := tc.ref(&ref)
				if err := rw.WriteFileHeader(MaxPacket, layers.LinkTypeEthernet); err != nil {
					t.Fatal(err)
				}
				for i, f := range frames {
					ci := gopacket.CaptureInfo{Timestamp: infos[i].Timestamp, CaptureLength: len(f), Length: infos[i].Length}
					if err := rw.WritePacket(ci, f); err != nil {
						t.Fatal(err)
					}
				}
				if !bytes.Equal(buf.Bytes(), ref.Bytes()) {
					t.Errorf("%d bytes differ from pcapgo's %d", buf.Len(), ref.Len())
				}
			}
		})
	}
}

// TestWriter_refuses: records a pcap cannot hold are errors, and nothing
// is written for them.
func TestWriter_refuses(t *testing.T) {
	frame := make([]byte, 60)
	for _, tc := range []struct {
		name   string
		ts     time.Time
		length int
		data   []byte
		want   string
	}{
		{"too large", time.Unix(1, 0), MaxPacket + 1, make([]byte, MaxPacket+1), "more than 262144"},
		{"length shorter than data", time.Unix(1, 0), 59, frame, "length on the wire of 59"},
		{"negative length", time.Unix(1, 0), -1, frame, "length on the wire of -1"},
		{"before 1970", time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), 60, frame, "1970 to 2106"},
		{"after 2106", time.Date(2106, 2, 8, 0, 0, 0, 0, time.UTC), 60, frame, "1970 to 2106"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, LinkTypeEthernet, Nanoseconds)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WritePacket(tc.ts, tc.length, tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			// The writer goes on: a good record after the refused one.
			if err := w.WritePacket(time.Unix(5, 6), 60, frame); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			got, err := readAll(t, buf.Bytes())
			if err != nil || len(got) != 1 || !got[0].Timestamp.Equal(time.Unix(5, 6)) {
				t.Fatalf("read back %+v, %v; want the one good record", got, err)
			}
		})
	}
	if _, err := NewWriter(io.Discard, LinkTypeEthernet, Nanoseconds+1); err == nil {
		t.Error("NewWriter took resolution 2")
	}
}

// TestWriter_zeroTime: a packet without a timestamp is written at the
// epoch.
func TestWriter_zeroTime(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, LinkTypeEthernet, Microseconds)
	if err := w.WritePacket(time.Time{}, 60, make([]byte, 60)); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	got, err := readAll(t, buf.Bytes())
	if err != nil || len(got) != 1 || got[0].Timestamp.Unix() != 0 || got[0].Timestamp.Nanosecond() != 0 {
		t.Fatalf("read back %+v, %v", got, err)
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(b []byte) (int, error) {
	if f.n += len(b); f.n > 100 {
		return 0, errors.New("disk full")
	}
	return len(b), nil
}

// TestWriter_stickyError: once the underlying writer failed, every call
// returns its error.
func TestWriter_stickyError(t *testing.T) {
	w, err := NewWriter(&failWriter{}, LinkTypeEthernet, Microseconds)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 70<<10) // more than the buffer: written through
	if err := w.WritePacket(time.Unix(1, 0), len(big), big); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("write: %v", err)
	}
	if err := w.WritePacket(time.Unix(1, 0), 60, big[:60]); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("write after the error: %v", err)
	}
	if err := w.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("flush after the error: %v", err)
	}
}

func TestLinkTypeName(t *testing.T) {
	for lt, want := range map[uint32]string{1: "1 (ETHERNET)", 113: "113 (LINUX_SLL)", 276: "276 (LINUX_SLL2)", 4242: "4242"} {
		if got := LinkTypeName(lt); got != want {
			t.Errorf("LinkTypeName(%d) = %q, want %q", lt, got, want)
		}
	}
}

func ExampleWriter() {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, LinkTypeEthernet, Nanoseconds)
	if err != nil {
		panic(err)
	}
	frame := make([]byte, 60)
	if err := w.WritePacket(time.Unix(1700000000, 123456789), len(frame), frame); err != nil {
		panic(err)
	}
	if err := w.Flush(); err != nil {
		panic(err)
	}
	r, _ := NewReader(&buf, int64(buf.Len()))
	p, _ := r.Next()
	fmt.Println(r.Format(), len(p.Data), p.Timestamp.UnixNano(), LinkTypeName(p.LinkType))
	// Output: pcap 60 1700000000123456789 1 (ETHERNET)
}
