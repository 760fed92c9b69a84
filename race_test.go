//go:build race

package waggle_test

// raceEnabled says the race detector is on: its sync.Pool drops pooled
// values at random (to expose races), so runs allocate new runners, and
// allocation counts mean nothing.
const raceEnabled = true
