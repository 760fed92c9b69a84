package kernel

// Rebuild the clang-19 test objects in testdata (the loading tests' and
// the attach tests'). Only needed after changing a .c file there: go test
// needs neither clang nor root.
//go:generate make -C testdata
//go:generate make -C testdata/attach
