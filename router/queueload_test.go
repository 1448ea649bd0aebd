package router

import (
	"math"
	"testing"
)

// loadModel is a queue group's brokers in simulated time: their members,
// the messages a second published at each that its own members take (out
// of any policy's reach), and the messages a second a publishing broker
// shares by the load policy.
type loadModel struct {
	members map[string]int
	local   map[string]float64
	shared  float64
}

// shares returns each broker's part of the shared messages under weights
// w: in proportion to members times weight.
func (m loadModel) shares(w map[string]float64) map[string]float64 {
	var sum float64
	for b, n := range m.members {
		sum += float64(n) * weight(w, b)
	}
	out := map[string]float64{}
	for b, n := range m.members {
		out[b] = float64(n) * weight(w, b) / sum
	}
	return out
}

func weight(w map[string]float64, b string) float64 {
	if v, ok := w[b]; ok {
		return v
	}
	return 1
}

// figures are what the brokers report under shares s.
func (m loadModel) figures(s map[string]float64) map[string]QueueLoadFigure {
	out := map[string]QueueLoadFigure{}
	for b, n := range m.members {
		out[b] = QueueLoadFigure{Members: n, Rate: (m.local[b] + m.shared*s[b]) / float64(n)}
	}
	return out
}

// run steps the control loop, the figures lagging the shares by lag
// steps, and returns the last shares.
func (m loadModel) run(w map[string]float64, steps, lag int) map[string]float64 {
	history := []map[string]float64{m.shares(w)}
	for range steps {
		past := history[max(0, len(history)-1-lag)]
		w = NextQueueLoadWeights(w, m.figures(past))
		history = append(history, m.shares(w))
	}
	return history[len(history)-1]
}

func TestQueueLoadConverges(t *testing.T) {
	tests := []struct {
		name  string
		model loadModel
		start map[string]float64
		want  map[string]float64 // shares of the shared messages
	}{{
		name:  "two brokers from a lopsided start",
		model: loadModel{members: map[string]int{"a": 1, "b": 1}, shared: 1000},
		start: map[string]float64{"a": 50, "b": 1},
		want:  map[string]float64{"a": 0.5, "b": 0.5},
	}, {
		name:  "local traffic at a: b takes more until the rates meet",
		model: loadModel{members: map[string]int{"a": 1, "b": 1}, local: map[string]float64{"a": 300}, shared: 1000},
		want:  map[string]float64{"a": 0.35, "b": 0.65},
	}, {
		name:  "members count: rates per member meet",
		model: loadModel{members: map[string]int{"a": 3, "b": 1, "c": 4}, local: map[string]float64{"c": 400}, shared: 1600},
		// 2000 messages a second over 8 members: 250 each; c has 1000 and
		// needs 600 of the shared, a 750, b 250.
		want: map[string]float64{"a": 750.0 / 1600, "b": 250.0 / 1600, "c": 600.0 / 1600},
	}, {
		name:  "a broker loaded beyond the rest by its own publishers keeps a trickle",
		model: loadModel{members: map[string]int{"a": 1, "b": 1}, local: map[string]float64{"a": 5000}, shared: 1000},
		want:  map[string]float64{"a": 0, "b": 1},
	}}
	for _, tt := range tests {
		for _, lag := range []int{0, 1} {
			got := tt.model.run(tt.start, 40, lag)
			for b, want := range tt.want {
				if math.Abs(got[b]-want) > 0.02 {
					t.Errorf("%s, figures %d steps late: %s has %.3f of the shared messages, want %.3f (all: %v)", tt.name, lag, b, got[b], want, got)
				}
			}
		}
	}
}

// Two brokers, no local traffic: each step halves the distance to equal
// shares.
func TestQueueLoadStep(t *testing.T) {
	m := loadModel{members: map[string]int{"a": 1, "b": 1}, shared: 1000}
	w := map[string]float64{"a": 1.5, "b": 0.5} // shares 0.75, 0.25
	for i := range 4 {
		before := m.shares(w)["a"] - 0.5
		w = NextQueueLoadWeights(w, m.figures(m.shares(w)))
		after := m.shares(w)["a"] - 0.5
		if math.Abs(after) > 0.6*math.Abs(before) {
			t.Errorf("step %d: a's distance from an even share went from %.4f to %.4f", i, before, after)
		}
	}
}

func TestQueueLoadEdges(t *testing.T) {
	w := map[string]float64{"a": 2, "b": 0.5, "gone": 3}
	// No traffic: no change but for brokers that no longer report.
	got := NextQueueLoadWeights(w, map[string]QueueLoadFigure{"a": {Members: 1}, "b": {Members: 1}})
	if len(got) != 2 || math.Abs(got["a"]/got["b"]-4) > 1e-9 {
		t.Errorf("with no traffic: %v", got)
	}
	// Figures without members, NaN or infinite rates are left out.
	got = NextQueueLoadWeights(w, map[string]QueueLoadFigure{"a": {Members: 1, Rate: 10}, "b": {Members: 0, Rate: 5},
		"c": {Members: 1, Rate: math.NaN()}, "d": {Members: 1, Rate: math.Inf(1)}})
	if len(got) != 1 || got["a"] != 1 {
		t.Errorf("with bad figures: %v", got)
	}
	if got := NextQueueLoadWeights(nil, nil); len(got) != 0 {
		t.Errorf("no figures: %v", got)
	}
}
