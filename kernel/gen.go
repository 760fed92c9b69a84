package kernel

// Rebuild the clang-19 test objects in testdata. Only needed after changing
// a .c file there: go test needs neither clang nor root.
//go:generate make -C testdata
