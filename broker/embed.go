package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/wayline/wayline/netapi"
	"golang.org/x/crypto/bcrypt"
)

// appUser returns the identity every client gets without credentials: an
// nkey user that may publish anywhere except the network's reserved
// subjects (in a network without an admin token, anywhere but those of
// netapi.AdminOnly). An nkey (rather than a user with a password) needs no
// secret at all, since nobody ever signs in as it.
func appUser(adminToken string) (*server.NkeyUser, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	deny := []string{netapi.Reserved + ">"}
	if adminToken == "" {
		deny = netapi.AdminOnly()
	}
	return &server.NkeyUser{
		Nkey: pub,
		Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Deny: deny},
		},
	}, nil
}

// adminUser returns the administrative identity, or nil when the broker has
// no admin token. The token is kept hashed, at bcrypt's lowest cost: the
// hash lives only in this process's memory, and every sign-in pays the
// cost (bcrypt's default of 10 takes seconds on a busy 2-core machine).
func adminUser(token string) (*server.User, error) {
	if token == "" {
		return nil, nil
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(token), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	return &server.User{Username: netapi.AdminUser, Password: string(hash)}, nil
}

// startNATS starts the embedded nats-server, pointed at the core as a leaf,
// and waits until it has attached.
func (b *Broker) startNATS(ctx context.Context) error {
	host, portStr, _ := net.SplitHostPort(b.cfg.Client)
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("broker %s: client port %q: %w", b.cfg.Address, portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	leafURL, _ := url.Parse("nats://" + b.coreLeafLn.Addr().String())
	app, err := appUser(b.cfg.AdminToken)
	if err != nil {
		return fmt.Errorf("broker %s: client identity: %w", b.cfg.Address, err)
	}
	opts := &server.Options{
		ServerName: b.cfg.Address,
		Host:       host,
		Port:       port,
		MaxPayload: int32(b.cfg.MaxPayload),
		NoSigs:     true,
		// The core never falls behind its own server: it only ever queues,
		// and drops by its own policy when a queue is full. A generous
		// pending limit keeps the server from cutting the leaf off during a
		// burst.
		MaxPending: 256 << 20,
		LeafNode: server.LeafNodeOpts{
			ReconnectInterval: 200 * time.Millisecond,
			Remotes:           []*server.RemoteLeafOpts{{URLs: []*url.URL{leafURL}, Nkey: b.coreSeed()}},
		},
		Nkeys:      []*server.NkeyUser{app},
		NoAuthUser: app.Nkey,
	}
	if b.endsSubj != nil {
		u, kp, err := endsUser(b.cfg.Address)
		if err != nil {
			return fmt.Errorf("broker %s: ends probe identity: %w", b.cfg.Address, err)
		}
		opts.Nkeys = append(opts.Nkeys, u)
		b.ends.key = kp
	}
	admin, err := adminUser(b.cfg.AdminToken)
	if err != nil {
		return fmt.Errorf("broker %s: admin identity: %w", b.cfg.Address, err)
	}
	if admin != nil {
		opts.Users = []*server.User{admin}
	}
	if b.cfg.ShutdownGrace > 0 {
		opts.LameDuckDuration = b.cfg.ShutdownGrace
		opts.LameDuckGracePeriod = b.cfg.ShutdownGrace / 2
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("broker %s: embedded server: %w", b.cfg.Address, err)
	}
	ns.SetLoggerV2(natsLogger{b.log.With(slog.String("part", "nats"))}, false, false, false)
	b.ns = ns
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("broker %s: embedded server not ready for connections on %s", b.cfg.Address, b.cfg.Client)
	}
	select {
	case <-b.leafReady:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("broker %s: embedded server did not attach to the core", b.cfg.Address)
	case <-ctx.Done():
		return fmt.Errorf("broker %s: start: %w", b.cfg.Address, ctx.Err())
	}
}

func (b *Broker) stopNATS() {
	if b.ns == nil {
		return
	}
	if b.cfg.ShutdownGrace > 0 {
		b.ns.LameDuckShutdown()
	} else {
		b.ns.Shutdown()
	}
	b.ns.WaitForShutdown()
}

// natsLogger sends the embedded server's logs to slog.
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l natsLogger) Tracef(format string, v ...any)  {}
