package bpftest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// Status is a test's outcome, with the values of Cilium's TRF
// (tests/bpftest/trf.proto, TestResult.TestStatus): what a check program
// returns and what each TestResult record holds.
type Status int32

// Test statuses.
const (
	// Unknown is a record that holds no status (TRF's UNKNOWN).
	Unknown Status = 0
	// Error means the test could not run: a framework failure such as a
	// missing result map, not a verdict on the code under test.
	Error Status = 100
	// Pass means every assertion held.
	Pass Status = 101
	// Fail means an assertion failed.
	Fail Status = 102
	// Skip means the test decided not to run (a feature it tests is off).
	Skip Status = 103
)

// String returns the status as test output prints it: PASS, FAIL, SKIP,
// ERROR, or the number for any other value.
func (s Status) String() string {
	switch s {
	case Unknown:
		return "UNKNOWN"
	case Error:
		return "ERROR"
	case Pass:
		return "PASS"
	case Fail:
		return "FAIL"
	case Skip:
		return "SKIP"
	}
	return "STATUS(" + strconv.Itoa(int(s)) + ")"
}

// Log is one message a test wrote (TRF's Log): a printf-style format, which
// Cilium's test_log() prefixes with "file:line: ", and its arguments, each
// carried as 64 bits.
type Log struct {
	Format string
	Args   []uint64
}

// String formats the message as C's printf would with the arguments the
// test passed: %d %i %u %x %X %o %c %p, with the h, hh, l, ll and z length
// modifiers and flags, width and precision. Without a length modifier a
// conversion takes the low 32 bits of its argument, as a C int would.
// A conversion without an argument prints %!v(MISSING), as Go's fmt does.
func (l Log) String() string {
	f := strings.TrimRight(l.Format, "\x00")
	var b strings.Builder
	n := 0
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		start := i
		i++
		// flags, width, precision
		for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
			i++
		}
		for i < len(f) && (f[i] >= '0' && f[i] <= '9' || f[i] == '.') {
			i++
		}
		spec := f[start+1 : i]
		bits := 32
		for i < len(f) && strings.IndexByte("hlzjt", f[i]) >= 0 {
			switch f[i] {
			case 'h':
				if bits == 16 {
					bits = 8
				} else {
					bits = 16
				}
			default:
				bits = 64
			}
			i++
		}
		if i >= len(f) {
			b.WriteString(f[start:])
			break
		}
		conv := f[i]
		if conv == '%' {
			b.WriteByte('%')
			continue
		}
		if strings.IndexByte("diuxXocp", conv) < 0 {
			b.WriteString(f[start : i+1]) // not a conversion we know: as written
			continue
		}
		if n >= len(l.Args) {
			b.WriteString("%!" + string(conv) + "(MISSING)")
			continue
		}
		arg := l.Args[n]
		n++
		if conv == 'p' {
			b.WriteString("0x" + strconv.FormatUint(arg, 16))
			continue
		}
		if bits < 64 {
			arg &= 1<<bits - 1
		}
		var v any = arg
		switch conv {
		case 'd', 'i':
			v = int64(arg<<(64-bits)) >> (64 - bits)
			conv = 'd'
		case 'u':
			conv = 'd'
		case 'c':
			v = rune(byte(arg))
		}
		fmt.Fprintf(&b, "%"+spec+string(conv), v)
	}
	return b.String()
}

// Subtest is one TestResult record of a suite result: a TEST() block of a
// check program, with its name, status and messages.
type Subtest struct {
	Name   string
	Status Status
	Logs   []Log
}

// SuiteResult is what a test's programs wrote into suite_result_map: the
// records of its TEST() blocks and the messages written outside them.
type SuiteResult struct {
	Subtests []Subtest
	Logs     []Log
}

// Protobuf field numbers of trf.proto.
const (
	fieldSuiteResults = 1 // SuiteResult.results
	fieldSuiteLog     = 2 // SuiteResult.suite_log
	fieldTestName     = 1 // TestResult.name
	fieldTestStatus   = 2 // TestResult.status
	fieldTestLog      = 3 // TestResult.test_log
	fieldLogFmt       = 1 // Log.fmt
	fieldLogArgs      = 2 // Log.args (fixed64, packed or not)
)

