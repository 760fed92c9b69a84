package bpftest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"

	"github.com/cilium/ebpf"
)

// Sizes of a test's inputs, as Cilium's harness makes them.
const (
	// PacketSize is the zeroed buffer the first stage runs on: the most
	// BPF_PROG_TEST_RUN takes for XDP (a 4,096-byte page less the 256 bytes
	// of headroom and the 320 of skb_shared_info).
	PacketSize = 4096 - 256 - 320
	// ContextSize is the __sk_buff buffer that tc stages get and return
	// (sizeof(struct __sk_buff) is 192 today; the rest stays zero).
	ContextSize = 256
)

// Map names of the convention.
const (
	// ResultMap is the one-element array the programs write their
	// SuiteResult into.
	ResultMap = "suite_result_map"
	// MetaMap is the array that tests using mock_skb_metadata.h keep a
	// socket buffer's metadata in; it is cleared before each test too.
	MetaMap = "mock_skb_meta_map"
)

// Options configure Run. The zero value runs every test in user space.
type Options struct {
	// Engine runs the programs; nil means Interp{}.
	Engine Engine
	// Run selects the tests to run by name, as go test -run does; nil
	// runs them all. The tests of an object share its maps, so a test may
	// depend on one that ran before it.
	Run *regexp.Regexp
	// LegacyStatus reads statuses as Cilium numbered them until 1.18
	// (trf.proto's ERROR 0, PASS 1, FAIL 2, SKIP 3) rather than as it
	// does since 1.19 (100 to 103): the check's return value and each
	// record's status. Results report them as Error, Pass, Fail and Skip
	// all the same.
	LegacyStatus bool
}

// Result is the outcome of one test.
type Result struct {
	// Object and Test name the test.
	Object, Test string
	// Status is what the check program returned; Unknown when it did not
	// run.
	Status Status
	// Subtests are the records of the check's TEST() blocks.
	Subtests []Subtest
	// Logs are the messages written outside TEST() blocks.
	Logs []Log
	// Err is why the test could not run or be read: the object did not
	// load, a program failed, or the result did not decode.
	Err error
}

// Case is a reported unit of a Result: one TEST() record, or the test
// itself when it has none (or failed outside them).
type Case struct {
	// Name is "<test>" or "<test>/<record>".
	Name   string
	Status Status
	// Logs are the case's messages, formatted; for a test that could not
	// run, the reason.
	Logs []string
}

// Cases returns the test's reported units: one per TEST() record, and the
// test itself when it has no record, when the check returned anything but
// a pass, or when it could not run. Suite logs go with the test's own case
// when there is one, else with the first record.
func (r Result) Cases() []Case {
	var cases []Case
	self := Case{Name: r.Test, Status: r.Status}
	for _, l := range r.Logs {
		self.Logs = append(self.Logs, l.String())
	}
	if r.Err != nil {
		self.Status = Error
		self.Logs = append(self.Logs, r.Err.Error())
	}
	for _, st := range r.Subtests {
		c := Case{Name: r.Test + "/" + st.Name, Status: st.Status}
		for _, l := range st.Logs {
			c.Logs = append(c.Logs, l.String())
		}
		cases = append(cases, c)
	}
	if len(cases) == 0 || self.Status != Pass {
		return append([]Case{self}, cases...)
	}
	cases[0].Logs = append(self.Logs, cases[0].Logs...)
	return cases
}

// Passed reports whether the test ran, its check passed (or skipped) and
// no record failed.
func (r Result) Passed() bool {
	for _, c := range r.Cases() {
		if c.Status != Pass && c.Status != Skip {
			return false
		}
	}
	return true
}

// Run runs obj's selected tests, in order, in one instance of the engine
// loaded for them all, and returns one Result per test. When the object
// does not load, every selected test has that error.
//
// Each test runs as Cilium's harness runs it: element 0 of ResultMap and
// MetaMap is zeroed; pktgen runs on PacketSize zero bytes (and, for tc, a
// zero ContextSize __sk_buff); setup runs on the packet and context pktgen
// left; check runs on the packet setup left with setup's return value
// prepended (4 bytes, host order) and the same context; then ResultMap
// is read.
func Run(obj *Object, opts Options) []Result {
	e := opts.Engine
	if e == nil {
		e = Interp{}
	}
	var tests []Test
	for _, t := range obj.Tests {
		if opts.Run == nil || opts.Run.MatchString(t.Name) {
			tests = append(tests, t)
		}
	}
	results := make([]Result, len(tests))
	for i, t := range tests {
		results[i] = Result{Object: obj.Name, Test: t.Name}
	}
	if len(tests) == 0 {
		return results
	}
	inst, err := e.Load(obj)
	if err != nil {
		for i := range results {
			results[i].Err = fmt.Errorf("load: %w", err)
		}
		return results
	}
	defer inst.Close()
	for i, t := range tests {
		runTest(inst, obj, t, opts.LegacyStatus, &results[i])
	}
	return results
}

