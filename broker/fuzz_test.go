package broker

import (
	"bufio"
	"bytes"
	"math"
	"testing"

	"github.com/wayline/wayline/router"
)

// decodeFrame runs every decoder over a frame, as a session's reader would.
func decodeFrame(frame []byte) error {
	var m message
	var snap snapshotAssembly
	return eachRecord(frame, func(t recType, body []byte) error {
		var err error
		switch t {
		case recMsg:
			err = m.decode(body)
		case recRefuse:
			_, err = decodeStrRecord(body)
		case recPing, recPong, recAck:
			_, err = decodePing(body)
		case recLinkState:
			_, err = decodeLinkState(body)
		case recInterest:
			var u *interestUpdate
			if u, err = decodeInterest(body); err == nil && u.Flags&interestSnapshot != 0 {
				_, err = snap.add(u)
			}
		case recSyncReq:
			_, err = decodeStrRecord(body)
		case recSummary:
			_, err = decodeSummary(body)
		case recCtl:
			var inner []byte
			if _, inner, err = decodeCtl(body); err == nil {
				err = decodeFrame(inner)
			}
		}
		return err
	})
}

// FuzzFrame feeds arbitrary frames to the overlay decoders: they may
// refuse a frame, never crash, and what they accept re-encodes to the same
// bytes.
func FuzzFrame(f *testing.F) {
	f.Add(appendMsg(nil, &message{Origin: []byte("na.a"), Seq: 1, Subject: []byte("a.b"), Reply: []byte("r"), HasHdr: true, HdrLen: 1, Data: []byte("hx")}, 3, []dest{{Broker: []byte("na.b"), Queues: [][]byte{[]byte("q")}}}))
	f.Add(appendMsg(nil, &message{Origin: []byte("na.a"), Seq: 2, Subject: []byte("a.b"), Data: []byte("x")}, 9, []dest{{Broker: []byte("na.b")}, {Broker: []byte("eu.c.d"), Exits: []router.Exit{{Broker: "eu.x.a", Link: "l9"}}}}))
	f.Add(appendInterest(nil, &interestUpdate{Origin: "na.a", Ver: version{1, 2}, Flags: interestSnapshot | interestFirst | interestLast, Ops: []interestOp{{Subject: "a.>", Weight: 1}}}))
	f.Add(appendLinkState(nil, &linkState{Origin: "na.a", Ver: version{1, 1}, Unit: "na", Profiles: []string{"default"}, Links: []lsLink{{ID: "l", Peer: "na.b", Up: true, Costs: []float64{1}, LatencyMs: 0.5}}}))
	f.Add(appendCtl(nil, 1, appendSyncReq(nil, "na.a")))
	f.Add(appendSummary(nil, &summaryRec{Origin: "na.a.c1.x", Unit: "na.a", Ver: version{1, 2}, Profiles: []string{"default"},
		Dests: []router.Dest{{Broker: "na.a.c1.y", Costs: []float64{1}}, {Broker: "na.a.c2.z", Costs: []float64{math.Inf(1)}}}}))
	f.Fuzz(func(t *testing.T, frame []byte) {
		if err := decodeFrame(frame); err != nil {
			return
		}
		// Messages that decode re-encode identically.
		_ = eachRecord(frame, func(typ recType, body []byte) error {
			if typ != recMsg {
				return nil
			}
			var m message
			if m.decode(body) != nil {
				t.Fatal("decoded once, not twice")
			}
			dests := append([]dest(nil), m.Dests...)
			again := appendMsg(nil, &m, m.Hops, dests)
			if !bytes.Equal(again[recordHeader:], body) {
				t.Fatalf("re-encoding differs:\n%x\n%x", again[recordHeader:], body)
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
