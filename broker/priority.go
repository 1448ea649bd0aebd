package broker

import (
	"fmt"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/wayline/wayline/internal/sendq"
	"github.com/wayline/wayline/topology"
)

// Priority classes on congested links. A message's class is decided once,
// where it enters the network, from the first rule of
// Routing.Priorities its subject matches (normal when none), and travels
// in the message (overlay.Message.Class): every hop queues it in that
// class without matching its subject again. A link's send queue serves
// the classes from the highest with bounded starvation of the lower ones,
// and drops the lowest first (package sendq).

// validatePriorities checks priority rules given in a Config.
func validatePriorities(ps []topology.SubjectClass) error {
	for i, p := range ps {
		if !validSubject(p.Subject) {
			return fmt.Errorf("priorities[%d]: invalid subject %q", i, p.Subject)
		}
		if p.Class >= sendq.NumClasses {
			return fmt.Errorf("priorities[%d] (%s): unknown class %d", i, p.Subject, p.Class)
		}
	}
	return nil
}

// classFor is the priority class of a literal subject.
func (b *Broker) classFor(subject string) sendq.Class {
	for _, p := range b.cfg.Routing.Priorities {
		if server.SubjectMatchesFilter(subject, p.Subject) {
			return p.Class
		}
	}
	return sendq.Normal
}
