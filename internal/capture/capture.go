package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"time"
)

// MaxPacket is the largest record the reader accepts: libpcap's
// MAXIMUM_SNAPLEN (pcap-int.h), the bound tcpdump and Wireshark read with.
const MaxPacket = 262144

// maxMetaBlock bounds the pcapng blocks the reader parses whole (section
// headers and interface descriptions, which hold only options).
const maxMetaBlock = 1 << 20

// Link types (LINKTYPE_* of the tcpdump.org registry) that callers check.
const (
	LinkTypeEthernet = 1
)

// ErrTruncated is the cause of an *Error for a capture that ends inside a
// record or block.
var ErrTruncated = errors.New("truncated")

// Error is a capture that cannot be read further: the packet it broke at
// (counting from 1, the number Wireshark and tcpdump give it) and the byte
// offset of its record or block.
type Error struct {
	Packet int
	Offset int64
	Err    error
}

func (e *Error) Error() string {
	return fmt.Sprintf("packet %d (byte %d): %v", e.Packet, e.Offset, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Packet is one record of a capture.
type Packet struct {
	// Data is the captured bytes. It is valid until the next call of Next.
	Data []byte
	// Length is the packet's length on the wire (at least len(Data) in a
	// well-formed capture; the reader reports what the file says).
	Length    int
	Timestamp time.Time
	// LinkType is the link-layer header type of the file (pcap) or of the
	// packet's interface (pcapng), such as LinkTypeEthernet.
	LinkType uint32
	// Interface is the pcapng interface index (0 for pcap).
	Interface int
}

// Reader reads packets from a pcap or pcapng capture.
type Reader struct {
	r       *bufio.Reader
	off     int64 // bytes consumed
	size    int64 // the capture's size, -1 if unknown
	order   binary.ByteOrder
	ng      bool
	packets int // packets returned so far
	buf     []byte
	err     error // sticky: once broken, a reader stays broken

	// pcap
	nano     bool
	linkType uint32

	// pcapng: the interfaces of the current section
	ifaces []iface
}

type iface struct {
	linkType uint32
	snaplen  uint32
	perSec   uint64 // timestamp units per second (if_tsresol)
	offset   int64  // seconds added to every timestamp (if_tsoffset)
}

// NewReader reads the header of the capture r holds. size is its length in
// bytes if known (a file's size), -1 otherwise; with it, no record larger
// than what is left of the capture is ever allocated.
func NewReader(r io.Reader, size int64) (*Reader, error) {
	cr := &Reader{r: bufio.NewReaderSize(r, 64<<10), size: size}
	var magic [4]byte
	if err := cr.full(magic[:]); err != nil {
		return nil, fmt.Errorf("not a capture file: %w", eofIsTruncated(err))
	}
	switch {
	case magic == [4]byte{0x0a, 0x0d, 0x0d, 0x0a}:
		cr.ng = true
		if err := cr.sectionHeader(0); err != nil {
			return nil, fmt.Errorf("pcapng section header: %w", err)
		}
		return cr, nil
	case binary.LittleEndian.Uint32(magic[:]) == 0xa1b2c3d4:
		cr.order = binary.LittleEndian
	case binary.BigEndian.Uint32(magic[:]) == 0xa1b2c3d4:
		cr.order = binary.BigEndian
	case binary.LittleEndian.Uint32(magic[:]) == 0xa1b23c4d:
		cr.order, cr.nano = binary.LittleEndian, true
	case binary.BigEndian.Uint32(magic[:]) == 0xa1b23c4d:
		cr.order, cr.nano = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("not a pcap or pcapng file (it starts % x)", magic)
	}
	var hdr [20]byte
	if err := cr.full(hdr[:]); err != nil {
		return nil, fmt.Errorf("pcap file header: %w", eofIsTruncated(err))
	}
	if major := cr.order.Uint16(hdr[0:]); major != 2 {
		return nil, fmt.Errorf("pcap file header: version %d.%d, want 2.x", major, cr.order.Uint16(hdr[2:]))
	}
	// The link type's upper bits carry the FCS length (LT_LINKTYPE in
	// libpcap's pcap-common.h).
	cr.linkType = cr.order.Uint32(hdr[16:]) & 0x03ffffff
	return cr, nil
}

// Format is "pcap" or "pcapng".
func (r *Reader) Format() string {
	if r.ng {
		return "pcapng"
	}
	return "pcap"
}

// Packets is the number of packets Next has returned.
func (r *Reader) Packets() int { return r.packets }

// Next returns the next packet, io.EOF after the last one, or an *Error
// when the capture is malformed or cut short. After an error every call
// returns it again.
func (r *Reader) Next() (Packet, error) {
	if r.err != nil {
		return Packet{}, r.err
	}
	start := r.off
	var p Packet
	var err error
	if r.ng {
		p, err = r.nextBlock()
	} else {
		p, err = r.nextRecord()
	}
	switch {
	case err == io.EOF:
		r.err = io.EOF
	case err != nil:
		var e *Error
		if !errors.As(err, &e) {
			err = &Error{Packet: r.packets + 1, Offset: start, Err: err}
		}
		r.err = err
	default:
		r.packets++
	}
	return p, err
}

// nextRecord reads a pcap record: a 16-byte header (seconds, fraction,
// captured length, length on the wire) and the captured bytes.
func (r *Reader) nextRecord() (Packet, error) {
	var hdr [16]byte
	n, err := io.ReadFull(r.r, hdr[:])
	r.off += int64(n)
	switch {
	case n == 0 && err == io.EOF:
		return Packet{}, io.EOF
	case err != nil:
		return Packet{}, fmt.Errorf("%w: the record header has %d of 16 bytes", ErrTruncated, n)
	}
	caplen := r.order.Uint32(hdr[8:])
	data, err := r.data(caplen, "the record")
	if err != nil {
		return Packet{}, err
	}
	frac := time.Duration(r.order.Uint32(hdr[4:]))
	if !r.nano {
		frac *= time.Microsecond
	}
	return Packet{
		Data:      data,
		Length:    int(min(r.order.Uint32(hdr[12:]), 1<<31-1)),
		Timestamp: time.Unix(int64(r.order.Uint32(hdr[0:])), int64(frac)).UTC(),
		LinkType:  r.linkType,
	}, nil
}

// data reads n bytes of packet data into the reader's buffer, after
// checking n against MaxPacket and what is left of the capture: nothing is
// allocated for a length the file cannot hold.
func (r *Reader) data(n uint32, what string) ([]byte, error) {
	if n > MaxPacket {
		return nil, fmt.Errorf("%s claims %d captured bytes, more than %d (the largest packet libpcap reads)", what, n, MaxPacket)
	}
	if left := r.left(); left >= 0 && int64(n) > left {
		return nil, fmt.Errorf("%w: %s claims %d captured bytes, the file has %d left", ErrTruncated, what, n, left)
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n)
	}
	b := r.buf[:n]
	got, err := io.ReadFull(r.r, b)
	r.off += int64(got)
	if err != nil {
		return nil, fmt.Errorf("%w: %s claims %d captured bytes, the file has %d", ErrTruncated, what, n, got)
	}
	return b, nil
}

// left is what remains of the capture after the bytes consumed, -1 if
// the size is unknown.
func (r *Reader) left() int64 {
	if r.size < 0 {
		return -1
	}
	return max(r.size-r.off, 0)
}

// full reads len(b) bytes.
func (r *Reader) full(b []byte) error {
	n, err := io.ReadFull(r.r, b)
	r.off += int64(n)
	return err
}

// skip discards n bytes.
func (r *Reader) skip(n int64) error {
	for n > 0 {
		step := int(min(n, 1<<20))
		got, err := r.r.Discard(step)
		r.off += int64(got)
		n -= int64(got)
		if err != nil {
			return err
		}
	}
	return nil
}

func eofIsTruncated(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return ErrTruncated
	}
	return err
}

