//go:build race

package interp

// raceEnabled says the race detector is on.
const raceEnabled = true
