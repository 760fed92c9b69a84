package trafficgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// snapLen is the snap length written into captures: the largest frame a
// Scenario can produce fits.
const snapLen = 65535

// Counts holds the number of packets of each class.
type Counts map[Class]int

// pcapWriter writes a nanosecond pcap of Ethernet frames.
type pcapWriter struct {
	bw *bufio.Writer
	w  *pcapgo.Writer
	n  int
}

func newPcapWriter(w io.Writer) (*pcapWriter, error) {
	bw := bufio.NewWriterSize(w, 1<<16)
	pw := pcapgo.NewWriterNanos(bw)
	if err := pw.WriteFileHeader(snapLen, layers.LinkTypeEthernet); err != nil {
		return nil, fmt.Errorf("pcap header: %w", err)
	}
	return &pcapWriter{bw: bw, w: pw}, nil
}

func (pw *pcapWriter) write(p Packet) error {
	ci := gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(p.Data), Length: len(p.Data)}
	if err := pw.w.WritePacket(ci, p.Data); err != nil {
		return fmt.Errorf("pcap packet %d: %w", pw.n, err)
	}
	pw.n++
	return nil
}

func (pw *pcapWriter) flush() error {
	if err := pw.bw.Flush(); err != nil {
		return fmt.Errorf("pcap: %w", err)
	}
	return nil
}

// WritePcap writes pkts to w as a pcap file (Ethernet, nanosecond
// timestamps), in order.
func WritePcap(w io.Writer, pkts []Packet) error {
	pw, err := newPcapWriter(w)
	if err != nil {
		return err
	}
	for _, p := range pkts {
		if err := pw.write(p); err != nil {
			return err
		}
	}
	return pw.flush()
}

// Labels returns the labels of pkts, for WriteLabels.
func Labels(pkts []Packet) []Label {
	ls := make([]Label, len(pkts))
	for i, p := range pkts {
		ls[i] = p.Label
	}
	return ls
}

// Write generates s's packets, streaming them into a pcap on capture and
// their labels, as JSON lines, on labels (which may be nil). It returns the
// number of packets of each class written.
func Write(s Scenario, capture, labels io.Writer) (Counts, error) {
	g, err := New(s)
	if err != nil {
		return nil, err
	}
	pw, err := newPcapWriter(capture)
	if err != nil {
		return nil, err
	}
	var lw *labelWriter
	if labels != nil {
		lw = newLabelWriter(labels)
	}
	counts := Counts{}
	for {
		p, err := g.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return counts, err
		}
		if err := pw.write(p); err != nil {
			return counts, err
		}
		if lw != nil {
			if err := lw.write(p.Label); err != nil {
				return counts, err
			}
		}
		counts[p.Label.Class]++
	}
	if err := pw.flush(); err != nil {
		return counts, err
	}
	if lw != nil {
		return counts, lw.flush()
	}
	return counts, nil
}
