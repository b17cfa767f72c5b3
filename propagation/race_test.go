//go:build race

package propagation

// raceEnabled skips allocation guards: the race detector changes allocation
// counts.
const raceEnabled = true
