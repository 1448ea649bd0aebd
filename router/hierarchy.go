package router

import "strings"

// The hierarchy. A broker sees its own cluster in full and, at each level
// above it, the units beside its own as single nodes. Rep says which node
// stands for a broker in a given broker's view; CommonUnit says how far a
// link must be announced.

// Cluster is the unit a broker's address belongs to directly: its address
// without the last label ("" for an address of one label).
func (a Address) Cluster() Address {
	if i := strings.LastIndexByte(string(a), '.'); i >= 0 {
		return a[:i]
	}
	return ""
}

// Rep returns the node that stands for broker a in the network map of
// broker self: a itself when a is in self's cluster, otherwise the largest
// unit that holds a but not self (the unit beside self's own at the level
// where their addresses part).
//
// For self na.cgl.c1.a: na.cgl.c1.b is itself, na.cgl.c2.x is na.cgl.c2,
// na.isi.c1.a is na.isi and eu.kth.c1.a is eu.
func Rep(self, a Address) Address {
	if a.Cluster() == self.Cluster() {
		return a
	}
	n := repLen(string(self), string(a))
	return a[:n]
}

// RepBytes is Rep on bytes, for the forwarding path: it returns the
// prefix of a that stands for it, without allocating.
func RepBytes(self string, a []byte) []byte {
	if sameCluster(self, a) {
		return a
	}
	return a[:repLen(self, a)]
}

// repLen returns the length of the first label-aligned prefix of a that
// is not a prefix of self's units.
func repLen[S string | []byte](self string, a S) int {
	i := 0
	for {
		end := len(a)
		for k := i; k < len(a); k++ {
			if a[k] == '.' {
				end = k
				break
			}
		}
		if end > len(self) || string(a[i:end]) != self[i:end] || (end < len(self) && self[end] != '.') {
			return end
		}
		if end == len(a) {
			return end
		}
		i = end + 1
	}
}

func sameCluster(self string, a []byte) bool {
	i := strings.LastIndexByte(self, '.')
	j := lastDot(a)
	if i != j {
		return false
	}
	return i < 0 || string(a[:j]) == self[:i]
}

func lastDot(a []byte) int {
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] == '.' {
			return i
		}
	}
	return -1
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
