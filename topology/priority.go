package topology

import (
	"fmt"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/wayline/wayline/internal/sendq"
)

// SubjectPriority gives the subjects matching Subject (NATS wildcards
// allowed) a priority class on congested links: high, normal or low.
type SubjectPriority struct {
	Subject string `yaml:"subject"`
	Class   string `yaml:"class"`
}

// SubjectClass is a SubjectPriority parsed.
type SubjectClass struct {
	Subject string
	Class   sendq.Class
}

// parsePriorities checks the priorities block: every rule needs a valid
// subject pattern and a known class.
func parsePriorities(ps []SubjectPriority) ([]SubjectClass, error) {
	var out []SubjectClass
	for i, p := range ps {
		if !server.IsValidSubject(p.Subject) {
			return nil, fmt.Errorf("priorities[%d]: subject: %q is not a subject pattern", i, p.Subject)
		}
		c, err := sendq.ParseClass(p.Class)
		if err != nil {
			return nil, fmt.Errorf("priorities[%d] (%s): class: %w", i, p.Subject, err)
		}
		out = append(out, SubjectClass{Subject: p.Subject, Class: c})
	}
	return out, nil
}
