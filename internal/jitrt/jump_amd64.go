//go:build linux && amd64

package jitrt

// Jump enters machine code at pc with the stack pointer stack and the
// execution context ec in R12. It returns when the code exits (see
// ExecCtx.Exit). The code may change every general-purpose register but
// must restore SP and BP from ec.GoSP and ec.GoBP before it returns; the
// ABI wrapper of this assembly function restores R14 (g) and X15. ec
// escapes: it must not live on a goroutine stack, which may move while
// the code holds its address.
func Jump(pc, stack uintptr, ec *ExecCtx)
