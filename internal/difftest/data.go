package difftest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/waggle-bpf/waggle/isa"
)

// dataCase is a program in the conformance suite's .data format, as far as
// the raw form goes (conformance README §1): "-- raw" 64-bit instruction
// words, "-- mem" hex bytes, "-- result" the expected r0.
type dataCase struct {
	Insns     []isa.Instruction
	Mem       []byte
	Result    uint64
	HasResult bool
}

// parseData reads a .data file that has a "-- raw" section. "-- asm" is
// not assembled here (that is the asm package's job); a file without
// "-- raw" is an error.
func parseData(text string) (*dataCase, error) {
	var c dataCase
	var section string
	var words []uint64
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.Contains(line, "--") {
			for _, s := range []string{"asm", "result", "mem", "raw", "no register offset", " c", "error"} {
				if strings.Contains(line, s) {
					section = s
					break
				}
			}
			continue
		}
		switch section {
		case "raw":
			for _, f := range strings.Fields(line) {
				v, err := parseNumber(f)
				if err != nil {
					return nil, fmt.Errorf("line %d: raw word %q: %w", n, f, err)
				}
				words = append(words, v)
			}
		case "mem":
			for _, f := range strings.Fields(line) {
				b, err := strconv.ParseUint(f, 16, 8)
				if err != nil {
					return nil, fmt.Errorf("line %d: mem byte %q: %w", n, f, err)
				}
				c.Mem = append(c.Mem, byte(b))
			}
		case "result":
			v, err := parseNumber(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: result %q: %w", n, line, err)
			}
			c.Result, c.HasResult = v, true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, errors.New("no -- raw section")
	}
	c.Insns = make([]isa.Instruction, len(words))
	for i, w := range words {
		var b [8]byte
		for j := range b {
			b[j] = byte(w >> (8 * j))
		}
		c.Insns[i] = isa.Unmarshal(b[:], binary.LittleEndian)
	}
	return &c, nil
}

// parseNumber reads hex if the token contains "0x", decimal otherwise.
func parseNumber(s string) (uint64, error) {
	if i := strings.Index(s, "0x"); i >= 0 {
		neg := strings.HasPrefix(s, "-")
		v, err := strconv.ParseUint(s[i+2:], 16, 64)
		if neg {
			v = -v
		}
		return v, err
	}
	if strings.HasPrefix(s, "-") {
		v, err := strconv.ParseInt(s, 10, 64)
		return uint64(v), err
	}
	return strconv.ParseUint(s, 10, 64)
}

// formatData writes a program in the .data format: a header of comment
// lines, the disassembly as comments, then "-- raw", "-- mem" and
// "-- result".
func formatData(header []string, insns []isa.Instruction, mem []byte, result uint64) string {
	var b strings.Builder
	for _, h := range header {
		for _, l := range strings.Split(h, "\n") {
			b.WriteString(strings.TrimRight("# "+l, " ") + "\n")
		}
	}
	b.WriteString("#\n")
	b.WriteString(disasm(insns, "#   "))
	b.WriteString("-- raw\n")
	enc := isa.Encode(insns)
	for i := 0; i < len(enc); i += 8 {
		var w uint64
		for j := 7; j >= 0; j-- {
			w = w<<8 | uint64(enc[i+j])
		}
		fmt.Fprintf(&b, "0x%016x\n", w)
	}
	b.WriteString("-- mem\n")
	for i := 0; i < len(mem); i += 16 {
		line := make([]string, 0, 16)
		for _, c := range mem[i:min(i+16, len(mem))] {
			line = append(line, fmt.Sprintf("%02x", c))
		}
		b.WriteString(strings.Join(line, " ") + "\n")
	}
	fmt.Fprintf(&b, "-- result\n%#x\n", result)
	return b.String()
}

// disasm returns the program in llvm-objdump syntax, one slot index per
// instruction, each line prefixed.
func disasm(insns []isa.Instruction, prefix string) string {
	var b strings.Builder
	for i := 0; i < len(insns); i++ {
		var next isa.Instruction
		if i+1 < len(insns) {
			next = insns[i+1]
		}
		fmt.Fprintf(&b, "%s%4d: %s\n", prefix, i, isa.Format(insns[i], next))
		if insns[i].IsLoadImm64() {
			i++
		}
	}
	return b.String()
}
