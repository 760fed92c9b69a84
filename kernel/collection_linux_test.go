package kernel

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// TestNewCollection: an object's programs load with its maps and run with
// BPF_PROG_TEST_RUN; the counter example counts the packet in its map and
// passes it. Closed, a program refuses to run.
func TestNewCollection(t *testing.T) {
	mustSupported(t)
	spec, err := ebpf.LoadCollectionSpec("../examples/counter/counter.o")
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCollection(spec)
	if err != nil {
		t.Fatalf("%+v", err)
	}
	p := c.Programs["xdp_count"]
	if p == nil || p.Type() != XDP {
		t.Fatalf("programs %v", c.Programs)
	}
	frame := make([]byte, 64)
	res, err := p.Run(&RunOptions{Data: frame, Repeat: 3})
	if err != nil || res.Retval != 2 || len(res.Data) != len(frame) {
		t.Fatalf("run: %+v, %v, want XDP_PASS and the packet", res, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Run(&RunOptions{Data: frame}); !errors.Is(err, ErrClosed) {
		t.Fatalf("run after Close: %v, want ErrClosed", err)
	}
}

// TestNewCollection_rejected: a program Linux's verifier rejects fails the
// load with cilium/ebpf's error, carrying the log.
func TestNewCollection_rejected(t *testing.T) {
	mustSupported(t)
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"bad": {Type: ebpf.XDP, License: "GPL", Instructions: asm.Instructions{asm.Mov.Reg(asm.R0, asm.R2), asm.Return()}},
	}}
	_, err := NewCollection(spec)
	var ve *ebpf.VerifierError
	if !errors.As(err, &ve) || !strings.Contains(fmt.Sprintf("%+v", err), "R2 !read_ok") {
		t.Fatalf("reading an uninitialised register: %+v, want the verifier's rejection", err)
	}
}