// runTest runs one test's stages and reads its result into r.
func runTest(inst Instance, obj *Object, t Test, legacy bool, r *Result) {
	for _, name := range []string{ResultMap, MetaMap} {
		if err := clearMap(inst, obj, name); err != nil {
			r.Err = err
			return
		}
	}
	data := make([]byte, PacketSize)
	var ctx []byte
	if ps := obj.spec.Programs[t.Programs[Check]]; ps.Type == ebpf.SchedCLS || ps.Type == ebpf.SchedACT {
		ctx = make([]byte, ContextSize) // a __sk_buff; XDP's test run takes no context
	}
	var ret uint32
	var err error
	for stage, prog := range t.Programs {
		if prog == "" {
			continue
		}
		in := data
		if Stage(stage) == Check && t.Programs[Setup] != "" {
			in = binary.NativeEndian.AppendUint32(make([]byte, 0, 4+len(data)), ret)
			in = append(in, data...)
		}
		if ret, data, ctx, err = inst.Run(prog, in, ctx); err != nil {
			r.Err = fmt.Errorf("%s: %w", Stage(stage), err)
			return
		}
	}
	r.Status = Status(int32(ret))
	if legacy {
		r.Status = fromLegacy(r.Status)
	}
	switch {
	case r.Status == Error || r.Status == Pass || r.Status == Fail || r.Status == Skip:
	case legacy:
		r.Status = Error
		r.Err = fmt.Errorf("check returned %d, want 0 (error), 1 (pass), 2 (fail) or 3 (skip)", ret)
	default:
		r.Err = fmt.Errorf("check returned %d, want 100 (error), 101 (pass), 102 (fail) or 103 (skip)", ret)
	}
	key := make([]byte, 4)
	val, err := inst.Lookup(ResultMap, key)
	if err != nil {
		r.Err = errors.Join(r.Err, fmt.Errorf("read %s: %w", ResultMap, err))
		return
	}
	sr, err := DecodeSuiteResult(val)
	if err != nil {
		r.Err = errors.Join(r.Err, fmt.Errorf("read %s: %w", ResultMap, err))
		return
	}
	r.Subtests, r.Logs = sr.Subtests, sr.Logs
	if legacy {
		for i := range r.Subtests {
			r.Subtests[i].Status = fromLegacy(r.Subtests[i].Status)
		}
	}
}

// fromLegacy returns the Status that a status numbered as Cilium did until
// 1.18 means; a number out of that range is Unknown.
func fromLegacy(s Status) Status {
	switch s {
	case 0:
		return Error
	case 1:
		return Pass
	case 2:
		return Fail
	case 3:
		return Skip
	}
	return Unknown
}

// clearMap zeroes element 0 of the array called name, if the object has
// one.
func clearMap(inst Instance, obj *Object, name string) error {
	ms := obj.spec.Maps[name]
	if ms == nil {
		return nil
	}
	if err := inst.Update(name, make([]byte, ms.KeySize), make([]byte, ms.ValueSize)); err != nil {
		return fmt.Errorf("clear %s: %w", name, err)
	}
	return nil
}

// Summary counts cases by outcome.
type Summary struct {
	Passed, Failed, Skipped int
}

// Add counts the cases of results.
func (s *Summary) Add(results ...Result) {
	for _, r := range results {
		for _, c := range r.Cases() {
			switch c.Status {
			case Pass:
				s.Passed++
			case Skip:
				s.Skipped++
			default:
				s.Failed++
			}
		}
	}
}

// String returns "N passed, M failed".
func (s Summary) String() string {
	return fmt.Sprintf("%d passed, %d failed", s.Passed, s.Failed)
}
