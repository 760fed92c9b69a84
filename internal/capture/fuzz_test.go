package capture

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader: any bytes give packets and then io.EOF or an *Error, never a
// panic; no packet and no buffer is larger than the input, whatever the
// headers claim.
func FuzzReader(f *testing.F) {
	orig := mustRead(f, traffic)
	frame := make([]byte, 60)
	f.Add(orig[:24+16+213+16+100])
	f.Add(concat(orig[:24], pcapRecord(0xffffffff, 0xffffffff)))
	f.Add(concat(ngSection, ngIface, ngEPB(60, frame), ngBlock(blockSimplePacket, concat([]byte{60, 0, 0, 0}, frame))))
	f.Add(concat(ngSection, ngBlock(blockInterface, []byte{1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 0, 0x86, 0, 0, 0}), ngEPB(60, frame)))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, size := range []int64{int64(len(b)), -1} {
			r, err := NewReader(bytes.NewReader(b), size)
			if err != nil {
				continue
			}
			for n := 0; ; n++ {
				p, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					var e *Error
					if !errors.As(err, &e) || e.Packet != n+1 || e.Offset < 0 || e.Offset > int64(len(b)) {
						t.Fatalf("packet %d: error %v is not an *Error naming it", n+1, err)
					}
					break
				}
				// With the size known, nothing larger than the input is
				// allocated; without, at most MaxPacket.
				bound := len(b)
				if size < 0 {
					bound = max(bound, MaxPacket)
				}
				if len(p.Data) > len(b) || cap(r.buf) > bound {
					t.Fatalf("packet %d of %d bytes (buffer %d) from %d bytes of input", n+1, len(p.Data), cap(r.buf), len(b))
				}
			}
		}
	})
}
