//go:build race

package transports

// raceEnabled skips allocation counts, which the race detector inflates.
const raceEnabled = true