// pcapng block types (draft-ietf-opsawg-pcapng).
const (
	blockSectionHeader = 0x0a0d0d0a
	blockInterface     = 0x00000001
	blockPacket        = 0x00000002 // obsolete
	blockSimplePacket  = 0x00000003
	blockEnhanced      = 0x00000006
	byteOrderMagic     = 0x1a2b3c4d
)

// nextBlock reads pcapng blocks until a packet.
//
//	┌──────────┬──────────────┬───────────────────┬──────────────┐
//	│ type u32 │ total len u32│ body (padded to 4)│ total len u32│
//	└──────────┴──────────────┴───────────────────┴──────────────┘
func (r *Reader) nextBlock() (Packet, error) {
	for {
		start := r.off
		var hdr [8]byte
		n, err := io.ReadFull(r.r, hdr[:])
		r.off += int64(n)
		switch {
		case n == 0 && err == io.EOF:
			return Packet{}, io.EOF
		case err != nil:
			return Packet{}, fmt.Errorf("%w: the block header has %d of 8 bytes", ErrTruncated, n)
		}
		if binary.LittleEndian.Uint32(hdr[:]) == blockSectionHeader {
			if err := r.sectionHeader(start); err != nil {
				return Packet{}, err
			}
			continue
		}
		typ, length := r.order.Uint32(hdr[0:]), r.order.Uint32(hdr[4:])
		body, err := r.blockBody(typ, length, 8)
		if err != nil {
			return Packet{}, err
		}
		p, ok, err := r.block(typ, body)
		if err != nil {
			return Packet{}, err
		}
		if ok {
			return p, nil
		}
	}
}

