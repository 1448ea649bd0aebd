package broker

import (
	"fmt"
	"strings"

	"github.com/wayline/wayline/overlay"
)

// validSubject reports whether s is a NATS subject that may carry
// wildcards: non-empty tokens separated by dots, no whitespace, and ">" only
// as the last token.
func validSubject(s string) bool {
	if s == "" || len(s) > maxSubjectLen {
		return false
	}
	toks := strings.Split(s, ".")
	for i, tok := range toks {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
			return false
		}
		if tok == ">" && i != len(toks)-1 {
			return false
		}
	}
	return true
}

// validateSubjects checks a message's subjects before it is handed to a
// leaf, where a malformed one would break the protocol stream. Brokers
// that only pass a message on leave the check to the broker that delivers
// it.
func validateSubjects(m *overlay.Message) error {
	if !validLiteralSubject(m.Subject) {
		return fmt.Errorf("invalid subject %q", m.Subject)
	}
	if m.Reply != nil && !validLiteralSubject(m.Reply) {
		return fmt.Errorf("invalid reply subject %q", m.Reply)
	}
	return nil
}

// validLiteralSubject reports whether s is a subject a message may be
// published on: valid and without wildcard tokens.
func validLiteralSubject(s []byte) bool {
	if len(s) == 0 || len(s) > maxSubjectLen {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			switch s[i] {
			case ' ', '\t', '\r', '\n':
				return false
			case '.':
			default:
				continue
			}
		}
		tok := s[start:i]
		if len(tok) == 0 || (len(tok) == 1 && (tok[0] == '*' || tok[0] == '>')) {
			return false
		}
		start = i + 1
	}
	return true
}

// maxSubjectLen bounds subjects from the network; NATS control lines are
// limited to 4 KiB, and a subject is part of one.
const maxSubjectLen = 4096

// localOnly reports whether interest in a subject stays inside the broker:
// the embedded server's system requests and leafnode loop detection.
func localOnly(subject string) bool {
	return strings.HasPrefix(subject, "$SYS.") || strings.HasPrefix(subject, "$LDS.")
}
