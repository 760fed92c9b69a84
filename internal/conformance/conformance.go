package conformance

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/isa"
)

// Classes of error for files the upstream runner skips, for callers that
// branch with errors.Is.
var (
	// ErrUnknownSection: a "--" header that names no known section. The
	// upstream runner skips the whole file.
	ErrUnknownSection = errors.New("unknown section header")
	// ErrNoExpectation: the file has neither "-- result" nor "-- error".
	// The upstream runner skips it.
	ErrNoExpectation = errors.New("no -- result or -- error section")
	// ErrNoProgram: the file has no instructions. The upstream runner skips
	// it.
	ErrNoProgram = errors.New("no instructions")
)

// Test is one conformance test file.
type Test struct {
	// Name is the file name without directory and ".data".
	Name string
	// Asm is the "-- asm" section, one instruction or label per line, with
	// comments and blank lines removed.
	Asm string
	// Raw is the "-- raw" program, nil when the file has none. When present
	// it replaces Asm.
	Raw []isa.Instruction
	// Mem is the input memory ("-- mem"), nil when the file has none.
	Mem []byte
	// Result is the expected r0 at exit; HasResult reports whether the file
	// has a "-- result" section.
	Result    uint64
	HasResult bool
	// Error is the expected error text; HasError reports whether the file
	// has an "-- error" section. An empty Error with HasError means "must
	// fail" without a message to compare (the negative/unused-* files).
	Error    string
	HasError bool

	path     string
	asmLines []int // file line of each line of Asm
}

type section uint8

const (
	secNone section = iota
	secAsm
	secResult
	secMem
	secRaw
	secIgnore // "-- c", "-- no register offset"
	secError
)

// sectionOf finds the kind of a header line as the upstream parser does: by
// substring, in this order.
func sectionOf(header string) section {
	switch {
	case strings.Contains(header, "asm"):
		return secAsm
	case strings.Contains(header, "result"):
		return secResult
	case strings.Contains(header, "mem"):
		return secMem
	case strings.Contains(header, "raw"):
		return secRaw
	case strings.Contains(header, "no register offset"), strings.Contains(header, " c"):
		return secIgnore
	case strings.Contains(header, "error"):
		return secError
	}
	return secNone
}

// ReadFile reads and parses a test file.
func ReadFile(path string) (*Test, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := Parse(strings.TrimSuffix(filepath.Base(path), ".data"), data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.path = path
	return t, nil
}

// reByteLine is a "-- raw" line of eight hex bytes (negative/unused-*).
var reByteLine = regexp.MustCompile(`^[0-9a-fA-F]{2}(\s+[0-9a-fA-F]{2}){7}$`)

// Parse parses the text of a test file (README §1): a trailing "\r" is
// dropped, "#" starts a comment everywhere, blank lines are ignored, and a
// line containing "--" starts a section. "-- raw" holds 64-bit instruction
// words (hex with 0x, decimal otherwise), or lines of exactly eight hex
// bytes as the negative/unused-* files write them (README §5); in
// "-- result" and "-- error" the last line wins. name is used in errors.
//
// It returns ErrUnknownSection and ErrNoExpectation (wrapped) for the files
// the upstream runner skips; the program is not assembled here (see
// Assemble).
func Parse(name string, data []byte) (*Test, error) {
	t := &Test{Name: name}
	var asmText []string
	cur := secNone
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.Contains(line, "--") {
			cur = sectionOf(line)
			switch cur {
			case secNone:
				return nil, fmt.Errorf("line %d: %w %q", n, ErrUnknownSection, line)
			case secResult:
				t.HasResult = true
			case secError:
				t.HasError = true
			}
			continue
		}
		switch cur {
		case secAsm:
			asmText = append(asmText, line)
			t.asmLines = append(t.asmLines, n)
		case secRaw:
			if err := t.rawLine(line); err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
		case secMem:
			for _, tok := range strings.Fields(line) {
				v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(tok, "0x"), "0X"), 16, 8)
				if err != nil {
					return nil, fmt.Errorf("line %d: memory byte %q is not two hex digits", n, tok)
				}
				t.Mem = append(t.Mem, byte(v))
			}
		case secResult:
			v, err := parseResult(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			t.Result = v
		case secError:
			t.Error = line
		}
	}
	if !t.HasResult && !t.HasError {
		return nil, fmt.Errorf("%s: %w", name, ErrNoExpectation)
	}
	t.Asm = strings.Join(asmText, "\n")
	return t, nil
}

// rawLine reads one line of "-- raw": eight hex bytes, or 64-bit words.
func (t *Test) rawLine(line string) error {
	if reByteLine.MatchString(line) {
		var b [8]byte
		for i, tok := range strings.Fields(line) {
			v, _ := strconv.ParseUint(tok, 16, 8)
			b[i] = byte(v)
		}
		t.Raw = append(t.Raw, isa.Unmarshal(b[:], binary.LittleEndian))
		return nil
	}
	for _, tok := range strings.Fields(line) {
		var v uint64
		var err error
		if strings.HasPrefix(tok, "0x") || strings.HasPrefix(tok, "0X") {
			v, err = strconv.ParseUint(tok[2:], 16, 64)
		} else {
			v, err = strconv.ParseUint(tok, 10, 64)
		}
		if err != nil {
			return fmt.Errorf("raw instruction %q is not a 64-bit word", tok)
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		t.Raw = append(t.Raw, isa.Unmarshal(b[:], binary.LittleEndian))
	}
	return nil
}

// parseResult reads "-- result": hex if it contains 0x, decimal otherwise.
func parseResult(s string) (uint64, error) {
	if i := strings.Index(s, "0x"); i >= 0 {
		v, err := strconv.ParseUint(s[i+2:], 16, 64)
		if err != nil || strings.TrimSpace(s[:i]) != "" {
			return 0, fmt.Errorf("result %q is not a 64-bit hex number", s)
		}
		return v, nil
	}
	if v, err := strconv.ParseUint(s, 10, 64); err == nil {
		return v, nil
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return uint64(v), nil
	}
	return 0, fmt.Errorf("result %q is not a 64-bit number", s)
}

// Assemble returns the test's program: Raw when the file has a "-- raw"
// section, otherwise Asm assembled with asm.ParseConformance. Assembly
// errors name the file and its line. A file without instructions gives
// ErrNoProgram. The program is not validated (see isa.ValidateProgram).
func Assemble(t *Test) ([]isa.Instruction, error) {
	if t.Raw != nil {
		return t.Raw, nil
	}
	prog, err := asm.ParseConformance(t.Asm)
	if err != nil {
		// Renumber the error's line from the section to the file.
		var aerr *asm.Error
		if errors.As(err, &aerr) && aerr.Line >= 1 && aerr.Line <= len(t.asmLines) {
			fileErr := *aerr
			fileErr.Line = t.asmLines[aerr.Line-1]
			err = &fileErr
		}
		return nil, fmt.Errorf("%s: %w", t.where(), err)
	}
	if len(prog) == 0 {
		return nil, fmt.Errorf("%s: %w", t.where(), ErrNoProgram)
	}
	return prog, nil
}

func (t *Test) where() string {
	if t.path != "" {
		return t.path
	}
	return t.Name
}
