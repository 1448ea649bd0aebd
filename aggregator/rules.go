package aggregator

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/antchfx/xpath"
	"github.com/nats-io/nats.go"
	"go.yaml.in/yaml/v3"

	"github.com/wayline/wayline/aggregator/store"
	"github.com/wayline/wayline/netapi"
	"github.com/wayline/wayline/schema"
)

// Rule turns a condition on links into an action on them. When is an
// XPath expression evaluated on every report (a document holding that
// report's broker and its links, as in the latest view); every link
// element it selects, or that contains a node it selects, is acted on.
// With Undo, the action is undone when a link no longer matches.
//
//	rules:
//	  - when: "//link[@loss > 0.05]"
//	    do: {interval: 250ms}
//	    undo: true
//	  - when: "//link[latency/@p99 > 500]"
//	    do: stop-measurement
//	  - when: "//link[@loss > 0.2]"
//	    do: exclude-from-routing
//	    undo: true
//	  - when: "//link[contract/@status = 'breached']"
//	    do: {interval: 100ms}
//	    undo: true
type Rule struct {
	Name string `yaml:"name,omitempty"`
	When string `yaml:"when"`
	Do   Action `yaml:"do"`
	Undo bool   `yaml:"undo,omitempty"`
}

// Action is what a rule does to a link: set its measurement interval,
// stop or start measurement, or take it out of routing or put it back.
type Action struct {
	Interval time.Duration
	Op       string // stop-measurement, start-measurement, exclude-from-routing, include-in-routing; "" with Interval
}

// The actions a rule may take.
const (
	OpStop    = "stop-measurement"
	OpStart   = "start-measurement"
	OpExclude = "exclude-from-routing"
	OpInclude = "include-in-routing"
)

// actionChoices says what an action may be, in both the config file's
// form and the admin page's.
var actionChoices = fmt.Sprintf("%s, %s, %s, %s, or an interval from 10ms to 60s ({interval: 250ms} in a config file, interval 250ms on the admin page)",
	OpStop, OpStart, OpExclude, OpInclude)

