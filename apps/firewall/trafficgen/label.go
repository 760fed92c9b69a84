package trafficgen

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Class is the kind of traffic a packet belongs to: legitimate, or one of
// the attacks and anomalies the firewall should drop.
type Class uint8

// The traffic classes. Every class but Legit is one the firewall is
// expected to drop (Fragment and Malformed when its options to drop them are
// on).
const (
	Legit         Class = iota // legitimate flows
	SYNFlood                   // TCP SYNs from spoofed sources
	Amplification              // UDP responses from reflectors (53, 123, 1900, 11211)
	PortScan                   // a slow SYN scan from one source
	Fragment                   // IPv4 and IPv6 fragments
	Malformed                  // packets with broken headers
	numClasses
)

var classNames = [numClasses]string{"legit", "syn-flood", "amplification", "port-scan", "fragment", "malformed"}

// String returns the name a labels file uses for c.
func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return fmt.Sprintf("Class(%d)", uint8(c))
}

// IsAttack reports whether packets of class c should be dropped.
func (c Class) IsAttack() bool { return c != Legit && c < numClasses }

// ParseClass returns the Class named s, as Class.String spells it.
func ParseClass(s string) (Class, error) {
	for i, n := range classNames {
		if n == s {
			return Class(i), nil
		}
	}
	return 0, fmt.Errorf("unknown traffic class %q", s)
}

// Classes returns every Class, in order.
func Classes() []Class {
	cs := make([]Class, numClasses)
	for i := range cs {
		cs[i] = Class(i)
	}
	return cs
}

// Direction says whether a packet travels to the victim (what a firewall on
// the victim's interface sees) or from it.
type Direction uint8

// The directions.
const (
	In  Direction = iota // to the victim
	Out                  // from the victim
)

// String returns "in" or "out".
func (d Direction) String() string {
	if d == Out {
		return "out"
	}
	return "in"
}

// Label says what a packet is.
type Label struct {
	Class Class
	// Kind is the variety inside the class: "https", "dns", "ntp", "tcp"
	// and "ipv6" for legitimate flows; "ipv4" or "ipv6" for the SYN flood;
	// "dns", "ntp", "ssdp" or "memcached" for amplification; "ipv4-first",
	// "ipv4-later", "ipv6-first", "ipv6-later" for fragments; "ihl",
	// "ip-len", "tcp-doff", "l4-trunc", "syn-fin", "ip6-len" for malformed
	// packets (see MalformedKinds).
	Kind string
	Dir  Direction
}

// labelLine is one line of a labels file.
type labelLine struct {
	Index int    `json:"index"`
	Label string `json:"label"`
	Kind  string `json:"kind"`
	Dir   string `json:"dir"`
}

// maxLabelLine bounds one line of a labels file.
const maxLabelLine = 1024

// WriteLabels writes one JSON line per label: its index in the capture, its
// class, kind and direction.
func WriteLabels(w io.Writer, labels []Label) error {
	lw := newLabelWriter(w)
	for _, l := range labels {
		if err := lw.write(l); err != nil {
			return err
		}
	}
	return lw.flush()
}

type labelWriter struct {
	bw  *bufio.Writer
	n   int
	buf []byte
}

// plain reports whether s needs no JSON escaping.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func newLabelWriter(w io.Writer) *labelWriter { return &labelWriter{bw: bufio.NewWriter(w)} }

func (lw *labelWriter) write(l Label) error {
	// The generator's own kinds need no escaping: format them directly,
	// json.Marshal costing as much as building the packet.
	b := lw.buf[:0]
	if plain(l.Kind) {
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(lw.n), 10)
		b = append(b, `,"label":"`...)
		b = append(b, l.Class.String()...)
		b = append(b, `","kind":"`...)
		b = append(b, l.Kind...)
		b = append(b, `","dir":"`...)
		b = append(b, l.Dir.String()...)
		b = append(b, `"}`...)
	} else {
		j, err := json.Marshal(labelLine{Index: lw.n, Label: l.Class.String(), Kind: l.Kind, Dir: l.Dir.String()})
		if err != nil {
			return fmt.Errorf("label %d: %w", lw.n, err)
		}
		b = append(b, j...)
	}
	b = append(b, '\n')
	lw.buf = b
	if _, err := lw.bw.Write(b); err != nil {
		return fmt.Errorf("label %d: %w", lw.n, err)
	}
	lw.n++
	return nil
}

func (lw *labelWriter) flush() error {
	if err := lw.bw.Flush(); err != nil {
		return fmt.Errorf("labels: %w", err)
	}
	return nil
}

// ReadLabels reads a labels file written by WriteLabels. Lines must come in
// index order from 0; at most max labels are read (max <= 0 means no limit
// but the reader's length), so a hostile file cannot make it allocate
// without bound.
func ReadLabels(r io.Reader, max int) ([]Label, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxLabelLine)
	var out []Label
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		if max > 0 && len(out) >= max {
			return nil, fmt.Errorf("labels: more than %d lines", max)
		}
		var ll labelLine
		if err := json.Unmarshal(line, &ll); err != nil {
			return nil, fmt.Errorf("labels: line %d: %w", len(out)+1, err)
		}
		if ll.Index != len(out) {
			return nil, fmt.Errorf("labels: line %d: index %d, want %d", len(out)+1, ll.Index, len(out))
		}
		c, err := ParseClass(ll.Label)
		if err != nil {
			return nil, fmt.Errorf("labels: line %d: %w", len(out)+1, err)
		}
		var d Direction
		switch ll.Dir {
		case "in", "":
		case "out":
			d = Out
		default:
			return nil, fmt.Errorf("labels: line %d: unknown direction %q", len(out)+1, ll.Dir)
		}
		out = append(out, Label{Class: c, Kind: ll.Kind, Dir: d})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("labels: line %d longer than %d bytes", len(out)+1, maxLabelLine)
		}
		return nil, fmt.Errorf("labels: %w", err)
	}
	return out, nil
}
