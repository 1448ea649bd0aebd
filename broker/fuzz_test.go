package broker

import (
	"bufio"
	"bytes"
	"math"
	"testing"

	"github.com/wayline/wayline/overlay"
	"github.com/wayline/wayline/router"
)

// decodeControl runs the control plane's decoders over a frame of control
// records, as a session's Control would; interest snapshots are
// assembled. The overlay's own records are fuzzed there (FuzzFrame).
func decodeControl(frame []byte) error {
	var snap snapshotAssembly
	return overlay.EachRecord(frame, func(t overlay.RecordType, body []byte) error {
		var err error
		switch t {
		case overlay.RecLinkState:
			_, err = decodeLinkState(body)
		case overlay.RecInterest:
			var u *interestUpdate
			if u, err = decodeInterest(body); err == nil && u.Flags&interestSnapshot != 0 {
				_, err = snap.add(u)
			}
		case overlay.RecSyncReq:
			_, err = overlay.DecodeStrRecord(body)
		case overlay.RecSummary:
			_, err = decodeSummary(body)
		}
		return err
	})
}

// FuzzControlRecords feeds arbitrary frames to the control plane's
// decoders: they may refuse a frame, never crash, and the cost updates
// and interest they accept re-encode to the same bytes.
func FuzzControlRecords(f *testing.F) {
	f.Add(appendInterest(nil, &interestUpdate{Origin: "na.a", Ver: version{1, 2}, Flags: interestSnapshot | interestFirst | interestLast, Ops: []interestOp{{Subject: "a.>", Weight: 1}}}))
	f.Add(appendLinkState(nil, &linkState{Origin: "na.a", Ver: version{1, 1}, Unit: "na", Profiles: []string{"default"}, Links: []lsLink{{ID: "l", Peer: "na.b", Up: true, Costs: []float64{1}, LatencyMs: 0.5}}}))
	f.Add(appendLinkState(nil, &linkState{Origin: "na.a", Ver: version{1, 1}, Unit: "na", Profiles: []string{"default"}, Links: []lsLink{{ID: "l", Peer: "na.b", Up: true, Costs: []float64{1}, LatencyMs: 45,
		Delay: router.HistogramOf([]float64{44, 45, 45.5, 46, 51, 120}, 1)}}}))
	f.Add(appendSyncReq(nil, "na.a"))
	f.Add(appendSummary(nil, &summaryRec{Origin: "na.a.c1.x", Unit: "na.a", Ver: version{1, 2}, Profiles: []string{"default"},
		Dests: []router.Dest{{Broker: "na.a.c1.y", Costs: []float64{1}}, {Broker: "na.a.c2.z", Costs: []float64{math.Inf(1)}}}}))
	f.Fuzz(func(t *testing.T, frame []byte) {
		if err := decodeControl(frame); err != nil {
			return
		}
		_ = overlay.EachRecord(frame, func(typ overlay.RecordType, body []byte) error {
			var again []byte
			switch typ {
			case overlay.RecLinkState:
				ls, _ := decodeLinkState(body)
				again = appendLinkState(nil, ls)
			case overlay.RecInterest:
				u, _ := decodeInterest(body)
				again = appendInterest(nil, u)
			default:
				return nil
			}
			if !bytes.Equal(again[overlay.RecordHeader:], body) {
				t.Fatalf("%s re-encoding differs:\n%x\n%x", typ, again[overlay.RecordHeader:], body)
			}
			return nil
		})
	})
}

// FuzzLeafLine feeds arbitrary bytes to the leafnode protocol parser the
// way a leaf connection reads them: it may refuse, never crash.
func FuzzLeafLine(f *testing.F) {
	for _, s := range []string{
		"CONNECT {\"name\":\"x\"}\r\nLS+ foo.>\r\nLS+ bar q 3\r\nLMSG foo.a + r q 2\r\nhi\r\n",
		"HMSG foo r 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n",
		"LS- foo\r\nLMSG foo | q1 q2 0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(data), 4096)
		var args [][]byte
		var lm leafMsg
		for {
			raw, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			op, rest := leafOp(trimCRLF(raw))
			switch op {
			case opLMSG, opHMSG:
				args = splitArgs(args, rest)
				if parseMsgArgs(&lm, args, op == opHMSG) != nil {
					return
				}
				if lm.hdr > lm.size || lm.size < 0 {
					t.Fatalf("accepted header %d over size %d", lm.hdr, lm.size)
				}
				if _, err := readPayload(r, lm.size); err != nil {
					return
				}
			case opLSAdd, opLSDel:
				subject, _, weight, err := parseLS(splitArgs(args, rest), op == opLSAdd)
				if err == nil && (!validSubject(subject) || (op == opLSDel && weight != 0)) {
					t.Fatalf("accepted %q weight %d", subject, weight)
				}
			}
		}
	})
}
