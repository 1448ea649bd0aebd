package router

import "strings"

// The hierarchy. A broker sees its own cluster in full and, at each level
// above it, the units beside its own as complex nodes (see BNM).
// CommonUnit says how far a link must be announced.

// Cluster is the unit a broker's address belongs to directly: its address
// without the last label ("" for an address of one label).
func (a Address) Cluster() Address {
	if i := strings.LastIndexByte(string(a), '.'); i >= 0 {
		return a[:i]
	}
	return ""
}

// CommonUnit returns the smallest unit holding both a and b: the scope
// within which a link between them must be known. "" is the whole network.
func CommonUnit(a, b Address) Address {
	la, lb := a.Labels(), b.Labels()
	n := 0
	for n < len(la) && n < len(lb) && la[n] == lb[n] {
		n++
	}
	// A broker's own address is not a unit of itself: two brokers of one
	// cluster share at most the cluster.
	n = min(n, len(la)-1, len(lb)-1)
	return Address(strings.Join(la[:n], "."))
}
