//go:build race

package broker

// raceEnabled skips checks of resident memory, which the race detector
// inflates several times over.
const raceEnabled = true
