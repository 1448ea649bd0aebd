package aggregator

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/wayline/wayline/netapi"
)

// probeAddress names no broker (addresses are lower case): what the
// aggregator publishes to find out what it may publish reaches no one.
const probeAddress = "PERMISSION-PROBE"

// checkPermissions finds out, once at start, whether the broker lets the
// aggregator acknowledge reports and send control messages, and says
// clearly what it cannot do, rather than meet a permission error on every
// report. A network with an admin token allows both to its admin only; a
// network without one allows acknowledgements to anyone and control
// messages to no one.
func (a *Aggregator) checkPermissions() error {
	ack, err := a.mayPublish(netapi.PerfAckSubject(probeAddress))
	if err != nil {
		return err
	}
	ctl, err := a.mayPublish(netapi.CtlSubject(probeAddress))
	if err != nil {
		return err
	}
	a.canAck.Store(ack)
	a.canControl.Store(ctl)
	switch {
	case !ack:
		a.log.Error("this network has an admin token and the aggregator was started without it: it cannot acknowledge reports (brokers keep them and send them again) or act on its rules; start it with --token or WAYLINE_ADMIN_TOKEN")
	case !ctl && a.cfg.Token == "":
		a.log.Warn("this network has no admin token, so no one may send control messages: the aggregator stores reports and answers queries, and its rules' actions are recorded as refused", slog.Int("rules", len(a.cfg.Rules)))
	case !ctl:
		a.log.Error("the broker does not let the aggregator send control messages although it signed in with a token", slog.String("broker", a.cfg.BrokerURL))
	}
	return nil
}

// mayPublish publishes an empty message on subject and reports whether the
// broker allowed it. The broker answers a forbidden publish before the
// pong of the flush that follows it.
func (a *Aggregator) mayPublish(subject string) (bool, error) {
	if err := a.nc.Publish(subject, nil); err != nil {
		return false, fmt.Errorf("aggregator: %w", err)
	}
	if err := a.nc.Flush(); err != nil {
		return false, fmt.Errorf("aggregator: %w", err)
	}
	err := a.nc.LastError()
	return !(errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), subject)), nil
}
