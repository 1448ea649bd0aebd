package transports

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestEmulationSpecApply(t *testing.T) {
	base := Emulation{Delay: 45 * time.Millisecond, Loss: 0.01}
	tests := []struct {
		name string
		json string
		want func(Emulation) bool
		err  string
	}{
		{"down keeps the rest", `{"down":true}`, func(e Emulation) bool { return e.Down && e.Delay == 45*time.Millisecond && e.Loss == 0.01 }, ""},
		{"strings", `{"delay":"45ms","jitter":"3ms","loss":"1%"}`, func(e Emulation) bool {
			return e.Delay == 45*time.Millisecond && e.Jitter == 3*time.Millisecond && e.Loss == 0.01
		}, ""},
		{"numbers", `{"loss":0.05,"duplicate":"0.5%"}`, func(e Emulation) bool { return e.Loss == 0.05 && e.Duplicate == 0.005 }, ""},
		{"bandwidth", `{"bandwidth":"1Mbit"}`, func(e Emulation) bool { return e.Bandwidth == 1_000_000 }, ""},
		{"clear", `{"delay":"0","loss":"0%"}`, func(e Emulation) bool { return e.Delay == 0 && e.Loss == 0 }, ""},
		{"outages", `{"outages":[{"start":"1s","duration":"500ms"}]}`, func(e Emulation) bool {
			return len(e.Outages) == 1 && e.Outages[0].Start == time.Second && e.Outages[0].Duration == 500*time.Millisecond
		}, ""},
		{"bad duration", `{"delay":"soon"}`, nil, "delay"},
		{"bad loss", `{"loss":"120%"}`, nil, "loss"},
		{"bad dist", `{"jitter_dist":"cauchy"}`, nil, "cauchy"},
		{"bad bandwidth", `{"bandwidth":"fast"}`, nil, "bandwidth"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s EmulationSpec
			if err := json.Unmarshal([]byte(tc.json), &s); err != nil {
				t.Fatal(err)
			}
			got, err := s.Apply(base)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one naming %q", err, tc.err)
				}
				if got.Delay != base.Delay {
					t.Fatal("a failed Apply changed the emulation")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(got) {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

func TestSpecOfRoundTrip(t *testing.T) {
	e := Emulation{Delay: 40 * time.Millisecond, Jitter: 4 * time.Millisecond, Loss: 0.05, Down: true, Bandwidth: 2_000_000}
	js, err := json.Marshal(SpecOf(e))
	if err != nil {
		t.Fatal(err)
	}
	var s EmulationSpec
	if err := json.Unmarshal(js, &s); err != nil {
		t.Fatal(err)
	}
	got, err := s.Apply(Emulation{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Delay != e.Delay || got.Jitter != e.Jitter || got.Loss != e.Loss || !got.Down || got.Bandwidth != e.Bandwidth {
		t.Fatalf("round trip %s gave %+v", js, got)
	}
	if s := SpecOf(Emulation{}); s.String() != "-" {
		t.Fatalf("empty spec prints %q", s.String())
	}
}
