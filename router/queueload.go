package router

import "math"

// QueueLoadFigure is what a broker reports of its members of a queue
// group with the load policy: how many there are, and the messages they
// received over the last report interval, per member and per second,
// whoever published them.
type QueueLoadFigure struct {
	Members int     `json:"members"`
	Rate    float64 `json:"rate"`
}

// Bounds of a load policy's weights, and how far one step moves them.
const (
	queueLoadGain      = 0.5  // a broker this far above the mean, relatively, loses this much of its weight's log
	queueLoadMinWeight = 0.01 // a loaded broker keeps a trickle, to show when it is no longer loaded
	queueLoadMaxWeight = 100
)

// NextQueueLoadWeights is one step of the load policy's control loop, run
// by the broker a group's messages are published at once per report
// interval: it takes the weights it gave the member brokers (a broker
// it has none for has 1) and the figures they reported, and returns the
// weights to share the group's messages by from now on, each broker in
// proportion to its members times its weight.
//
// A broker whose members receive more than the mean rate per member (over
// the brokers that reported members) loses weight, one below gains, each
// by a factor exp(-gain * relative excess), the excess clamped to [-1, 1],
// and the weights are then scaled to a member-weighted mean of 1 and kept
// within [0.01, 100]. Moving part of the way each step, and moving every
// broker's share by the same factor whatever its traffic, lets the loop
// settle even though every publishing broker acts on the same figures,
// one interval old: with two brokers it halves the distance to equal rates
// each step. Where equal rates cannot be reached (messages published at a
// member's own broker load it beyond the rest), the loaded broker keeps
// the least weight. A broker that reported no members, or no figure, is
// left out; with no traffic at all, weights stay as they are.
func NextQueueLoadWeights(w map[string]float64, figures map[string]QueueLoadFigure) map[string]float64 {
	var members int
	var load float64
	for _, f := range figures {
		if f.Members > 0 && f.Rate >= 0 && !math.IsInf(f.Rate, 0) {
			members += f.Members
			load += float64(f.Members) * f.Rate
		}
	}
	out := make(map[string]float64, len(figures))
	if members == 0 {
		return out
	}
	mean := load / float64(members)
	var sum float64
	for b, f := range figures {
		if f.Members <= 0 || !(f.Rate >= 0) || math.IsInf(f.Rate, 0) {
			continue
		}
		v, ok := w[b]
		if !ok || !(v > 0) {
			v = 1
		}
		if mean > 0 {
			v *= math.Exp(-queueLoadGain * max(-1, min(1, (f.Rate-mean)/mean)))
		}
		out[b] = v
		sum += float64(f.Members) * v
	}
	for b, v := range out {
		out[b] = max(queueLoadMinWeight, min(queueLoadMaxWeight, v*float64(members)/sum))
	}
	return out
}
