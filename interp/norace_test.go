//go:build !race

package interp

// raceEnabled says the race detector is on (race_test.go).
const raceEnabled = false
