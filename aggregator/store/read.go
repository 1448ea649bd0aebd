package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// linksPerQuery is how many links one measurements query names. Each query
// reads its links' ranges in key order, so the walk needs no sort however
// many rows it streams.
const linksPerQuery = 500

// linkEnds is a link's row, with its ends as broker ids.
type linkEnds struct {
	uuid      string
	a, b      int64
	transport string
}

// names resolves the ids that measurement rows hold. It is loaded when a
// walk starts and again when a row names a broker or link added since.
type names struct {
	brokers map[int64]string
	links   map[int64]linkEnds
	byUUID  map[string]int64
}

func (s *sqlStore) loadNames(ctx context.Context) (*names, error) {
	n := &names{brokers: map[int64]string{}, links: map[int64]linkEnds{}, byUUID: map[string]int64{}}
	err := s.each(ctx, "SELECT id, address FROM brokers", nil, func(rows *sql.Rows) error {
		var id int64
		var addr string
		err := rows.Scan(&id, &addr)
		n.brokers[id] = addr
		return err
	})
	if err != nil {
		return nil, err
	}
	err = s.each(ctx, "SELECT id, uuid, a_broker, b_broker, transport FROM links", nil, func(rows *sql.Rows) error {
		var id int64
		var e linkEnds
		err := rows.Scan(&id, &e.uuid, &e.a, &e.b, &e.transport)
		n.links[id] = e
		n.byUUID[e.uuid] = id
		return err
	})
	return n, err
}

