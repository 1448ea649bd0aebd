package broker

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/wayline/wayline/overlay"
)

// The hub side of the NATS leafnode protocol, as far as the core needs it.
// Lines end in CRLF; messages are
//
//	LMSG <subject> [<reply>] <size>
//	LMSG <subject> + <reply> <queue>... <size>
//	LMSG <subject> | <queue>... <size>
//	HMSG <subject> [<reply>] <header-size> <total-size>   (and the queue forms)
//
// followed by the payload and CRLF. Interest is LS+ <subject> [<queue>
// <weight>] and LS- <subject> [<queue>].

var errLeafProto = errors.New("leafnode protocol error")

// splitArgs splits a control line's arguments on spaces and tabs into dst.
func splitArgs(dst [][]byte, line []byte) [][]byte {
	dst = dst[:0]
	start := -1
	for i, c := range line {
		if c == ' ' || c == '\t' {
			if start >= 0 {
				dst = append(dst, line[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		dst = append(dst, line[start:])
	}
	return dst
}

// parseSize parses a non-negative decimal size; -1 means invalid.
func parseSize(b []byte) int {
	if len(b) == 0 || len(b) > 9 {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// leafMsg is the header of one LMSG or HMSG. Its slices alias the line.
type leafMsg struct {
	subject []byte
	reply   []byte
	queues  [][]byte
	hdr     int // header size; -1 for LMSG
	size    int // total payload size, headers included
}

// parseMsgArgs parses the arguments of LMSG (hasHdr false) or HMSG.
func parseMsgArgs(m *leafMsg, args [][]byte, hasHdr bool) error {
	sizes := 1
	if hasHdr {
		sizes = 2
	}
	if len(args) < 1+sizes {
		return fmt.Errorf("%w: too few arguments", errLeafProto)
	}
	m.subject, m.reply, m.queues = args[0], nil, m.queues[:0]
	rest := args[1 : len(args)-sizes]
	switch {
	case len(rest) == 0:
	case len(rest) == 1:
		m.reply = rest[0]
	case len(rest[0]) == 1 && rest[0][0] == '+':
		m.reply = rest[1]
		m.queues = append(m.queues, rest[2:]...)
	case len(rest[0]) == 1 && rest[0][0] == '|':
		m.queues = append(m.queues, rest[1:]...)
	default:
		return fmt.Errorf("%w: bad reply indicator %q", errLeafProto, rest[0])
	}
	m.size = parseSize(args[len(args)-1])
	m.hdr = -1
	if hasHdr {
		m.hdr = parseSize(args[len(args)-2])
		if m.hdr < 0 || m.hdr > m.size {
			return fmt.Errorf("%w: bad header size", errLeafProto)
		}
	}
	if m.size < 0 {
		return fmt.Errorf("%w: bad size", errLeafProto)
	}
	if !validLiteralSubject(m.subject) || (m.reply != nil && !validLiteralSubject(m.reply)) {
		return fmt.Errorf("%w: invalid subject", errLeafProto)
	}
	return nil
}

// parseLS parses the arguments of LS+ (add) or LS-.
func parseLS(args [][]byte, add bool) (subject, queue string, weight uint32, err error) {
	switch {
	case len(args) == 1:
		subject, weight = string(args[0]), 1
	case len(args) == 2 && !add:
		subject, queue = string(args[0]), string(args[1])
	case len(args) == 3 && add:
		subject, queue = string(args[0]), string(args[1])
		w := parseSize(args[2])
		if w <= 0 {
			w = 1
		}
		weight = uint32(w)
	default:
		return "", "", 0, fmt.Errorf("%w: bad LS arguments", errLeafProto)
	}
	if !validSubject(subject) {
		return "", "", 0, fmt.Errorf("%w: invalid subject %q", errLeafProto, subject)
	}
	if !add {
		weight = 0
	}
	return subject, queue, weight, nil
}

// appendLeafMsg encodes a message for a leaf.
func appendLeafMsg(b []byte, m *overlay.Message, queues [][]byte) []byte {
	if m.HasHdr {
		b = append(b, "HMSG "...)
	} else {
		b = append(b, "LMSG "...)
	}
	b = append(b, m.Subject...)
	b = append(b, ' ')
	if len(queues) > 0 {
		if len(m.Reply) > 0 {
			b = append(b, "+ "...)
			b = append(b, m.Reply...)
			b = append(b, ' ')
		} else {
			b = append(b, "| "...)
		}
		for _, q := range queues {
			b = append(b, q...)
			b = append(b, ' ')
		}
	} else if len(m.Reply) > 0 {
		b = append(b, m.Reply...)
		b = append(b, ' ')
	}
	if m.HasHdr {
		b = appendInt(b, m.HdrLen)
		b = append(b, ' ')
	}
	b = appendInt(b, len(m.Data))
	b = append(b, '\r', '\n')
	b = append(b, m.Data...)
	return append(b, '\r', '\n')
}

func appendInt(b []byte, n int) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// appendLS encodes an interest line for a leaf.
func appendLS(b []byte, add bool, subject, queue string) []byte {
	if add {
		b = append(b, "LS+ "...)
	} else {
		b = append(b, "LS- "...)
	}
	b = append(b, subject...)
	if queue != "" {
		b = append(b, ' ')
		b = append(b, queue...)
		if add {
			b = append(b, " 1"...)
		}
	}
	return append(b, '\r', '\n')
}

// Leaf protocol operations.
const (
	opUnknown = iota
	opLMSG
	opHMSG
	opLSAdd
	opLSDel
	opPing
	opPong
	opConnect
	opInfo
	opErr
	opOK
)

// leafOp names the operation of a control line and returns its arguments.
func leafOp(line []byte) (op int, args []byte) {
	i := bytes.IndexAny(line, " \t")
	word := line
	if i >= 0 {
		word, args = line[:i], line[i+1:]
	}
	// The hot operations are matched without folding case.
	switch string(word) {
	case "LMSG":
		return opLMSG, args
	case "HMSG":
		return opHMSG, args
	}
	if len(word) > 7 {
		return opUnknown, nil
	}
	var up [7]byte
	for j, c := range word {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[j] = c
	}
	switch string(up[:len(word)]) {
	case "LMSG":
		return opLMSG, args
	case "HMSG":
		return opHMSG, args
	case "LS+":
		return opLSAdd, args
	case "LS-":
		return opLSDel, args
	case "PING":
		return opPing, args
	case "PONG":
		return opPong, args
	case "CONNECT":
		return opConnect, args
	case "INFO":
		return opInfo, args
	case "-ERR":
		return opErr, args
	case "+OK":
		return opOK, args
	}
	return opUnknown, args
}