// UnmarshalYAML reads an action written as one of the operation names or
// as {interval: 250ms}.
func (a *Action) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case OpStop, OpStart, OpExclude, OpInclude:
			a.Op = n.Value
			return nil
		}
		return fmt.Errorf("line %d: unknown action %q: want %s", n.Line, n.Value, actionChoices)
	}
	var m struct {
		Interval string `yaml:"interval"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	d, err := time.ParseDuration(m.Interval)
	if err != nil || d < 10*time.Millisecond || d > time.Minute {
		return fmt.Errorf("line %d: interval %q: want a duration from 10ms to 60s", n.Line, m.Interval)
	}
	a.Interval = d
	return nil
}

func (a Action) String() string {
	if a.Op != "" {
		return a.Op
	}
	return "interval " + a.Interval.String()
}

// compile checks r, naming every problem, and names it by its When when
// it has no name.
func (r *Rule) compile() error {
	if err := errors.Join(r.checkWhen(), r.checkDo()); err != nil {
		return err
	}
	if r.Name == "" {
		r.Name = r.When
	}
	return nil
}

func (r *Rule) checkWhen() error {
	if r.When == "" {
		return errors.New("when: required")
	}
	if _, err := Compile(r.When); err != nil {
		return fmt.Errorf("when: %w", err)
	}
	return nil
}

func (r *Rule) checkDo() error {
	if r.Do.Op == "" && r.Do.Interval == 0 {
		return errors.New("do: required")
	}
	return nil
}

// request is the control message that carries out the action on a link,
// or undoes it.
func (a Action) request(link string, undo bool) map[string]any {
	req := map[string]any{"link": link}
	switch {
	case a.Op == OpStop || a.Op == OpStart:
		req["op"] = "monitoring"
		req["enabled"] = (a.Op == OpStart) != undo
	case a.Op == OpExclude || a.Op == OpInclude:
		req["op"] = "routing"
		req["exclude"] = (a.Op == OpExclude) != undo
	case undo:
		req["op"] = "monitoring"
		req["reset"] = true
	default:
		req["op"] = "monitoring"
		req["interval"] = a.Interval.String()
	}
	return req
}

// actionKey names one rule applied to one link at one of its ends (each
// end acts on its own measurements).
type actionKey struct {
	rule   *Rule
	broker string
	link   string
}

// rulePointers gives each rule of a config its own identity.
func rulePointers(rules []Rule) []*Rule {
	out := make([]*Rule, len(rules))
	for i := range rules {
		out[i] = &rules[i]
	}
	return out
}

// Rules is the rules in force, in order.
func (a *Aggregator) Rules() []Rule {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Rule, len(a.rules))
	for i, r := range a.rules {
		out[i] = *r
	}
	return out
}

// AddRule compiles r and adds it after the others; its name (its When if
// it has none) must be new. It takes effect on the next reports.
// Outcomes: nil, or an error that joins every problem with r.
func (a *Aggregator) AddRule(r Rule) error {
	err := r.compile()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err = errors.Join(err, a.nameTaken(r)); err != nil {
		return err
	}
	a.rules = append(slices.Clone(a.rules), &r)
	a.log.Info("rule added", slog.String("rule", r.Name), slog.String("when", r.When), slog.String("do", r.Do.String()))
	return nil
}

// AddRuleText adds a rule written as the admin page takes it (see
// ParseAction for do), as AddRule does. Outcomes: nil, or an error that
// joins every problem with it.
func (a *Aggregator) AddRuleText(name, when, do string, undo bool) error {
	act, err := ParseAction(do)
	r := Rule{Name: name, When: when, Do: act, Undo: undo}
	if err == nil {
		return a.AddRule(r)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return errors.Join(r.checkWhen(), fmt.Errorf("do: %w", err), a.nameTaken(r))
}

// nameTaken fails when a rule of r's name (its When when it has none) is
// in force. a.mu is held.
func (a *Aggregator) nameTaken(r Rule) error {
	name := cmp.Or(r.Name, r.When)
	for _, x := range a.rules {
		if name != "" && x.Name == name {
			return fmt.Errorf("name: there is a rule %q already", name)
		}
	}
	return nil
}

// RemoveRule removes the rule named name. When the rule undoes its
// actions, what it did is undone now (as when its condition clears); the
// control messages go out before RemoveRule returns, or until ctx ends.
func (a *Aggregator) RemoveRule(ctx context.Context, name string) error {
	a.mu.Lock()
	i := slices.IndexFunc(a.rules, func(r *Rule) bool { return r.Name == name })
	if i < 0 {
		a.mu.Unlock()
		return fmt.Errorf("no rule %q", name)
	}
	r := a.rules[i]
	a.rules = slices.Delete(slices.Clone(a.rules), i, i+1)
	// Its actions under way finish first, so that what they did is
	// undone too.
	for a.inflight[r] > 0 {
		a.idle.Wait()
	}
	var undo []actionKey
	for k, on := range a.applied {
		if k.rule == r {
			if on && r.Undo {
				undo = append(undo, k)
			} else {
				delete(a.applied, k)
			}
		}
	}
	a.mu.Unlock()
	a.log.Info("rule removed", slog.String("rule", name), slog.Int("undoing", len(undo)))
	for _, k := range undo {
		if ctx.Err() != nil {
			return fmt.Errorf("rule %q removed; undoing its actions: %w", name, ctx.Err())
		}
		a.act(r, k, k.broker, true)
	}
	a.mu.Lock()
	for _, k := range undo {
		delete(a.applied, k)
	}
	a.mu.Unlock()
	return nil
}

// ParseAction reads an action as the admin page takes it: an operation's
// name, "interval D", or the config file's {interval: D}.
func ParseAction(s string) (Action, error) {
	var a Action
	s = strings.TrimSpace(s)
	n := yaml.Node{Kind: yaml.ScalarNode, Value: s, Line: 1}
	d, ok := strings.CutPrefix(s, "interval ")
	if !ok {
		if inner, braced := strings.CutPrefix(s, "{"); braced {
			inner, _ = strings.CutSuffix(inner, "}")
			d, ok = strings.CutPrefix(strings.TrimSpace(inner), "interval:")
		}
	}
	if ok {
		n = yaml.Node{Kind: yaml.MappingNode, Line: 1, Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Value: "interval"}, {Kind: yaml.ScalarNode, Value: strings.TrimSpace(d)}}}
	} else if s == "" {
		return Action{}, errors.New("required: " + actionChoices)
	}
	if err := a.UnmarshalYAML(&n); err != nil {
		return Action{}, errors.New(strings.TrimPrefix(err.Error(), "line 1: "))
	}
	return a, nil
}

// evaluate runs every rule on a report and acts on what changed. exprs
// holds the rules compiled by the calling worker: an xpath.Expr keeps
// state as it runs, and each broker's rules run in a worker of their own.
func (a *Aggregator) evaluate(rep schema.Report, exprs map[*Rule]*xpath.Expr) {
	a.mu.Lock()
	rules := a.rules
	a.mu.Unlock()
	if len(rules) == 0 {
		return
	}
	v := latestView([]schema.Report{rep}, rep.Time).withContracts(a)
	for _, r := range rules {
		matched := map[string]bool{}
		expr := exprs[r]
		if expr == nil {
			var err error
			if expr, err = Compile(r.When); err != nil { // compile checked it when the rule came
				a.log.Warn("rule failed", slog.String("rule", r.Name), slog.Any("err", err))
				continue
			}
			exprs[r] = expr
		}
		res, err := Evaluate(a.ctx, v, expr, 1<<20)
		if err != nil {
			a.log.Warn("rule failed", slog.String("rule", r.Name), slog.Any("err", err))
			continue
		}
		for _, n := range res.Nodes {
			if id := n.LinkID(); id != "" {
				matched[id] = true
			}
		}
		for _, l := range rep.Links {
			k := actionKey{r, rep.Broker, l.ID}
			a.mu.Lock()
			was := a.applied[k]
			a.mu.Unlock()
			switch {
			case matched[l.ID] && !was:
				a.act(r, k, rep.Broker, false)
			case !matched[l.ID] && was && r.Undo:
				a.act(r, k, rep.Broker, true)
			}
		}
	}
}

// act carries out one rule's action on a link, or undoes it.
func (a *Aggregator) act(r *Rule, k actionKey, brokerAddr string, undo bool) {
	action := r.Do.String()
	if undo {
		action = "undo " + action
	}
	a.mu.Lock()
	if !undo && !slices.Contains(a.rules, r) {
		a.mu.Unlock() // removed since the report was evaluated
		return
	}
	a.inflight[r]++
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		if a.inflight[r]--; a.inflight[r] == 0 {
			delete(a.inflight, r)
		}
		a.idle.Broadcast()
		a.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(a.ctx, 15*time.Second)
	defer cancel()
	rec := store.Action{Rule: r.Name, Broker: brokerAddr, Link: k.link, Action: action, Undo: undo}
	if err := a.control(ctx, rec, r.Do.request(k.link, undo)); err != nil {
		return
	}
	// A rule removed meanwhile waits for this, then undoes what it did.
	a.mu.Lock()
	a.applied[k] = !undo
	a.mu.Unlock()
}

// ctlAttempts and ctlWait bound a control request: a request, or its
// answer, can be lost while routes change (a link just went down or came
// back), so it is asked again; every control operation sets a state, so
// asking twice does no harm.
const (
	ctlAttempts = 4
	ctlWait     = 2 * time.Second
)

// request asks subject and waits for the answer, again after a timeout.
func (a *Aggregator) request(ctx context.Context, subject string, data []byte) (*nats.Msg, error) {
	var err error
	for range ctlAttempts {
		reqCtx, cancel := context.WithTimeout(ctx, ctlWait)
		var msg *nats.Msg
		msg, err = a.nc.RequestWithContext(reqCtx, subject, data)
		cancel()
		if err == nil || ctx.Err() != nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders)) {
			return msg, err
		}
		if errors.Is(err, nats.ErrNoResponders) {
			// No route yet: give the network a moment.
			select {
			case <-ctx.Done():
				return nil, err
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	return nil, fmt.Errorf("no answer after %d tries of %v: %w", ctlAttempts, ctlWait, err)
}

// errNoControl: the broker does not let this aggregator send control
// messages (see checkPermissions).
var errNoControl = errors.New("this aggregator may not send control messages: the network has no admin token, or the aggregator lacks it")

// control sends one control message, req, to rec.Broker, waits for its
// answer (asking again, up to ctlAttempts times), and records rec, the
// action of a rule (or of "admin") with its outcome; it returns the
// broker's refusal or the failure to reach it.
func (a *Aggregator) control(ctx context.Context, rec store.Action, req map[string]any) error {
	js, _ := json.Marshal(req)
	rec.Time, rec.Request = time.Now(), string(js)
	brokerAddr := rec.Broker
	var msg *nats.Msg
	err := errNoControl
	if a.canControl.Load() {
		msg, err = a.request(ctx, netapi.CtlSubject(brokerAddr), js)
	}
	if err == nil {
		var reply netapi.CtlReply
		if err = json.Unmarshal(msg.Data, &reply); err == nil && !reply.OK {
			err = errors.New(reply.Error)
		}
	}
	if err != nil {
		err = fmt.Errorf("broker %s: %w", brokerAddr, err)
	}
	rec.OK = err == nil
	if err != nil {
		rec.Error = err.Error()
		a.log.Warn("control action failed", slog.String("rule", rec.Rule), slog.String("broker", brokerAddr), slog.String("link", rec.Link), slog.Any("err", err))
	} else {
		a.log.Info("control action", slog.String("rule", rec.Rule), slog.String("broker", brokerAddr), slog.String("link", rec.Link), slog.String("action", rec.Action))
	}
	a.stats.Actions.Add(1)
	a.live.Publish("action."+brokerAddr, liveEvent("action", brokerAddr, 0))
	storeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := a.store.RecordAction(storeCtx, rec); serr != nil {
		a.log.Warn("recording an action failed", slog.Any("err", serr))
	}
	return err
}

// rulesLoop hands each report to its broker's own rules worker, apart
// from the receiving path: an action waits for its broker's answer (up to
// 8 s when the broker is out of reach), and one broker's wait must not
// hold up the rules of the others.
func (a *Aggregator) rulesLoop() {
	workers := map[string]chan schema.Report{}
	for {
		select {
		case <-a.ctx.Done():
			return
		case rep := <-a.rulesCh:
			ch := workers[rep.Broker]
			if ch == nil {
				ch = make(chan schema.Report, 1)
				workers[rep.Broker] = ch
				a.wg.Go(func() { a.brokerRules(ch) })
			}
			// Rules look at a broker's latest state, so a report not yet
			// evaluated gives way to a newer one.
			select {
			case <-ch:
			default:
			}
			ch <- rep
		}
	}
}

// brokerRules evaluates the rules on one broker's reports, the latest
// each time it is free.
func (a *Aggregator) brokerRules(ch <-chan schema.Report) {
	exprs := map[*Rule]*xpath.Expr{}
	for {
		select {
		case <-a.ctx.Done():
			return
		case rep := <-ch:
			a.evaluate(rep, exprs)
			// Forget the rules removed since.
			a.mu.Lock()
			for r := range exprs {
				if !slices.Contains(a.rules, r) {
					delete(exprs, r)
				}
			}
			a.mu.Unlock()
		}
	}
}
