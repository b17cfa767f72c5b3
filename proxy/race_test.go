//go:build race

package proxy

// raceEnabled skips allocation guards: the race detector changes allocation
// counts. `make allocs` runs them without it.
const raceEnabled = true
