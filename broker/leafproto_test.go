package broker

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/wayline/wayline/overlay"
)

func TestLeafMsgArgs(t *testing.T) {
	tests := []struct {
		line   string
		hdr    bool
		reply  string
		queues []string
		size   int
		hsize  int
		bad    bool
	}{
		{line: "foo 5", size: 5, hsize: -1},
		{line: "foo bar 5", reply: "bar", size: 5, hsize: -1},
		{line: "foo + bar q1 q2 5", reply: "bar", queues: []string{"q1", "q2"}, size: 5, hsize: -1},
		{line: "foo | q1 5", queues: []string{"q1"}, size: 5, hsize: -1},
		{line: "foo 12 20", hdr: true, size: 20, hsize: 12},
		{line: "foo bar 12 20", hdr: true, reply: "bar", size: 20, hsize: 12},
		{line: "foo + bar q 12 20", hdr: true, reply: "bar", queues: []string{"q"}, size: 20, hsize: 12},
		{line: "foo 30 20", hdr: true, bad: true},
		{line: "foo ? q 5", bad: true},
		{line: "foo x", bad: true},
		{line: "fo*o.> 5", bad: true},
		{line: "5", bad: true},
	}
	for _, tc := range tests {
		var m leafMsg
		err := parseMsgArgs(&m, splitArgs(nil, []byte(tc.line)), tc.hdr)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: accepted", tc.line)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		var qs []string
		for _, q := range m.queues {
			qs = append(qs, string(q))
		}
		if string(m.reply) != tc.reply || !reflect.DeepEqual(qs, tc.queues) || m.size != tc.size || m.hdr != tc.hsize {
			t.Errorf("%q: got reply %q queues %v size %d hdr %d", tc.line, m.reply, qs, m.size, m.hdr)
		}
	}
}

func TestLeafMsgEncoding(t *testing.T) {
	m := &overlay.Message{Subject: []byte("a.b"), Reply: []byte("r"), Data: []byte("hi")}
	if got := string(appendLeafMsg(nil, m, nil)); got != "LMSG a.b r 2\r\nhi\r\n" {
		t.Fatalf("got %q", got)
	}
	if got := string(appendLeafMsg(nil, m, [][]byte{[]byte("q")})); got != "LMSG a.b + r q 2\r\nhi\r\n" {
		t.Fatalf("got %q", got)
	}
	m.Reply = nil
	m.HasHdr, m.HdrLen = true, 1
	if got := string(appendLeafMsg(nil, m, [][]byte{[]byte("q")})); got != "HMSG a.b | q 1 2\r\nhi\r\n" {
		t.Fatalf("got %q", got)
	}
	if !bytes.Equal(appendLS(nil, true, "s", "q"), []byte("LS+ s q 1\r\n")) || !bytes.Equal(appendLS(nil, false, "s", ""), []byte("LS- s\r\n")) {
		t.Fatal("LS encoding")
	}
}
