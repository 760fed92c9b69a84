// Package engine owns the seam between waggle's runtime and the engines
// that execute programs: the Engine, Program, Machine and Memory
// interfaces, and the types a run speaks in (Options, Args, Region, Fault
// and the errors a run ends with).
//
// It is the analogue of wazero's internal/wasm/engine.go: the runtime
// (package waggle), the CLI, the conformance runner and the differential
// test harnesses hold engine values and never an engine's concrete types;
// the engines (package interp today, jit/amd64 later) import this package
// and implement it. It imports only isa, maps and helpers, so both sides
// can see it.
//
// An engine is chosen once per collection; per run the runtime makes one
// interface call (Machine.Run), never one per instruction.
package engine