// blockBody checks a block's length, of which read bytes are consumed,
// and returns its body length (without the type and the two length
// fields).
func (r *Reader) blockBody(typ, length uint32, read int64) (int64, error) {
	if length < 12 || length%4 != 0 {
		return 0, fmt.Errorf("block type %#x has length %d: not a multiple of 4 of at least 12", typ, length)
	}
	if left := r.left(); left >= 0 && int64(length)-read > left {
		return 0, fmt.Errorf("%w: block type %#x claims %d bytes, the file has %d left", ErrTruncated, typ, length, left+read)
	}
	return int64(length) - 12, nil
}

// trailer reads and checks the length at a block's end.
func (r *Reader) trailer(typ uint32, length int64) error {
	var b [4]byte
	if err := r.full(b[:]); err != nil {
		return fmt.Errorf("block type %#x: %w", typ, eofIsTruncated(err))
	}
	if got := r.order.Uint32(b[:]); int64(got) != length+12 {
		return fmt.Errorf("block type %#x: its length is %d at the start and %d at the end", typ, length+12, got)
	}
	return nil
}

// block handles one block other than a section header; ok reports a
// packet.
func (r *Reader) block(typ uint32, body int64) (p Packet, ok bool, err error) {
	switch typ {
	case blockInterface:
		b, err := r.meta(typ, body)
		if err != nil {
			return p, false, err
		}
		if err := r.interfaceBlock(b); err != nil {
			return p, false, err
		}
	case blockEnhanced, blockPacket:
		p, err = r.packetBlock(typ, body)
		if err != nil {
			return p, false, err
		}
		ok = true
	case blockSimplePacket:
		p, err = r.simplePacket(body)
		if err != nil {
			return p, false, err
		}
		ok = true
	default:
		if err := r.skip(body); err != nil {
			return p, false, fmt.Errorf("block type %#x: %w", typ, eofIsTruncated(err))
		}
	}
	return p, ok, r.trailer(typ, body)
}

