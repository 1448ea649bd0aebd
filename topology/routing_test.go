package topology

import (
	"strings"
	"testing"
)

func TestRoutingQueues(t *testing.T) {
	f, err := Parse([]byte(two + `routing:
  queues:
    - {group: workers, weights: {na: 90, eu.c1: 10.5}}
    - {group: billing, policy: nearest}
    - {group: render, policy: load}
`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.Routing.Settings()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Queues) != 3 || s.Queues[2].Policy != "load" || s.Queues[0].Group != "workers" || s.Queues[0].Weights["na"] != 90 || s.Queues[0].Weights["eu.c1"] != 10.5 ||
		s.Queues[1].Group != "billing" || s.Queues[1].Policy != "nearest" {
		t.Fatalf("queues %+v", s.Queues)
	}
}

func TestRoutingQueuesErrors(t *testing.T) {
	tests := []struct {
		name, queues, want string
	}{
		{"unknown policy", "{group: w, policy: fastest}", `routing: queues[0]: group w: policy: unknown policy "fastest" (want nearest or load, or weights)`},
		{"both", "{group: w, policy: nearest, weights: {na: 1}}", "routing: queues[0]: group w: give weights or a policy, not both"},
		{"neither", "{group: w}", "routing: queues[0]: group w: give weights"},
		{"negative", "{group: w, weights: {na: 90, eu: -10}}", "routing: queues[0]: group w: weights: eu: -10 is not a finite weight more than 0"},
		{"zero sum", "{group: w, weights: {na: 0}}", "routing: queues[0]: group w: weights: na: 0 is not a finite weight more than 0"},
		{"not a number", "{group: w, weights: {na: lots}}", "line 4: cannot unmarshal !!str `lots` into float64"},
		{"bad unit", "{group: w, weights: {na.: 1}}", `routing: queues[0]: group w: weights: unit "na.": address "na.": label 2 is empty`},
		{"twice", "{group: w, policy: nearest}, {group: w, weights: {na: 1}}", "routing: queues[1]: group w given twice"},
		{"empty group", "{policy: nearest}", "routing: queues[0]: group: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(two + "routing:\n  queues: [\n    " + tt.queues + "]\n"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one with %q", err, tt.want)
			}
		})
	}
}
