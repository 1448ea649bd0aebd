package broker

import (
	"fmt"
	"testing"
)

func TestAdmission(t *testing.T) {
	a := &admission{total: 5, perHost: 2, hosts: map[string]int{}}
	var leaves []func()
	enter := func(remote string, want bool) {
		t.Helper()
		leave, ok := a.enter(remote)
		if ok != want {
			t.Fatalf("%s: admitted %v, want %v", remote, ok, want)
		}
		if ok {
			leaves = append(leaves, leave)
		}
	}
	enter("10.0.0.1:1000", true)
	enter("10.0.0.1:1001", true)
	enter("10.0.0.1:1002", false) // its host has two places
	for i := range 3 {
		enter(fmt.Sprintf("10.0.0.%d:1000", i+2), true)
	}
	enter("10.0.0.9:1000", false) // five places in all
	leaves[0]()
	leaves[0]() // giving a place back twice gives it back once
	enter("10.0.0.1:1003", true)
	enter("10.0.0.9:1000", false)
	if a.n != 5 || a.hosts["10.0.0.1"] != 2 {
		t.Fatalf("%d places taken, %d by 10.0.0.1", a.n, a.hosts["10.0.0.1"])
	}
}
