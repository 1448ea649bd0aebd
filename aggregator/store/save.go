package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// measurementCols are the columns one measurement fills, in the order
// insertMeasurements gives them.
var measurementCols = []string{
	"link_id", "broker_id", "t", "state", "monitor", "rtt", "lat_mean", "jitter", "loss", "detail",
}

var (
	brokerCols = []string{"address", "domain", "first_seen", "last_seen", "last_seq"}
	linkCols   = []string{"uuid", "a_broker", "b_broker", "transport", "last_seen"}
	reportCols = []string{"broker_id", "seq", "t", "received_at", "links", "gap", "bytes"}
)

// saveAttempts is how often a batch is tried when the database reports a
// deadlock or a lock timeout, which concurrent upserts of the same brokers
// can cause on MySQL.
const saveAttempts = 3

// brokerSeen is what a batch says about one broker: seen reporting (last
// > 0) or only named as a link's peer.
type brokerSeen struct {
	address, domain string
	first, last     int64
	seq             uint64
}

// linkSeen is what a batch says about one link.
type linkSeen struct {
	id, a, b, transport string
	last                int64
}

// batchPlan is a batch's brokers and links, each once, sorted so that
// concurrent batches lock shared rows in the same order.
type batchPlan struct {
	brokers      []brokerSeen
	links        []linkSeen
	measurements int
}

// plan gathers what a batch says about brokers and links: a broker's
// latest report (by report time) sets its domain and sequence number, a
// link's first report in the batch its ends, its latest the transport.
func plan(batch []Received) batchPlan {
	brokers := map[string]*brokerSeen{}
	links := map[string]*linkSeen{}
	var p batchPlan
	see := func(addr string, t int64) *brokerSeen {
		b := brokers[addr]
		if b == nil {
			b = &brokerSeen{address: addr, first: t}
			brokers[addr] = b
		}
		b.first = min(b.first, t)
		return b
	}
	for _, r := range batch {
		rep := &r.Report
		t := dbTime(rep.Time)
		b := see(rep.Broker, t)
		if t >= b.last {
			b.last, b.seq = t, rep.Seq
			if rep.Domain != "" {
				b.domain = rep.Domain
			}
		}
		for i := range rep.Links {
			l := &rep.Links[i]
			p.measurements++
			if l.B != "" {
				see(l.B, t)
			}
			ls := links[l.ID]
			if ls == nil {
				ls = &linkSeen{id: l.ID, a: rep.Broker, b: l.B, transport: l.Transport, last: t}
				links[l.ID] = ls
			}
			if t >= ls.last {
				ls.last = t
				if l.Transport != "" {
					ls.transport = l.Transport
				}
			}
		}
	}
	for _, b := range brokers {
		p.brokers = append(p.brokers, *b)
	}
	slices.SortFunc(p.brokers, func(x, y brokerSeen) int { return strings.Compare(x.address, y.address) })
	for _, l := range links {
		p.links = append(p.links, *l)
	}
	slices.SortFunc(p.links, func(x, y linkSeen) int { return strings.Compare(x.id, y.id) })
	return p
}

// Save stores a batch in one transaction (see Store.Save). A link's end A
// is taken to be the broker that reported it, whatever Link.A says, and
// its end B the peer; Measurements gives them back that way. A deadlock or
// lock timeout is retried up to saveAttempts times in all; any other error
// rolls the batch back and is returned, and nothing of it is stored.
func (s *sqlStore) Save(ctx context.Context, batch []Received) error {
	if len(batch) == 0 {
		return nil
	}
	p := plan(batch)
	if s.d.serialWrites {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	p.links = s.unwritten(p.links)
	err := s.retry(ctx, "save", func() error {
		ids, linkIDs, err := s.save(ctx, batch, &p)
		if err == nil {
			s.remember(ids, linkIDs, p.links)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: save %d reports: %w", len(batch), err)
	}
	return nil
}

// retry runs a transaction, fn, again while it fails with a deadlock or a
// lock timeout, up to saveAttempts times in all.
func (s *sqlStore) retry(ctx context.Context, what string, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == saveAttempts || !s.d.retryable(err) || ctx.Err() != nil {
			return err
		}
		s.log.Warn("store: "+what+": retrying", slog.Int("attempt", attempt), slog.Any("err", err))
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
		}
	}
}

// unwritten leaves out the links whose row is as the batch would write
// it: known, with the same transport. A link's row is written when it is
// first heard of and when its transport changes, not on every report: its
// last_seen comes from its measurements (see Links), which spares an
// update per link per batch.
func (s *sqlStore) unwritten(ls []linkSeen) []linkSeen {
	s.cacheMu.RLock()
	defer s.cacheMu.RUnlock()
	out := ls[:0]
	for _, l := range ls {
		if tr, ok := s.transports[l.id]; !ok || tr != l.transport && l.transport != "" {
			out = append(out, l)
		}
	}
	return out
}

// remember caches what a committed batch wrote.
func (s *sqlStore) remember(ids, linkIDs map[string]int64, links []linkSeen) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	for a, id := range ids {
		s.ids[a] = id
	}
	for u, id := range linkIDs {
		s.linkIDs[u] = id
	}
	for _, l := range links {
		s.transports[l.id] = l.transport
	}
}

