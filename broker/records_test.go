package broker

import (
	"math"
	"reflect"
	"testing"

	"github.com/wayline/wayline/overlay"
	"github.com/wayline/wayline/router"
)

// TestRecordsRoundTrip: the control plane's records come back as they were
// sent, in order.
func TestRecordsRoundTrip(t *testing.T) {
	var buf []byte
	ls := &linkState{Origin: "na.a", Ver: version{Epoch: 1, Seq: 7}, Profiles: []string{"default", "media"}, Links: []lsLink{{ID: "l1", Peer: "na.b", Up: true, Costs: []float64{1.5, 3}, LatencyMs: 1, JitterMs: 0.1, Loss: 0.01,
		Delay: router.Histogram{Missing: 10000, Buckets: []router.Bucket{{Index: 100, Count: 490000}, {Index: 150, Count: 500000}}}}}}
	buf = appendLinkState(buf, ls)
	u := &interestUpdate{Origin: "na.a", Ver: version{Epoch: 1, Seq: 3}, Ops: []interestOp{{Subject: "a.>", Weight: 1}, {Subject: "q", Queue: "workers", Weight: 3}}}
	buf = appendInterest(buf, u)
	buf = appendSyncReq(buf, "na.z")
	sum := &summaryRec{Origin: "na.a.c1.x", Unit: "na.a", Ver: version{Epoch: 1, Seq: 8}, Time: 5, Profiles: []string{"default", "media"},
		Dests: []router.Dest{{Broker: "na.a.c1.y", Costs: []float64{1, 2}, Delay: router.Histogram{Buckets: []router.Bucket{{Index: 7, Count: 1e6}}}}, {Broker: "na.a.c2.z", Costs: []float64{3, math.Inf(1)}}}}
	buf = appendSummary(buf, sum)

	var got []overlay.RecordType
	err := overlay.EachRecord(buf, func(typ overlay.RecordType, body []byte) error {
		got = append(got, typ)
		switch typ {
		case overlay.RecLinkState:
			if ls2, err := decodeLinkState(body); err != nil || !reflect.DeepEqual(ls2, ls) {
				t.Errorf("link state %+v %v", ls2, err)
			}
		case overlay.RecInterest:
			if u2, err := decodeInterest(body); err != nil || !reflect.DeepEqual(u2, u) {
				t.Errorf("interest %+v %v", u2, err)
			}
		case overlay.RecSyncReq:
			if o, err := overlay.DecodeStrRecord(body); err != nil || o != "na.z" {
				t.Errorf("sync %q %v", o, err)
			}
		case overlay.RecSummary:
			if s2, err := decodeSummary(body); err != nil || !reflect.DeepEqual(s2, sum) {
				t.Errorf("summary %+v %v", s2, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []overlay.RecordType{overlay.RecLinkState, overlay.RecInterest, overlay.RecSyncReq, overlay.RecSummary}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
}

// TestMalformedRecords: a message with a wildcard subject is refused before
// delivery, and an interest record with a forged count is refused.
func TestMalformedRecords(t *testing.T) {
	bad := overlay.AppendMsg(nil, &overlay.Message{Origin: []byte("o"), Subject: []byte("a.*")}, 1, nil)
	err := overlay.EachRecord(bad, func(_ overlay.RecordType, body []byte) error {
		var m overlay.Message
		if err := m.Decode(body); err != nil {
			return err
		}
		return validateSubjects(&m)
	})
	if err == nil {
		t.Fatal("accepted a wildcard subject")
	}
	forged := appendInterest(nil, &interestUpdate{Origin: "o"})
	forged[len(forged)-1] = 0xff // op count with no ops behind it
	forged = append(forged, 0x7f)
	forged[4]++ // body length
	if err := overlay.EachRecord(forged, func(_ overlay.RecordType, body []byte) error { _, err := decodeInterest(body); return err }); err == nil {
		t.Fatal("accepted a forged count")
	}
}

// TestBadSummaries: a summary that lists brokers outside its unit or out
// of order, comes from outside its unit, summarises the root or prices a
// broker at a negative or NaN cost is refused.
func TestBadSummaries(t *testing.T) {
	good := func() *summaryRec {
		return &summaryRec{Origin: "na.a.c1.x", Unit: "na.a", Profiles: []string{"default"},
			Dests: []router.Dest{{Broker: "na.a.c1.y", Costs: []float64{1}}, {Broker: "na.a.c2.z", Costs: []float64{3}}}}
	}
	for _, tc := range []struct {
		name string
		edit func(*summaryRec)
	}{
		{"origin outside its unit", func(s *summaryRec) { s.Origin = "na.b.c1.x" }},
		{"the root", func(s *summaryRec) { s.Unit = "" }},
		{"the origin's own address as unit", func(s *summaryRec) { s.Unit = s.Origin }},
		{"brokers out of order", func(s *summaryRec) { s.Dests[0], s.Dests[1] = s.Dests[1], s.Dests[0] }},
		{"the origin listed", func(s *summaryRec) { s.Dests[0].Broker = "na.a.c1.x" }},
		{"a negative cost", func(s *summaryRec) { s.Dests[1].Costs[0] = -1 }},
		{"a NaN cost", func(s *summaryRec) { s.Dests[1].Costs[0] = math.NaN() }},
		{"a bad address", func(s *summaryRec) { s.Dests[1].Broker = "na.a.C2" }},
	} {
		s := good()
		tc.edit(s)
		if err := overlay.EachRecord(appendSummary(nil, s), func(_ overlay.RecordType, body []byte) error { _, err := decodeSummary(body); return err }); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if err := overlay.EachRecord(appendSummary(nil, good()), func(_ overlay.RecordType, body []byte) error { _, err := decodeSummary(body); return err }); err != nil {
		t.Fatalf("good summary refused: %v", err)
	}
}
