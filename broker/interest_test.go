package broker

import (
	"reflect"
	"testing"

	"github.com/wayline/wayline/overlay"
)

func TestInterestDeltasAndSnapshots(t *testing.T) {
	db := newInterestDB(1)
	ops := func(subjects ...string) []interestOp {
		var out []interestOp
		for _, s := range subjects {
			out = append(out, interestOp{Subject: s, Weight: 1})
		}
		return out
	}
	subjects := func(origin string) []string {
		_, got, ok := db.snapshotOps("self", origin)
		if !ok {
			return nil
		}
		var out []string
		for _, op := range got {
			out = append(out, op.Subject)
		}
		return out
	}
	// A delta from a broker we hold nothing of cannot apply.
	if r := db.applyDelta(&interestUpdate{Origin: "x", Ver: version{5, 1}, Ops: ops("a", "b")}); r != applyGap {
		t.Fatalf("delta before any snapshot: %v", r)
	}
	if r := db.applySnapshot("x", version{5, 0}, nil); r != applyDone {
		t.Fatalf("empty snapshot: %v", r)
	}
	if r := db.applyDelta(&interestUpdate{Origin: "x", Ver: version{5, 1}, Ops: ops("a", "b")}); r != applyDone {
		t.Fatalf("first delta: %v", r)
	}
	if r := db.applyDelta(&interestUpdate{Origin: "x", Ver: version{5, 1}, Ops: ops("c")}); r != applyStale {
		t.Fatalf("repeated delta: %v", r)
	}
	if r := db.applyDelta(&interestUpdate{Origin: "x", Ver: version{5, 3}, Ops: ops("c")}); r != applyGap {
		t.Fatalf("delta after a gap: %v", r)
	}
	if r := db.applySnapshot("x", version{5, 3}, ops("b", "c")); r != applyDone {
		t.Fatalf("snapshot: %v", r)
	}
	if got := subjects("x"); !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Fatalf("after snapshot: %v", got)
	}
	if r := db.applyDelta(&interestUpdate{Origin: "x", Ver: version{5, 4}, Ops: []interestOp{{Subject: "b"}}}); r != applyDone {
		t.Fatalf("removal: %v", r)
	}
	if got := subjects("x"); !reflect.DeepEqual(got, []string{"c"}) {
		t.Fatalf("after removal: %v", got)
	}
	// A restart (later epoch) supersedes, whatever its sequence number.
	if r := db.applySnapshot("x", version{6, 1}, ops("z")); r != applyDone {
		t.Fatalf("restart: %v", r)
	}
	if got := subjects("x"); !reflect.DeepEqual(got, []string{"z"}) {
		t.Fatalf("after restart: %v", got)
	}
	if r := db.match("z"); len(r.brokers) != 1 || string(r.brokers[0]) != "x" {
		t.Fatalf("match: %+v", r)
	}
	db.purge("x")
	if r := db.match("z"); len(r.brokers) != 0 {
		t.Fatalf("match after purge: %+v", r)
	}
}

func TestSnapshotParts(t *testing.T) {
	var ops []interestOp
	for i := range 5000 {
		ops = append(ops, interestOp{Subject: "subject.number." + string(rune('a'+i%26)) + "." + itoa(i), Weight: 1})
	}
	rec := appendSnapshot(nil, "x", version{1, 9}, ops)
	var a snapshotAssembly
	parts, done := 0, false
	if err := overlay.EachRecord(rec, func(_ overlay.RecordType, body []byte) error {
		u, err := decodeInterest(body)
		if err != nil {
			return err
		}
		parts++
		done, err = a.add(u)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if parts < 2 || !done || !reflect.DeepEqual(a.ops, ops) {
		t.Fatalf("parts %d done %v ops %d", parts, done, len(a.ops))
	}
	// A part out of sequence is refused.
	var b snapshotAssembly
	if _, err := b.add(&interestUpdate{Origin: "x", Ver: version{1, 1}, Flags: interestSnapshot}); err == nil {
		t.Fatal("accepted a middle part first")
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}