// save runs one attempt at a batch and returns the broker and link row
// ids it used, to be cached once committed.
func (s *sqlStore) save(ctx context.Context, batch []Received, p *batchPlan) (ids, linkIDs map[string]int64, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback()
	// The brokers' rows are written last when their ids are known, so that
	// their locks are held only for the end of the transaction: another
	// writer's batch, of other reports from the same brokers, waits on
	// them only that long.
	ids, known := s.cachedIDs(p.brokers)
	if !known {
		if err := s.upsertBrokers(ctx, tx, p.brokers); err != nil {
			return nil, nil, fmt.Errorf("brokers: %w", err)
		}
		if ids, err = s.brokerIDs(ctx, tx, p.brokers); err != nil {
			return nil, nil, fmt.Errorf("broker ids: %w", err)
		}
	}
	if err := s.upsertLinks(ctx, tx, p.links, ids); err != nil {
		return nil, nil, fmt.Errorf("links: %w", err)
	}
	if linkIDs, err = s.linkRowIDs(ctx, tx, batch); err != nil {
		return nil, nil, fmt.Errorf("link ids: %w", err)
	}
	if err := s.insertMeasurements(ctx, tx, batch, p.measurements, ids, linkIDs); err != nil {
		return nil, nil, fmt.Errorf("measurements: %w", err)
	}
	if err := s.insertReports(ctx, tx, batch, ids); err != nil {
		return nil, nil, fmt.Errorf("reports: %w", err)
	}
	if known {
		if err := s.upsertBrokers(ctx, tx, p.brokers); err != nil {
			return nil, nil, fmt.Errorf("brokers: %w", err)
		}
	}
	return ids, linkIDs, tx.Commit()
}

// lookupIDs runs query (SELECT id, name ... IN , to be completed with the
// list) on names, 1,000 at a time, and sets ids[name] to each row's id.
func lookupIDs(ctx context.Context, tx *sql.Tx, query string, names []any, ids map[string]int64) error {
	return chunks(len(names), 1000, func(lo, hi int) error {
		rows, err := tx.QueryContext(ctx, query+"("+bindVars(hi-lo)+")", names[lo:hi]...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var name string
			if err := rows.Scan(&id, &name); err != nil {
				return err
			}
			ids[name] = id
		}
		return rows.Err()
	})
}

// linkRowIDs maps every link of the batch (by UUID) to its row id: from
// the cache, or else from the table, where the upsert has put it.
func (s *sqlStore) linkRowIDs(ctx context.Context, tx *sql.Tx, batch []Received) (map[string]int64, error) {
	ids := map[string]int64{}
	var missing []any
	s.cacheMu.RLock()
	for i := range batch {
		for j := range batch[i].Report.Links {
			u := batch[i].Report.Links[j].ID
			if _, ok := ids[u]; ok {
				continue
			}
			if id, ok := s.linkIDs[u]; ok {
				ids[u] = id
			} else {
				ids[u] = 0
				missing = append(missing, u)
			}
		}
	}
	s.cacheMu.RUnlock()
	if err := lookupIDs(ctx, tx, "SELECT id, uuid FROM links WHERE uuid IN ", missing, ids); err != nil {
		return nil, err
	}
	for _, u := range missing {
		if ids[u.(string)] == 0 {
			return nil, fmt.Errorf("link %q not found after upsert", u)
		}
	}
	return ids, nil
}

// cachedIDs maps the batch's brokers to their row ids from the cache, and
// says whether it knew them all.
func (s *sqlStore) cachedIDs(bs []brokerSeen) (map[string]int64, bool) {
	s.cacheMu.RLock()
	defer s.cacheMu.RUnlock()
	ids := make(map[string]int64, len(bs))
	for _, b := range bs {
		id, ok := s.ids[b.address]
		if !ok {
			return nil, false
		}
		ids[b.address] = id
	}
	return ids, true
}

// chunks calls fn for consecutive [lo, hi) ranges of n items, each at most
// per long.
func chunks(n, per int, fn func(lo, hi int) error) error {
	for lo := 0; lo < n; lo += per {
		if err := fn(lo, min(lo+per, n)); err != nil {
			return err
		}
	}
	return nil
}

func (s *sqlStore) upsertBrokers(ctx context.Context, tx *sql.Tx, bs []brokerSeen) error {
	tail := s.d.brokerUpsert()
	return chunks(len(bs), s.d.maxVars/len(brokerCols), func(lo, hi int) error {
		args := make([]any, 0, (hi-lo)*len(brokerCols))
		for _, b := range bs[lo:hi] {
			args = append(args, b.address, b.domain, b.first, b.last, dbCount(b.seq))
		}
		return s.exec(ctx, tx, insertRows("brokers", brokerCols, hi-lo, tail), args)
	})
}

