package testutil

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// LogSink is a slog.Handler that keeps every record as one line of text,
// "LEVEL message key=value ...", for tests to look for. Attributes given
// to a logger by With are kept on each record.
type LogSink struct {
	mu    sync.Mutex
	lines []string
}

var _ slog.Handler = (*LogSink)(nil)

func (s *LogSink) Enabled(context.Context, slog.Level) bool { return true }

func (s *LogSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	s.mu.Lock()
	s.lines = append(s.lines, b.String())
	s.mu.Unlock()
	return nil
}

func (s *LogSink) WithAttrs(as []slog.Attr) slog.Handler { return &withAttrs{s, as} }
func (s *LogSink) WithGroup(string) slog.Handler         { return s }

// Contains reports whether one line holds every one of parts.
func (s *LogSink) Contains(parts ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

// Count returns how many lines hold substr.
func (s *LogSink) Count(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// String returns every line.
func (s *LogSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// withAttrs adds a logger's attributes to each of its records.
type withAttrs struct {
	s  *LogSink
	as []slog.Attr
}

func (h *withAttrs) Enabled(context.Context, slog.Level) bool { return true }
func (h *withAttrs) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(h.as...)
	return h.s.Handle(ctx, r)
}
func (h *withAttrs) WithAttrs(as []slog.Attr) slog.Handler {
	return &withAttrs{h.s, append(append([]slog.Attr{}, h.as...), as...)}
}
func (h *withAttrs) WithGroup(string) slog.Handler { return h }
