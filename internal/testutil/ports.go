package testutil

import (
	"testing"

	"github.com/wayline/wayline/internal/ports"
)

// FreePort returns a loopback port that is free for both TCP and UDP and
// that no other caller in this process has been given.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := ports.Free()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