// meta reads the body of a block parsed whole.
func (r *Reader) meta(typ uint32, body int64) ([]byte, error) {
	if body > maxMetaBlock {
		return nil, fmt.Errorf("block type %#x holds %d bytes, more than the %d a header block may", typ, body, maxMetaBlock)
	}
	b := make([]byte, body)
	if err := r.full(b); err != nil {
		return nil, fmt.Errorf("block type %#x: %w", typ, eofIsTruncated(err))
	}
	return b, nil
}

// sectionHeader reads a section header block after its type: the length,
// the byte-order magic (which fixes the byte order of the section), the
// version, the section length and options. It starts a new interface list.
func (r *Reader) sectionHeader(start int64) error {
	var b [8]byte
	if err := r.full(b[:]); err != nil {
		return fmt.Errorf("section header at byte %d: %w", start, eofIsTruncated(err))
	}
	switch {
	case binary.LittleEndian.Uint32(b[4:]) == byteOrderMagic:
		r.order = binary.LittleEndian
	case binary.BigEndian.Uint32(b[4:]) == byteOrderMagic:
		r.order = binary.BigEndian
	default:
		return fmt.Errorf("section header at byte %d: byte-order magic is % x, want 1a2b3c4d in either order", start, b[4:])
	}
	length := r.order.Uint32(b[:])
	body, err := r.blockBody(blockSectionHeader, length, 12)
	if err != nil {
		return err
	}
	if body < 4+8 {
		return fmt.Errorf("section header at byte %d: length %d is too short", start, length)
	}
	rest, err := r.meta(blockSectionHeader, body-4)
	if err != nil {
		return err
	}
	if major := r.order.Uint16(rest); major != 1 {
		return fmt.Errorf("section header at byte %d: version %d.%d, want 1.x", start, major, r.order.Uint16(rest[2:]))
	}
	r.ifaces = r.ifaces[:0]
	return r.trailer(blockSectionHeader, body)
}

