package asm

// Rebuild the clang-19 objects and llvm-objdump-19 listings the tests read.
// Only needed after changing testdata/clang; go test needs neither tool.
//go:generate make -C testdata/clang
