package loader

// Unresolvable is unresolvable, for the tests of package loader_test.
var Unresolvable = unresolvable
