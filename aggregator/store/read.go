package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// linksPerQuery is how many links one measurements query names. Each query
// reads its links' ranges in key order, so the walk needs no sort however
// many rows it streams; their blocks are read first, whole.
const linksPerQuery = 100

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
// Store.Measurements), from blocks and rows alike. A zero From or To
// leaves that end open. Rows stream from the database as fn takes them
// (blocks are read a chunk of links ahead); fn's error stops the walk and
// is returned as it is, and a measurement whose detail cannot be read
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
	cols := figureCols
	if q.Figures != nil {
		cols = q.Figures
		for _, c := range cols {
			if !slices.Contains(figureCols, c) {
				return fmt.Errorf("store: measurements: %q is not a figure column (%v)", c, figureCols)
			}
		}
	}
	parts = max(1, min(parts, len(ids)))
	walkPart := func(ctx context.Context, i int, ids []int64) (fnErr bool, err error) {
		w := &walk{s: s, names: nm, fn: part(i), noDetail: q.NoDetail, cols: cols, part: detailAll}
		for _, c := range cols {
			w.fig = append(w.fig, slices.Index(figureCols, c))
		}
		w.lo, w.hi = span(q.From, q.To)
		switch {
		case q.SummaryOnly:
			w.part = detailSummary
		case q.NoHistogram:
			w.part = detailCosts
		}
		err = w.run(ctx, ids)
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
// key and its detail; a block holds the four numbers in this order after
// the two states.
var figureCols = []string{"state", "monitor", "rtt", "lat_mean", "jitter", "loss"}

// walk is one part of a Measurements call.
type walk struct {
	s        *sqlStore
	conn     *sql.Conn // one snapshot of the database throughout
	names    *names
	fn       func(Measurement) error
	fnErr    bool              // the error came from fn
	tried    map[[2]int64]bool // see reload
	noDetail bool              // no detail is read
	cols     []string          // the figure columns read
	fig      []int             // each one's index in figureCols
	lo, hi   int64             // the times walked, [lo, hi)
	slabs    slabs             // the measurements' costs and buckets
	part     detailPart        // what of the detail to decode
	strs     interner          // states and monitor states ("up", "down")
	// last is what ends set last: a link's measurements come together,
	// and mostly from one broker.
	last struct {
		ok                          bool
		link, bid                   int64
		broker, id, a, b, transport string
	}
}

// run walks the measurements of links ids, in order, in one read-only
// transaction: the compactor moves measurements from rows to blocks, and
// the walk sees each either here or there.
func (w *walk) run(ctx context.Context, ids []int64) (err error) {
	if len(ids) == 0 {
		return nil
	}
	if w.conn, err = w.s.db.Conn(ctx); err != nil {
		return err
	}
	defer w.conn.Close()
	if _, err := w.conn.ExecContext(ctx, w.s.d.beginRead); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		// A connection whose transaction cannot be ended does not go
		// back to the pool.
		if _, rerr := w.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			w.conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return chunks(len(ids), linksPerQuery, func(i, j int) error { return w.chunk(ctx, ids[i:j]) })
}

// storedBlock is a row of measurement_blocks, with the parts read.
type storedBlock struct {
	broker, t0   int64
	figs, detail []byte
}

// chunk walks the measurements of links ids: it reads their blocks, then
// streams their rows, merging each link's.
func (w *walk) chunk(ctx context.Context, ids []int64) error {
	args := make([]any, 0, len(ids)+3)
	for _, id := range ids {
		args = append(args, id)
	}
	in := "link_id IN (" + bindVars(len(ids)) + ")"
	blocks, err := w.blocks(ctx, in, args)
	if err != nil {
		return fmt.Errorf("blocks: %w", err)
	}
	sel := "link_id, broker_id, t"
	for _, c := range w.cols {
		sel += ", " + c
	}
	if !w.noDetail {
		sel += ", detail"
	}
	rows, err := w.conn.QueryContext(ctx, "SELECT "+sel+" FROM measurements WHERE "+in+" AND t >= ? AND t < ? ORDER BY link_id, t, broker_id",
		append(args, w.lo, w.hi)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	raw := newRowCursor(w, rows)
	if err := raw.advance(); err != nil {
		return err
	}
	for _, id := range ids {
		if err := w.merge(ctx, id, blocks[id], raw); err != nil {
			return err
		}
	}
	return rows.Err()
}

// blocks reads the blocks of the links that in and args name that may
// hold measurements of [lo, hi), by link, in window then broker order.
func (w *walk) blocks(ctx context.Context, in string, args []any) (map[int64][]storedBlock, error) {
	sel := "link_id, broker_id, t0, figs"
	if !w.noDetail {
		sel += ", detail"
	}
	from := w.lo - blockSpan + 1
	if w.lo < math.MinInt64+blockSpan {
		from = math.MinInt64
	}
	out := map[int64][]storedBlock{}
	rows, err := w.conn.QueryContext(ctx, "SELECT "+sel+" FROM measurement_blocks WHERE "+in+" AND t0 >= ? AND t0 < ? AND t1 >= ? ORDER BY link_id, t0, broker_id",
		append(slices.Clip(args), from, w.hi, w.lo)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var link int64
		var b storedBlock
		dest := []any{&link, &b.broker, &b.t0, &b.figs}
		if !w.noDetail {
			dest = append(dest, &b.detail)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		out[link] = append(out[link], b)
	}
	return out, rows.Err()
}

// A cursor is a sequence of one link's measurements in time then broker
// order: the rows of a chunk of links, or a block.
type cursor interface {
	// head is the current measurement's link, time and broker; ok is
	// false past the end.
	head() (ok bool, link, t, broker int64)
	current() *Measurement
	advance() error
}

// merge hands fn the measurements of link, from its blocks and from the
// rows at raw's head, in time then broker order. A measurement found in
// both (a report stored again after its window was packed) goes once.
func (w *walk) merge(ctx context.Context, link int64, blocks []storedBlock, raw *rowCursor) error {
	lastT, lastB := int64(math.MinInt64), int64(-1)
	var (
		cs   []cursor
		open []blockCursor
	)
	for i := 0; ; {
		// The blocks of the next window, and the rows before its end.
		end := int64(math.MaxInt64)
		cs, open = cs[:0], open[:0]
		if i < len(blocks) {
			j := i
			for j < len(blocks) && window(blocks[j].t0) == window(blocks[i].t0) {
				j++
			}
			for _, b := range blocks[i:j] {
				open = append(open, blockCursor{w: w, link: link, broker: b.broker})
				c := &open[len(open)-1]
				if err := c.r.open(b.t0, b.figs, b.detail); err != nil {
					return fmt.Errorf("link %s at %d: %w", w.names.links[link].uuid, b.t0, err)
				}
				if err := c.advance(); err != nil {
					return err
				}
			}
			for k := range open {
				cs = append(cs, &open[k])
			}
			if e := window(blocks[i].t0); e <= math.MaxInt64-blockSpan {
				end = e + blockSpan
			}
			i = j
		}
		for {
			var best cursor
			var bt, bb int64
			for _, c := range cs {
				if ok, _, t, b := c.head(); ok && (best == nil || t < bt || t == bt && b < bb) {
					best, bt, bb = c, t, b
				}
			}
			if ok, l, t, b := raw.head(); ok && l == link && t < end && (best == nil || t < bt || t == bt && b < bb) {
				best, bt, bb = raw, t, b
			}
			if best == nil {
				break
			}
			if bt != lastT || bb != lastB {
				lastT, lastB = bt, bb
				m := best.current()
				if err := w.ends(ctx, m, link, bb); err != nil {
					return err
				}
				if err := w.fn(*m); err != nil {
					w.fnErr = true
					return err
				}
			}
			if err := best.advance(); err != nil {
				return err
			}
		}
		if end == math.MaxInt64 {
			return nil
		}
	}
}

// rowCursor reads rows of measurements.
type rowCursor struct {
	w            *walk
	rows         *sql.Rows
	ok           bool
	link, t, bid int64
	m            Measurement
	key          [3]any // link, broker, t
	vals         []any
	strs         []sql.RawBytes
	detail       sql.RawBytes
	dest         []any
}

func newRowCursor(w *walk, rows *sql.Rows) *rowCursor {
	c := &rowCursor{w: w, rows: rows, vals: make([]any, len(w.cols)), strs: make([]sql.RawBytes, len(w.cols))}
	// Numbers are scanned as they come (database/sql converts to a typed
	// destination by reflection, which is much of a row's cost), strings
	// as the driver's bytes.
	c.dest = []any{&c.key[0], &c.key[1], &c.key[2]}
	for i, k := range w.fig {
		if k < 2 { // the states
			c.dest = append(c.dest, &c.strs[i])
		} else {
			c.dest = append(c.dest, &c.vals[i])
		}
	}
	if !w.noDetail {
		c.dest = append(c.dest, &c.detail)
	}
	return c
}

func (c *rowCursor) head() (bool, int64, int64, int64) { return c.ok, c.link, c.t, c.bid }
func (c *rowCursor) current() *Measurement             { return &c.m }

func (c *rowCursor) advance() error {
	if c.ok = c.rows.Next(); !c.ok {
		return c.rows.Err()
	}
	if err := c.rows.Scan(c.dest...); err != nil {
		return err
	}
	var ints [3]int64
	for i := range ints {
		var err error
		if ints[i], err = anyInt(c.key[i]); err != nil {
			return err
		}
	}
	c.link, c.bid, c.t = ints[0], ints[1], ints[2]
	c.m = Measurement{Time: goTime(c.t)}
	for i, k := range c.w.fig {
		var f float64
		if k >= 2 {
			var err error
			if f, err = anyFloat(c.vals[i]); err != nil {
				return fmt.Errorf("%s: %w", figureCols[k], err)
			}
		}
		c.w.setFigure(&c.m, k, c.strs[i], f)
	}
	if c.w.noDetail {
		return nil
	}
	if err := decodeDetail(c.detail, &c.m.Link, &c.w.slabs, c.w.part); err != nil {
		return fmt.Errorf("link %s at %d: %w", c.w.names.links[c.link].uuid, c.t, err)
	}
	return nil
}

// blockCursor reads the measurements of [lo, hi) in a block.
type blockCursor struct {
	w            *walk
	r            blockReader
	p            packed
	ok           bool
	link, broker int64
	m            Measurement
}

func (c *blockCursor) head() (bool, int64, int64, int64) { return c.ok, c.link, c.p.t, c.broker }
func (c *blockCursor) current() *Measurement             { return &c.m }

func (c *blockCursor) advance() error {
	w := c.w
	for c.ok = c.r.next(&c.p); c.ok; c.ok = c.r.next(&c.p) {
		if c.p.t < w.lo || c.p.t >= w.hi {
			continue
		}
		c.m = Measurement{Time: goTime(c.p.t)}
		for _, k := range w.fig {
			switch k {
			case 0:
				w.setFigure(&c.m, k, c.p.state, 0)
			case 1:
				w.setFigure(&c.m, k, c.p.monitor, 0)
			default:
				w.setFigure(&c.m, k, nil, goFloat(c.p.figs[k-2]))
			}
		}
		if w.noDetail {
			return nil
		}
		part := w.part
		if part == detailAll {
			part = detailCosts
		}
		err := decodeDetail(c.p.head, &c.m.Link, &w.slabs, part)
		if err == nil && w.part == detailAll {
			err = c.r.histogram(c.p.hist, &c.m.Link.Histogram, &w.slabs)
		}
		if err != nil {
			return fmt.Errorf("link %s at %d: %w", w.names.links[c.link].uuid, c.p.t, err)
		}
		return nil
	}
	err := c.r.err()
	if err == nil && c.r.left > 0 {
		err = fmt.Errorf("block: ends before its last measurement")
	}
	if err != nil {
		return fmt.Errorf("link %s: %w", w.names.links[c.link].uuid, err)
	}
	return nil
}

// setFigure sets the value of figure column figureCols[k] in m: s for
// the states, f for the numbers.
func (w *walk) setFigure(m *Measurement, k int, s []byte, f float64) {
	switch k {
	case 0:
		m.Link.State = w.strs.get(s)
	case 1:
		m.Link.Monitor = w.strs.get(s)
	case 2:
		m.Link.RTT = f
	case 3:
		m.Link.Latency.Mean = f
	case 4:
		m.Link.Jitter = f
	case 5:
		m.Link.Loss = f
	}
}

// ends sets what a measurement holds by reference: the link's id, ends
// and transport, and the broker.
func (w *walk) ends(ctx context.Context, m *Measurement, link, bid int64) error {
	c := &w.last
	if !c.ok || c.link != link || c.bid != bid {
		if err := w.lookUpEnds(ctx, link, bid); err != nil {
			return err
		}
	}
	m.Broker = c.broker
	m.Link.ID, m.Link.A, m.Link.B, m.Link.Transport = c.id, c.a, c.b, c.transport
	return nil
}

// lookUpEnds sets w.last to the names of link reported by broker bid.
func (w *walk) lookUpEnds(ctx context.Context, link, bid int64) error {
	ends, ok := w.names.links[link]
	addr, okb := w.names.brokers[bid]
	if !ok || !okb {
		if err := w.reload(ctx, link, bid); err != nil {
			return err
		}
		ends, addr = w.names.links[link], w.names.brokers[bid]
	}
	c := &w.last
	c.ok, c.link, c.bid = true, link, bid
	c.broker, c.id, c.a, c.transport = addr, ends.uuid, addr, ends.transport
	// The stored link has the ends of its first report; the peer of this
	// one is whichever end did not send it.
	if peer := ends.b; peer != bid {
		c.b = w.names.brokers[peer]
	} else {
		c.b = w.names.brokers[ends.a]
	}
	return nil
}

// reload loads the names again for a measurement of link from broker bid
// that they lack, once per such pair, so that rows stored without their
// broker or link (which Save never does) do not reload each time. The
// names are read outside the walk's snapshot: what they lack was added
// since.
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
// measurement, a few index lookups away in its rows or its latest blocks,
// is the later one unless pruned. (A block's last measurement is before
// the end of its window, so the latest is in a block that starts less than
// a window before the last block's start.)
func (s *sqlStore) Links(ctx context.Context) ([]LinkRow, error) {
	var out []LinkRow
	err := s.each(ctx, `SELECT l.uuid, COALESCE(a.address, ''), COALESCE(b.address, ''), l.transport,
  `+s.d.greatest+`(`+s.d.greatest+`(l.last_seen, COALESCE((SELECT MAX(m.t) FROM measurements m WHERE m.link_id = l.id), 0)),
    COALESCE((SELECT MAX(k.t1) FROM measurement_blocks k WHERE k.link_id = l.id
      AND k.t0 >= (SELECT MAX(k2.t0) FROM measurement_blocks k2 WHERE k2.link_id = l.id) - ?), 0))
FROM links l LEFT JOIN brokers a ON a.id = l.a_broker LEFT JOIN brokers b ON b.id = l.b_broker
ORDER BY l.uuid`, []any{blockSpan}, func(rows *sql.Rows) error {
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