// brokerIDs maps every broker of the batch to its row id: from the cache,
// or else from the table, where the upsert has just put it.
func (s *sqlStore) brokerIDs(ctx context.Context, tx *sql.Tx, bs []brokerSeen) (map[string]int64, error) {
	ids := make(map[string]int64, len(bs))
	var missing []any
	s.cacheMu.RLock()
	for _, b := range bs {
		if id, ok := s.ids[b.address]; ok {
			ids[b.address] = id
		} else {
			missing = append(missing, b.address)
		}
	}
	s.cacheMu.RUnlock()
	if err := lookupIDs(ctx, tx, "SELECT id, address FROM brokers WHERE address IN ", missing, ids); err != nil {
		return nil, err
	}
	for _, b := range bs {
		if _, ok := ids[b.address]; !ok {
			return nil, fmt.Errorf("broker %q not found after upsert", b.address)
		}
	}
	return ids, nil
}

func (s *sqlStore) upsertLinks(ctx context.Context, tx *sql.Tx, ls []linkSeen, ids map[string]int64) error {
	tail := s.d.linkUpsert()
	return chunks(len(ls), min(1000, s.d.maxVars/len(linkCols)), func(lo, hi int) error {
		args := make([]any, 0, (hi-lo)*len(linkCols))
		for _, l := range ls[lo:hi] {
			args = append(args, l.id, ids[l.a], ids[l.b], l.transport, l.last)
		}
		return s.exec(ctx, tx, insertRows("links", linkCols, hi-lo, tail), args)
	})
}

// insertMeasurements writes every link of every report, s.chunk rows per
// INSERT through a statement prepared once, and the remainder in one more
// INSERT. The values travel in the binary protocol (on MySQL: prepared
// statements), so the server parses no figure.
func (s *sqlStore) insertMeasurements(ctx context.Context, tx *sql.Tx, batch []Received, n int, ids, linkIDs map[string]int64) error {
	var (
		args   = make([]any, 0, min(n, s.chunk)*len(measurementCols))
		rows   = 0
		detail []byte // the details of the rows in args, end to end
	)
	// A buffer the chunk's details usually fit in; when one outgrows it,
	// the rows before keep the old one.
	const detailBytes = 128
	fresh := func() []byte { return make([]byte, 0, min(n, s.chunk)*detailBytes) }
	detail = fresh()
	flush := func() error {
		var err error
		if rows == s.chunk {
			err = s.exec(ctx, tx, s.insertChunk, args)
		} else {
			_, err = tx.ExecContext(ctx, s.d.insertNew("measurements", measurementCols, rows), args...)
		}
		args, rows, detail = args[:0], 0, fresh()
		return err
	}
	for _, r := range batch {
		rep := &r.Report
		t, bid := dbTime(rep.Time), ids[rep.Broker]
		for i := range rep.Links {
			l := &rep.Links[i]
			mark := len(detail)
			detail = appendDetail(detail, l)
			args = append(args, linkIDs[l.ID], bid, t, l.State, l.Monitor,
				dbFloat(l.RTT), dbFloat(l.Latency.Mean), dbFloat(l.Jitter), dbFloat(l.Loss),
				detail[mark:len(detail):len(detail)])
			if rows++; rows == s.chunk {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if rows > 0 {
		return flush()
	}
	return nil
}

func (s *sqlStore) insertReports(ctx context.Context, tx *sql.Tx, batch []Received, ids map[string]int64) error {
	return chunks(len(batch), min(1000, s.d.maxVars/len(reportCols)), func(lo, hi int) error {
		args := make([]any, 0, (hi-lo)*len(reportCols))
		for _, r := range batch[lo:hi] {
			args = append(args, ids[r.Report.Broker], dbCount(r.Report.Seq), dbTime(r.Report.Time),
				dbTime(r.Received), len(r.Report.Links), dbCount(r.Gap), r.Bytes)
		}
		return s.exec(ctx, tx, s.d.insertNew("reports", reportCols, hi-lo), args)
	})
}

// maxStmts bounds the statements kept prepared: the multi-row statements
// of the sizes batches usually have. Others are prepared each time.
const maxStmts = 32

// exec runs q in tx through a statement prepared once for the store, so
// that the server parses it once per connection rather than per batch.
func (s *sqlStore) exec(ctx context.Context, tx *sql.Tx, q string, args []any) error {
	s.stmtMu.Lock()
	st, ok := s.stmts[q]
	s.stmtMu.Unlock()
	if !ok {
		var err error
		if st, err = s.prepare(ctx, q); err != nil {
			return err
		}
	}
	if st == nil {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	}
	ts := tx.StmtContext(ctx, st)
	defer ts.Close()
	_, err := ts.ExecContext(ctx, args...)
	return err
}

// prepare prepares q and keeps it, unless maxStmts are kept already
// (then it returns nil).
func (s *sqlStore) prepare(ctx context.Context, q string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	full := len(s.stmts) >= maxStmts
	s.stmtMu.Unlock()
	if full {
		return nil, nil
	}
	st, err := s.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if other, ok := s.stmts[q]; ok { // prepared meanwhile by another batch
		st.Close()
		return other, nil
	}
	s.stmts[q] = st
	return st, nil
}