// each runs a query and calls fn on every row.
func (s *sqlStore) each(ctx context.Context, q string, args []any, fn func(*sql.Rows) error) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Measurements walks the measurements of [q.From, q.To) in link order (the
// order links were first stored), then time, then broker (see
// Store.Measurements). A zero From or To leaves that end open. Rows stream
// from the database as fn takes them; fn's error stops the walk and is
// returned as it is, and a row whose costs or histogram cannot be read
// stops it with an error. Links heard of after the walk starts are not
// walked.
func (s *sqlStore) Measurements(ctx context.Context, q MeasurementQuery, fn func(Measurement) error) error {
	return s.MeasurementsInParts(ctx, q, 1, func(int) func(Measurement) error { return fn })
}

// MeasurementsInParts is Measurements split by link into up to parts
// parts, each read on its own connection at the same time as the others
// (see Store.MeasurementsInParts).
func (s *sqlStore) MeasurementsInParts(ctx context.Context, q MeasurementQuery, parts int, part func(i int) func(Measurement) error) error {
	nm, err := s.loadNames(ctx)
	if err != nil {
		return fmt.Errorf("store: measurements: %w", err)
	}
	var ids []int64
	for _, u := range q.Links {
		if id, ok := nm.byUUID[u]; ok {
			ids = append(ids, id)
		}
	}
	if len(q.Links) == 0 {
		for id := range nm.links {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	lo, hi := span(q.From, q.To)
	cols := figureCols
	if q.Figures != nil {
		cols = q.Figures
		for _, c := range cols {
			if !slices.Contains(figureCols, c) {
				return fmt.Errorf("store: measurements: %q is not a figure column (%v)", c, figureCols)
			}
		}
	}
	sel := "link_id, broker_id, t"
	for _, c := range cols {
		sel += ", " + c
	}
	if !q.NoDetail {
		sel += ", detail"
	}
	parts = max(1, min(parts, len(ids)))
	walkPart := func(ctx context.Context, i int, ids []int64) (fnErr bool, err error) {
		w := &walk{s: s, names: nm, fn: part(i), noDetail: q.NoDetail, cols: cols, part: detailAll}
		switch {
		case q.SummaryOnly:
			w.part = detailSummary
		case q.NoHistogram:
			w.part = detailCosts
		}
		err = chunks(len(ids), linksPerQuery, func(i, j int) error {
			args := make([]any, 0, j-i+2)
			for _, id := range ids[i:j] {
				args = append(args, id)
			}
			args = append(args, lo, hi)
			return w.query(ctx, "SELECT "+sel+" FROM measurements WHERE link_id IN ("+bindVars(j-i)+") AND t >= ? AND t < ? ORDER BY link_id, t, broker_id", args)
		})
		return w.fnErr, err
	}
	var fnErr bool
	if parts == 1 {
		fnErr, err = walkPart(ctx, 0, ids)
	} else {
		// Each part has its own connection; the first error stops the
		// others.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var (
			wg   sync.WaitGroup
			once sync.Once
			per  = (len(ids) + parts - 1) / parts
		)
		for i := range parts {
			part := ids[min(i*per, len(ids)):min((i+1)*per, len(ids))]
			wg.Go(func() {
				if fe, e := walkPart(ctx, i, part); e != nil {
					once.Do(func() { fnErr, err = fe, e; cancel() })
				}
			})
		}
		wg.Wait()
	}
	if err != nil && !fnErr {
		return fmt.Errorf("store: measurements: %w", err)
	}
	return err
}

// figureCols are the columns of a measurement's figures, besides its
// key and its detail.
var figureCols = []string{"state", "monitor", "rtt", "lat_mean", "jitter", "loss"}

// walk is one Measurements call.
type walk struct {
	s        *sqlStore
	names    *names
	fn       func(Measurement) error
	fnErr    bool              // the error came from fn
	tried    map[[2]int64]bool // see reload
	noDetail bool              // the rows have no detail
	cols     []string          // the figure columns of the rows
	slabs    slabs             // the rows' costs and buckets
	part     detailPart        // what of the detail to decode
	strs     interner          // states and monitor states ("up", "down")
}

// query streams one query's rows to fn.
func (w *walk) query(ctx context.Context, q string, args []any) error {
	rows, err := w.s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	// Numbers are scanned as they come (database/sql converts to a typed
	// destination by reflection, which is much of a row's cost), strings
	// as the driver's bytes.
	var (
		key    [3]any // link, broker, t
		vals   = make([]any, len(w.cols))
		strs   = make([]sql.RawBytes, len(w.cols))
		detail sql.RawBytes
	)
	dest := []any{&key[0], &key[1], &key[2]}
	for i, c := range w.cols {
		if c == "state" || c == "monitor" {
			dest = append(dest, &strs[i])
		} else {
			dest = append(dest, &vals[i])
		}
	}
	if !w.noDetail {
		dest = append(dest, &detail)
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		var ints [3]int64
		for i := range ints {
			if ints[i], err = anyInt(key[i]); err != nil {
				return err
			}
		}
		link, bid := ints[0], ints[1]
		m := Measurement{Time: goTime(ints[2])}
		for i, c := range w.cols {
			var f float64
			if vals[i] != nil || strs[i] == nil {
				if f, err = anyFloat(vals[i]); err != nil {
					return fmt.Errorf("%s: %w", c, err)
				}
			}
			switch c {
			case "state":
				m.Link.State = w.strs.get(strs[i])
			case "monitor":
				m.Link.Monitor = w.strs.get(strs[i])
			case "rtt":
				m.Link.RTT = f
			case "lat_mean":
				m.Link.Latency.Mean = f
			case "jitter":
				m.Link.Jitter = f
			case "loss":
				m.Link.Loss = f
			}
		}
		if err := w.fill(ctx, &m, link, bid, detail); err != nil {
			return err
		}
		if err := w.fn(m); err != nil {
			w.fnErr = true
			return err
		}
	}
	return rows.Err()
}

// fill sets what a row holds by reference or in its detail: the link's
// id, ends and transport, the broker, and the figures of the detail.
func (w *walk) fill(ctx context.Context, m *Measurement, link, bid int64, detail []byte) error {
	ends, ok := w.names.links[link]
	addr, okb := w.names.brokers[bid]
	if !ok || !okb {
		if err := w.reload(ctx, link, bid); err != nil {
			return err
		}
		ends, addr = w.names.links[link], w.names.brokers[bid]
	}
	m.Broker = addr
	m.Link.ID, m.Link.A, m.Link.Transport = ends.uuid, addr, ends.transport
	// The stored link has the ends of its first report; the peer of this
	// one is whichever end did not send it.
	if peer := ends.b; peer != bid {
		m.Link.B = w.names.brokers[peer]
	} else {
		m.Link.B = w.names.brokers[ends.a]
	}
	if w.noDetail {
		return nil
	}
	if err := decodeDetail(detail, &m.Link, &w.slabs, w.part); err != nil {
		return fmt.Errorf("link %s at %d: %w", ends.uuid, dbTime(m.Time), err)
	}
	return nil
}

// reload loads the names again for a row of link from broker bid that
// they lack, once per such pair, so that rows stored without their broker
// or link (which Save never does) do not reload each time.
func (w *walk) reload(ctx context.Context, link, bid int64) error {
	miss := [2]int64{link, bid}
	if w.tried[miss] {
		return nil
	}
	if w.tried == nil {
		w.tried = map[[2]int64]bool{}
	}
	w.tried[miss] = true
	nm, err := w.s.loadNames(ctx)
	if err == nil {
		w.names = nm
	}
	return err
}

// Reports lists the reports received in [from, to), by the aggregator's
// clock (received_at), newest first; limit 0 lists all. A zero bound
// leaves that end open.
func (s *sqlStore) Reports(ctx context.Context, from, to time.Time, limit int) ([]ReportRow, error) {
	lo, hi := span(from, to)
	var out []ReportRow
	err := s.each(ctx, `SELECT COALESCE(b.address, ''), r.seq, r.t, r.received_at, r.links, r.gap, r.bytes
FROM reports r LEFT JOIN brokers b ON b.id = r.broker_id
WHERE r.received_at >= ? AND r.received_at < ?
ORDER BY r.received_at DESC, r.id DESC LIMIT ?`, []any{lo, hi, queryLimit(limit)}, func(rows *sql.Rows) error {
		var r ReportRow
		var seq, t, recv, gap int64
		err := rows.Scan(&r.Broker, &seq, &t, &recv, &r.Links, &gap, &r.Bytes)
		r.Seq, r.Time, r.Received, r.Gap = uint64(seq), goTime(t), goTime(recv), uint64(gap)
		out = append(out, r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: reports: %w", err)
	}
	return out, nil
}

// queryLimit is a LIMIT for limit, where 0 means none.
func queryLimit(limit int) int64 {
	if limit <= 0 {
		return math.MaxInt64
	}
	return int64(limit)
}

// Brokers lists every broker heard of, by address. A broker known only as
// a link's peer has an empty domain, a zero LastSeen and LastSeq 0.
func (s *sqlStore) Brokers(ctx context.Context) ([]BrokerRow, error) {
	var out []BrokerRow
	err := s.each(ctx, "SELECT address, domain, first_seen, last_seen, last_seq FROM brokers ORDER BY address", nil, func(rows *sql.Rows) error {
		var b BrokerRow
		var first, last, seq int64
		err := rows.Scan(&b.Address, &b.Domain, &first, &last, &seq)
		b.FirstSeen, b.LastSeen, b.LastSeq = goTime(first), goTime(last), uint64(seq)
		out = append(out, b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: brokers: %w", err)
	}
	return out, nil
}

// Links lists every link heard of, by id, with the ends of its first
// report and the transport and time of its latest. The row's last_seen is
// written only with the row (see unwritten); the time of the link's latest
// measurement, one index lookup away, is the later one unless pruned.
func (s *sqlStore) Links(ctx context.Context) ([]LinkRow, error) {
	var out []LinkRow
	err := s.each(ctx, `SELECT l.uuid, COALESCE(a.address, ''), COALESCE(b.address, ''), l.transport,
  `+s.d.greatest+`(l.last_seen, COALESCE((SELECT MAX(m.t) FROM measurements m WHERE m.link_id = l.id), 0))
FROM links l LEFT JOIN brokers a ON a.id = l.a_broker LEFT JOIN brokers b ON b.id = l.b_broker
ORDER BY l.uuid`, nil, func(rows *sql.Rows) error {
		var l LinkRow
		var last int64
		err := rows.Scan(&l.ID, &l.A, &l.B, &l.Transport, &last)
		l.LastSeen = goTime(last)
		out = append(out, l)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: links: %w", err)
	}
	return out, nil
}

// RecordAction stores a control action.
func (s *sqlStore) RecordAction(ctx context.Context, a Action) error {
	if s.d.serialWrites {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO actions (t, rule, broker, link, action, undoes, ok, error, request)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, dbTime(a.Time), a.Rule, a.Broker, a.Link, a.Action, a.Undo, a.OK, a.Error, a.Request)
	if err != nil {
		return fmt.Errorf("store: record action: %w", err)
	}
	return nil
}

// Actions lists the actions taken in [from, to), newest first; limit 0
// lists all. A zero bound leaves that end open.
func (s *sqlStore) Actions(ctx context.Context, from, to time.Time, limit int) ([]Action, error) {
	lo, hi := span(from, to)
	var out []Action
	err := s.each(ctx, `SELECT t, rule, broker, link, action, undoes, ok, error, request FROM actions
WHERE t >= ? AND t < ? ORDER BY t DESC, id DESC LIMIT ?`, []any{lo, hi, queryLimit(limit)}, func(rows *sql.Rows) error {
		var a Action
		var t int64
		err := rows.Scan(&t, &a.Rule, &a.Broker, &a.Link, &a.Action, &a.Undo, &a.OK, &a.Error, &a.Request)
		a.Time = goTime(t)
		out = append(out, a)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: actions: %w", err)
	}
	return out, nil
}
