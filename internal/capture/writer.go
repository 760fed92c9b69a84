package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"time"
)

// Resolution is the unit of a pcap capture's timestamps, which its magic
// number tells readers.
type Resolution uint8

const (
	// Microseconds is classic pcap's unit (magic a1b2c3d4).
	Microseconds Resolution = iota
	// Nanoseconds is the unit of nanosecond pcap (magic a1b23c4d), which
	// libpcap 1.5 and later read.
	Nanoseconds
)

// Writer writes a pcap capture, little-endian, with MaxPacket as its snap
// length: a 24-byte file header, then a record per packet.
//
//	file header: magic u32 │ major u16 = 2 │ minor u16 = 4 │ 0 u32 │ 0 u32 │ snaplen u32 │ link type u32
//	record:      seconds u32 │ fraction u32 │ captured length u32 │ length on the wire u32 │ bytes
//
// Writes are buffered: call Flush before closing what the Writer writes to.
// After an error of the underlying writer every call returns it again.
type Writer struct {
	w    *bufio.Writer
	nano bool
	hdr  [16]byte
	err  error // sticky
}

// NewWriter writes the file header of a pcap capture of link type
// linkType (such as LinkTypeEthernet) with timestamps in res to w.
func NewWriter(w io.Writer, linkType uint32, res Resolution) (*Writer, error) {
	if res > Nanoseconds {
		return nil, fmt.Errorf("pcap writer: resolution %d, want Microseconds or Nanoseconds", res)
	}
	cw := &Writer{w: bufio.NewWriterSize(w, 64<<10), nano: res == Nanoseconds}
	magic := uint32(0xa1b2c3d4)
	if cw.nano {
		magic = 0xa1b23c4d
	}
	le := binary.LittleEndian
	var hdr [24]byte
	le.PutUint32(hdr[0:], magic)
	le.PutUint16(hdr[4:], 2)
	le.PutUint16(hdr[6:], 4)
	le.PutUint32(hdr[16:], MaxPacket)
	le.PutUint32(hdr[20:], linkType)
	if _, err := cw.w.Write(hdr[:]); err != nil {
		return nil, fmt.Errorf("pcap file header: %w", err)
	}
	return cw, nil
}

// WritePacket writes one record: data, captured at ts, of length bytes on
// the wire. It refuses what a pcap record cannot hold or a reader would
// refuse: more than MaxPacket bytes, a length shorter than the data, a
// time before 1970 or after 2106 (32-bit seconds). The zero time is
// written as the epoch, as for packets captured without a timestamp.
func (w *Writer) WritePacket(ts time.Time, length int, data []byte) error {
	if w.err != nil {
		return w.err
	}
	if len(data) > MaxPacket {
		return fmt.Errorf("pcap record of %d bytes, more than %d (the largest packet libpcap reads)", len(data), MaxPacket)
	}
	if length < len(data) || uint64(length) > math.MaxUint32 {
		return fmt.Errorf("pcap record of %d bytes with a length on the wire of %d: want %d to %d", len(data), length, len(data), uint64(math.MaxUint32))
	}
	var sec, frac uint32
	if !ts.IsZero() {
		s := ts.Unix()
		if s < 0 || s > math.MaxUint32 {
			return fmt.Errorf("pcap record at %v: pcap's 32-bit seconds hold 1970 to 2106", ts)
		}
		sec, frac = uint32(s), uint32(ts.Nanosecond())
		if !w.nano {
			frac /= 1000
		}
	}
	le := binary.LittleEndian
	le.PutUint32(w.hdr[0:], sec)
	le.PutUint32(w.hdr[4:], frac)
	le.PutUint32(w.hdr[8:], uint32(len(data)))
	le.PutUint32(w.hdr[12:], uint32(length))
	if _, err := w.w.Write(w.hdr[:]); err != nil {
		w.err = fmt.Errorf("pcap record: %w", err)
		return w.err
	}
	if _, err := w.w.Write(data); err != nil {
		w.err = fmt.Errorf("pcap record: %w", err)
		return w.err
	}
	return nil
}

// Flush writes the buffered records to the underlying writer.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if err := w.w.Flush(); err != nil {
		w.err = fmt.Errorf("pcap: %w", err)
	}
	return w.err
}