// DecodeSuiteResult decodes a protobuf SuiteResult (Cilium's trf.proto) as
// check programs write it into the value of suite_result_map. The value is
// a fixed-size buffer: decoding stops at the first zero byte where a field
// would start, which protobuf never writes (field number 0 is invalid), and
// the zero padding after the message is ignored. A malformed record is an
// error naming the offset.
func DecodeSuiteResult(b []byte) (*SuiteResult, error) {
	var r SuiteResult
	off := 0
	for off < len(b) && b[off] != 0 {
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return nil, fmt.Errorf("suite result at byte %d: %w", off, protowire.ParseError(n))
		}
		val, m, err := consumeField(b[off+n:], num, typ)
		if err != nil {
			return nil, fmt.Errorf("suite result at byte %d: field %d: %w", off, num, err)
		}
		switch {
		case num == fieldSuiteResults && typ == protowire.BytesType:
			st, err := decodeTestResult(val)
			if err != nil {
				return nil, fmt.Errorf("suite result at byte %d: test result %d: %w", off, len(r.Subtests), err)
			}
			r.Subtests = append(r.Subtests, st)
		case num == fieldSuiteLog && typ == protowire.BytesType:
			l, err := decodeLog(val)
			if err != nil {
				return nil, fmt.Errorf("suite result at byte %d: suite log: %w", off, err)
			}
			r.Logs = append(r.Logs, l)
		}
		off += n + m
	}
	return &r, nil
}

// consumeField returns the bytes of a length-delimited field (nil for
// others) and the length of the field's value.
func consumeField(b []byte, num protowire.Number, typ protowire.Type) ([]byte, int, error) {
	if typ == protowire.BytesType {
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, 0, protowire.ParseError(n)
		}
		return v, n, nil
	}
	n := protowire.ConsumeFieldValue(num, typ, b)
	if n < 0 {
		return nil, 0, protowire.ParseError(n)
	}
	return nil, n, nil
}

func decodeTestResult(b []byte) (Subtest, error) {
	var st Subtest
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return st, protowire.ParseError(n)
		}
		b = b[n:]
		if num == fieldTestStatus && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return st, protowire.ParseError(n)
			}
			st.Status = Status(int32(v))
			b = b[n:]
			continue
		}
		val, n, err := consumeField(b, num, typ)
		if err != nil {
			return st, fmt.Errorf("field %d: %w", num, err)
		}
		b = b[n:]
		switch {
		case num == fieldTestName && typ == protowire.BytesType:
			st.Name = strings.TrimRight(string(val), "\x00")
		case num == fieldTestLog && typ == protowire.BytesType:
			l, err := decodeLog(val)
			if err != nil {
				return st, fmt.Errorf("log %d: %w", len(st.Logs), err)
			}
			st.Logs = append(st.Logs, l)
		}
	}
	return st, nil
}

func decodeLog(b []byte) (Log, error) {
	var l Log
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return l, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == fieldLogArgs && typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return l, protowire.ParseError(n)
			}
			l.Args = append(l.Args, v)
			b = b[n:]
			continue
		case num == fieldLogArgs && typ == protowire.BytesType: // packed
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return l, protowire.ParseError(n)
			}
			if len(v)%8 != 0 {
				return l, errors.New("packed arguments are not a multiple of 8 bytes")
			}
			for len(v) > 0 {
				a, k := protowire.ConsumeFixed64(v)
				l.Args = append(l.Args, a)
				v = v[k:]
			}
			b = b[n:]
			continue
		}
		val, n, err := consumeField(b, num, typ)
		if err != nil {
			return l, fmt.Errorf("field %d: %w", num, err)
		}
		b = b[n:]
		if num == fieldLogFmt && typ == protowire.BytesType {
			l.Format = strings.TrimRight(string(val), "\x00")
		}
	}
	return l, nil
}
