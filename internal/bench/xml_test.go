package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunXML(t *testing.T) {
	var out bytes.Buffer
	steps, err := RunXML(context.Background(), &out, XMLConfig{Links: 250, Rounds: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 3 {
		t.Fatalf("%d steps measured, want 3:\n%s", len(steps), &out)
	}
	for _, s := range steps {
		if s.Median <= 0 || s.Max < s.Median || s.Seed <= 0 || s.Target <= 0 {
			t.Errorf("step %+v", s)
		}
	}
	if !strings.Contains(out.String(), "a snapshot of 250 links from 3 brokers") || strings.Contains(out.String(), "matched 0 links") {
		t.Fatalf("output:\n%s", &out)
	}
	if _, err := RunXML(context.Background(), &out, XMLConfig{Links: 0, Rounds: 1}); err == nil {
		t.Fatal("no links accepted")
	}
}
