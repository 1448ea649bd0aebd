// Package netapi is what a Wayline network says over NATS to the clients
// that watch and steer it, the aggregator above all: the reserved subjects,
// the administrative identity, and the messages carried on them (control
// requests and their answers, cost updates, a broker's links as its API
// lists them).
//
// It holds names and types only, so that a broker and an aggregator speak
// the same language without one importing the other. How a broker acts on
// a control message, and how reports and states are encoded (package
// schema), live elsewhere.
package netapi

// Reserved starts the subjects the network uses for itself. Clients may
// subscribe to them but not publish there; only brokers and clients
// signed in as AdminUser may. In a network without an admin token there is
// no admin, and every client may acknowledge reports (see AdminOnly).
const Reserved = "$WL."

// AdminOnly lists, as NATS subject patterns, the reserved subjects that
// no client but an admin may publish on in a network without an admin
// token: every reserved subject but the acknowledgements of reports, so
// that an aggregator works without a token. A new reserved subject is
// added here. (With a token, clients may publish on no reserved subject.)
func AdminOnly() []string {
	return []string{
		Reserved + "*",
		CostSubject("") + ".>",
		PerfSubject(">"),
		StateSubject(">"),
		CtlSubject(">"),
		QueueLoadSubject(">"),
	}
}

// AdminUser is the NATS user name of administrative clients, such as the
// aggregator: with the admin token as password they may publish on the
// network's reserved subjects, control messages included.
const AdminUser = "wayline"

// CostSubject is the subject cost updates of a unit are shown on; "" is
// the whole network.
func CostSubject(unit string) string {
	if unit == "" {
		return Reserved + "cost"
	}
	return Reserved + "cost." + unit
}

// PerfSubject is the subject performance reports of a domain travel on.
func PerfSubject(domain string) string { return Reserved + "perf." + domain }

// PerfAckSubject is the subject a broker takes acknowledgements of its
// reports on.
func PerfAckSubject(address string) string { return Reserved + "perfack." + address }

// StateSubject is the subject the routing states of a domain's brokers
// travel on.
func StateSubject(domain string) string { return Reserved + "state." + domain }

// CtlSubject is the subject a broker takes control messages on.
func CtlSubject(address string) string { return Reserved + "ctl." + address }

// QueueLoadSubject is the subject a broker reports the load of its queue
// group members on, for the groups with the load policy: a JSON object of
// router.QueueLoadFigure by group.
func QueueLoadSubject(address string) string { return Reserved + "qload." + address }