// interfaceBlock reads an interface description: link type, snap length
// and the timestamp options.
func (r *Reader) interfaceBlock(b []byte) error {
	if len(b) < 8 {
		return fmt.Errorf("interface description of %d bytes, want at least 8", len(b))
	}
	if len(r.ifaces) >= 1<<16 {
		return fmt.Errorf("more than %d interfaces in one section", 1<<16)
	}
	ifc := iface{linkType: uint32(r.order.Uint16(b)), snaplen: r.order.Uint32(b[4:]), perSec: 1e6}
	err := r.options(b[8:], func(code uint16, v []byte) error {
		switch code {
		case 9: // if_tsresol
			if len(v) != 1 {
				return fmt.Errorf("if_tsresol of %d bytes, want 1", len(v))
			}
			per, ok := resolution(v[0])
			if !ok {
				return fmt.Errorf("if_tsresol %#x: finer than the nanoseconds Go keeps", v[0])
			}
			ifc.perSec = per
		case 14: // if_tsoffset
			if len(v) != 8 {
				return fmt.Errorf("if_tsoffset of %d bytes, want 8", len(v))
			}
			ifc.offset = int64(r.order.Uint64(v))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("interface %d: %w", len(r.ifaces), err)
	}
	r.ifaces = append(r.ifaces, ifc)
	return nil
}

// resolution is the number of timestamp units per second if_tsresol
// gives: 10^-v, or 2^-(v&0x7f) with the top bit set.
func resolution(v byte) (uint64, bool) {
	if v&0x80 != 0 {
		if v&0x7f > 63 {
			return 0, false
		}
		return 1 << (v & 0x7f), true
	}
	if v > 19 {
		return 0, false
	}
	per := uint64(1)
	for range v {
		per *= 10
	}
	return per, true
}

// options walks a pcapng option list: code, length, value padded to 4.
func (r *Reader) options(b []byte, f func(code uint16, v []byte) error) error {
	for len(b) >= 4 {
		code, n := r.order.Uint16(b), int(r.order.Uint16(b[2:]))
		if code == 0 { // opt_endofopt
			return nil
		}
		b = b[4:]
		if n > len(b) {
			return fmt.Errorf("option %d of %d bytes runs past the block", code, n)
		}
		if err := f(code, b[:n]); err != nil {
			return err
		}
		b = b[min((n+3)&^3, len(b)):]
	}
	return nil
}

// packetBlock reads an enhanced packet block (or the obsolete packet
// block, whose interface id is 16 bits followed by a drop count):
// interface, timestamp (high, low), captured length, length, data.
func (r *Reader) packetBlock(typ uint32, body int64) (Packet, error) {
	var h [20]byte
	if body < int64(len(h)) {
		return Packet{}, fmt.Errorf("packet block of %d bytes, want at least %d", body, len(h))
	}
	if err := r.full(h[:]); err != nil {
		return Packet{}, eofIsTruncated(err)
	}
	id := r.order.Uint32(h[0:])
	if typ == blockPacket {
		id = uint32(r.order.Uint16(h[0:]))
	}
	if uint64(id) >= uint64(len(r.ifaces)) {
		return Packet{}, fmt.Errorf("packet of interface %d; the section describes %d", id, len(r.ifaces))
	}
	ifc := r.ifaces[id]
	caplen := r.order.Uint32(h[12:])
	if int64(caplen) > body-int64(len(h)) {
		return Packet{}, fmt.Errorf("packet block claims %d captured bytes in a block of %d", caplen, body+12)
	}
	data, err := r.data(caplen, "the packet block")
	if err != nil {
		return Packet{}, err
	}
	if err := r.skip(body - int64(len(h)) - int64(caplen)); err != nil {
		return Packet{}, eofIsTruncated(err)
	}
	ts := uint64(r.order.Uint32(h[4:]))<<32 | uint64(r.order.Uint32(h[8:]))
	return Packet{
		Data:      data,
		Length:    int(min(r.order.Uint32(h[16:]), 1<<31-1)),
		Timestamp: ifc.time(ts),
		LinkType:  ifc.linkType,
		Interface: int(id),
	}, nil
}

// simplePacket reads a simple packet block: the length on the wire, then
// as much of the packet as the block and interface 0's snap length hold.
func (r *Reader) simplePacket(body int64) (Packet, error) {
	if len(r.ifaces) == 0 {
		return Packet{}, errors.New("simple packet block before any interface description")
	}
	var h [4]byte
	if body < 4 {
		return Packet{}, fmt.Errorf("simple packet block of %d bytes, want at least 4", body)
	}
	if err := r.full(h[:]); err != nil {
		return Packet{}, eofIsTruncated(err)
	}
	ifc := r.ifaces[0]
	wire := r.order.Uint32(h[:])
	caplen := min(int64(wire), body-4)
	if ifc.snaplen != 0 {
		caplen = min(caplen, int64(ifc.snaplen))
	}
	data, err := r.data(uint32(caplen), "the simple packet block")
	if err != nil {
		return Packet{}, err
	}
	if err := r.skip(body - 4 - caplen); err != nil {
		return Packet{}, eofIsTruncated(err)
	}
	return Packet{Data: data, Length: int(min(wire, 1<<31-1)), LinkType: ifc.linkType}, nil
}

// time converts a timestamp in the interface's units to time.Time.
func (ifc iface) time(ts uint64) time.Time {
	sec, frac := ts/ifc.perSec, ts%ifc.perSec
	hi, lo := bits.Mul64(frac, 1e9)
	nsec, _ := bits.Div64(hi, lo, ifc.perSec)
	return time.Unix(int64(min(sec, 1<<62))+ifc.offset, int64(nsec)).UTC()
}

// ReadFile returns the packets of the capture file at path (their bytes,
// copied), read with the same bounds as Reader; the error names the file.
func ReadFile(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size := int64(-1)
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	r, err := NewReader(f, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out [][]byte
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, append([]byte(nil), p.Data...))
	}
}
