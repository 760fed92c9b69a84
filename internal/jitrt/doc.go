// Package jitrt is the runtime under waggle's JIT: the trampoline that
// enters machine code from Go and the one way back, the execution context
// both sides share, code memory that is writable or executable but never
// both, and stacks with a guard page.
//
// Machine code runs on a stack of its own, never on a goroutine's: Jump
// saves Go's stack and frame pointers in the ExecCtx, switches to the
// stack it is given and jumps to the code; the code comes back by
// restoring them and returning, which returns from Jump. Every exit, for a
// finished run, a helper the code wants Go to run, or a fault, takes that
// path, with the reason in ExecCtx.Exit; Go does what the exit asks and
// resumes the code with Jump at the address the code left. The goroutine's
// stack may move between exits (a helper that grows it): Jump saves the
// pointers again at every entry, so the code only ever returns to where Go
// is now.
//
// The Go runtime never sees the code: a signal that lands in it is not at
// a safe point (so a goroutine in machine code holds up a stop-the-world
// until it exits), and a fault in it kills the process. The code
// generator therefore emits code that cannot fault, and bounded runs exit
// regularly (see ../../RATIONALE.md, "The JIT").
//
// Only linux/amd64 has an implementation; elsewhere Supported says why not.
package jitrt
