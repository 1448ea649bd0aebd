package router

import "errors"

// Steering: the one rule by which every broker moves a message on, and by
// which the aggregator follows the way messages take.
//
// Each destination of a message carries a stack of exits, the next one
// last. A broker that owns the next exit sends the message over the
// exit's link and pops it. Any other broker heads for the next exit's
// broker (or, with none left, for the destination), and pushes the exits
// of the route it takes. A broker's own cluster shares its map, so no
// exit names a link of the cluster's brokers unless a held route differs
// from the cheapest (see hold.go); every other link a route crosses is an
// exit, so that a message leaves each unit where its route does.

// MaxExits bounds a destination's stack of exits.
const MaxExits = 64

// Errors of Steer.
var (
	ErrNoRoute      = errors.New("no route")
	ErrTooManyExits = errors.New("too many exits")
)

// Ways is a broker's route table as forwarding uses it (Table is one).
type Ways interface {
	// Way returns the first link and the exits of the route towards
	// target: the route the broker shows when origin is set (the message
	// entered the network at this broker), the cheapest otherwise.
	Way(target Address, origin bool) (Way, bool)
}

// Steer moves one destination of a message on from broker self: it
// returns the link to send it over and its exits from there on. usable
// says whether one of self's links may carry messages now. An exit of
// self's whose link cannot, or an exit whose broker is out of reach (it
// failed, or a link did since the exit was chosen), is dropped with the
// exits under it, and the destination routed afresh. It fails with
// ErrNoRoute when dst cannot be reached and ErrTooManyExits when the
// stack would outgrow MaxExits. The exits given may be reused.
func Steer(w Ways, self, dst Address, exits []Exit, origin bool, usable func(link string) bool) (string, []Exit, error) {
	if k := len(exits) - 1; k >= 0 && exits[k].Broker == self {
		if usable(exits[k].Link) {
			return exits[k].Link, exits[:k], nil
		}
		exits = exits[:0]
	}
	target := dst
	if k := len(exits) - 1; k >= 0 {
		target = exits[k].Broker
	}
	way, ok := w.Way(target, origin)
	if !ok && len(exits) > 0 {
		exits = exits[:0]
		way, ok = w.Way(dst, origin)
	}
	if !ok {
		return "", exits, ErrNoRoute
	}
	if len(exits)+len(way.Exits) > MaxExits {
		return "", exits, ErrTooManyExits
	}
	for i := len(way.Exits) - 1; i >= 0; i-- {
		exits = append(exits, way.Exits[i])
	}
	return way.Link, exits, nil
}
