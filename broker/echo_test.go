package broker

import (
	"testing"
	"time"
)

// TestOwnEcho: a record of our own from an earlier run that this run does
// not make is withdrawn by a newer, empty one; one from a later run (the
// clock went back) moves our epoch past it.
func TestOwnEcho(t *testing.T) {
	b, err := New(Config{Address: "na.c1.a", Client: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	old := version{Epoch: b.epoch - uint64(time.Hour), Seq: 40}
	b.onLinkState(nil, &linkState{Origin: "na.c1.a", Unit: "na", Ver: old,
		Links: []lsLink{{ID: "gone", Peer: "na.c2.x", Up: true, Costs: []float64{1}}}})
	w := b.lsdb[lsKey{"na.c1.a", "na"}]
	if w == nil || len(w.Links) != 0 || !w.Ver.newer(old) {
		t.Fatalf("an earlier run's link state is not withdrawn: %+v", w)
	}
	b.onSummary(nil, &summaryRec{Origin: "na.c1.a", Unit: "na.c1", Ver: old})
	if s := b.sumdb[lsKey{"na.c1.a", "na.c1"}]; s == nil || len(s.Dests) != 0 || !s.Ver.newer(old) {
		t.Fatalf("an earlier run's summary is not withdrawn: %+v", s)
	}
	later := version{Epoch: b.epoch + uint64(time.Minute), Seq: 3}
	b.onLinkState(nil, &linkState{Origin: "na.c1.a", Unit: "na", Ver: later})
	if b.epoch <= later.Epoch || !b.lsdb[lsKey{"na.c1.a", "na"}].Ver.newer(later) {
		t.Fatalf("epoch %d, record %+v: not past the later run's %+v", b.epoch, b.lsdb[lsKey{"na.c1.a", "na"}].Ver, later)
	}
	// A record from far in the future, forged, moves nothing.
	epoch := b.epoch
	b.onLinkState(nil, &linkState{Origin: "na.c1.a", Unit: "na", Ver: version{Epoch: b.epoch + uint64(24*time.Hour)}})
	if b.epoch != epoch {
		t.Fatalf("a forged epoch a day ahead moved ours")
	}
}
