// Package store keeps an aggregator's reports in SQL: MySQL/MariaDB for
// production (through go-sql-driver/mysql) or an embedded file (through
// modernc.org/sqlite, pure Go), behind one interface. Both run the same
// migrations, embedded in package schema, and the same tests.
package store

import (
	"context"
	"time"

	"github.com/wayline/wayline/schema"
)

// Store is where an aggregator keeps what it hears. Implementations are
// safe for concurrent use.
type Store interface {
	// Save stores a batch of received reports in one transaction: brokers
	// and links are created or updated, each link of each report becomes
	// a measurement row, and each report a row of reports received, with
	// the gap before it (reports of that broker missed, by sequence
	// number).
	Save(ctx context.Context, batch []Received) error
	// Measurements calls fn for every measurement taken in [from, to),
	// ordered by link then time; fn's error stops the walk and is
	// returned. Links restricts the walk to those link ids when not empty.
	Measurements(ctx context.Context, q MeasurementQuery, fn func(Measurement) error) error
	// MeasurementsInParts is Measurements split by link into up to parts
	// parts, read at the same time, each on its own connection: part(i) is
	// called once for each part i, from that part's goroutine, for the
	// function that takes the part's measurements, by link then time (a
	// link's measurements are all in one part). The first error stops
	// every part.
	MeasurementsInParts(ctx context.Context, q MeasurementQuery, parts int, part func(i int) func(Measurement) error) error
	// Reports lists the reports received in [from, to), newest first, at
	// most limit of them (0: no limit).
	Reports(ctx context.Context, from, to time.Time, limit int) ([]ReportRow, error)
	// Brokers and Links list what was ever heard of.
	Brokers(ctx context.Context) ([]BrokerRow, error)
	Links(ctx context.Context) ([]LinkRow, error)
	// RecordAction stores a control action the aggregator took, and
	// Actions lists them, newest first.
	RecordAction(ctx context.Context, a Action) error
	Actions(ctx context.Context, from, to time.Time, limit int) ([]Action, error)
	// Compact packs the measurements of time windows that ended at or
	// before before into blocks, which Measurements reads many times
	// faster than rows, and returns how many it packed. Measurements sees
	// every measurement once, packed or not, throughout.
	Compact(ctx context.Context, before time.Time) (int64, error)
	// Prune deletes measurements and reports older than before and
	// returns how many rows went.
	Prune(ctx context.Context, before time.Time) (int64, error)
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	Close() error
}

// Received is a report as the aggregator received it.
type Received struct {
	Report   schema.Report
	Received time.Time
	Gap      uint64 // reports of this broker missed just before this one
	Bytes    int    // size of the XML
}

// MeasurementQuery selects measurements.
type MeasurementQuery struct {
	From, To time.Time
	Links    []string
	// NoDetail leaves out what a measurement's detail holds: the latency
	// summary but its mean, the sample counts, the drops, the costs and
	// the histogram stay zero. A walk that does not need them reads a
	// third of the bytes.
	NoDetail bool
	// SummaryOnly reads of the detail only the latency summary, the
	// sample counts and the drops: the costs and the histogram stay
	// empty.
	SummaryOnly bool
	// NoHistogram reads all of the detail but the histogram, which stays
	// empty.
	NoHistogram bool
	// Figures, when not nil, names the figure columns read, of state,
	// monitor, rtt, lat_mean, jitter and loss: the others stay zero ("" for
	// the states). Each column left out is less to read.
	Figures []string
}

// Measurement is one link's figures from one report.
type Measurement struct {
	Time   time.Time // the report's time
	Broker string    // the reporting broker (end A)
	Link   schema.Link
}

// ReportRow is one report received.
type ReportRow struct {
	Broker   string    `json:"broker"`
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Received time.Time `json:"received"`
	Links    int       `json:"links"`
	Gap      uint64    `json:"gap"`
	Bytes    int       `json:"bytes"`
}

// BrokerRow is a broker heard of.
type BrokerRow struct {
	Address   string
	Domain    string
	FirstSeen time.Time
	LastSeen  time.Time
	LastSeq   uint64
}

// LinkRow is a link heard of; A is the broker that reported it first.
type LinkRow struct {
	ID        string
	A, B      string
	Transport string
	LastSeen  time.Time
}

// Action is a control action the aggregator took because of a rule.
type Action struct {
	Time    time.Time `json:"time"`
	Rule    string    `json:"rule"` // the rule's name or its condition
	Broker  string    `json:"broker"`
	Link    string    `json:"link"`
	Action  string    `json:"action"`  // e.g. "interval 250ms", "stop-measurement", "exclude-from-routing", and their undoing
	Undo    bool      `json:"undo"`    // the action undoes an earlier one
	OK      bool      `json:"ok"`      // the broker acknowledged it
	Error   string    `json:"error"`   // why not, when not OK
	Request string    `json:"request"` // the control message sent (JSON)
}
