package verifuzz

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/verifier"
)

func TestZZ(t *testing.T) {
	p := fuzzgen.GeneratePtr(3348203, fuzzgen.PtrConfig{})
	fmt.Println(Disasm(p))
	_ = context.Background
	_ = strings.Contains
	_ = verifier.MaxInsns
}
