// Package amd64 is waggle's x86-64 JIT: it translates verified eBPF programs
// into x86-64 machine code.
//
// Its lowest layer is the instruction encoder, Asm (asm.go): one method per
// instruction form the code generator emits, which appends that
// instruction's bytes, and labels for jumps, calls and RIP-relative
// addresses, resolved by Finish. The encoder only produces bytes, so it
// builds and is tested on every GOOS and GOARCH; only running the code needs
// an amd64 host.
package amd64
