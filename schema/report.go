// Package schema is the shared language of brokers and aggregators: the
// XML performance report (Go types, encoder, decoder and the XSD that
// describes it, perf-report.xsd) and the SQL schema the aggregator keeps
// reports in (migrations for MySQL/MariaDB and SQLite).
//
// It depends on nothing else of Wayline and does no I/O beyond reading its
// embedded files.
package schema

import "time"

// Report is one broker's performance report for one interval: what it
// measured on each of its links. Brokers send one every report interval on
// $WL.perf.<domain>. The XML is attribute-style (figures are attributes,
// not child elements), which parses about twice as fast and answers XPath
// constraints about five times as fast.
//
//	<report broker="na.cgl.c1.a" domain="na" seq="42" time="2026-11-23T10:00:00Z" interval_ms="5000">
//	  <link id="3f2a…" a="na.cgl.c1.a" b="eu.kth.c1.a" transport="udp" state="up" monitor="up"
//	        rtt="90.3" jitter="2.0" loss="0.01" dropped="0">
//	    <latency min="44.1" mean="45.1" p50="45.0" p90="46.9" p99="47.8" max="48.2"/>
//	    <samples sent="512" received="507" lost="5" window="256" reordered="0" duplicated="0"/>
//	    <cost profile="default" value="57.4"/>
//	    <histogram missing="3"><bucket le="44.544" count="12"/>…</histogram>
//	  </link>
//	</report>
//
// The contract others rely on: each link is an element named link with an
// id attribute holding the link's UUID.
type Report struct {
	Broker   string    // the reporting broker's address
	Domain   string    // the aggregation domain it reports to
	Seq      uint64    // per broker, from 1, one more for every report
	Time     time.Time // when the figures were read
	Interval time.Duration
	Links    []Link
}

// Link is one link as the reporting broker (its end A) measured it.
type Link struct {
	ID        string // UUID
	A, B      string // A is the reporting broker, B the peer
	Transport string // tcp, tls, udp, ws, quic or mem
	State     string // "up" or "down": whether it carries routes
	Monitor   string // the monitor's verdict: unknown, up, suspect, down or disabled
	RTT       float64
	Latency   Summary // one-way, ms
	Jitter    float64 // ms: mean difference of consecutive one-way delays
	Loss      float64 // one way, 0..1
	Samples   Samples
	Dropped   uint64 // messages dropped towards the link since the broker started
	Costs     []Cost
	Histogram Histogram
}

// Summary is a latency summary in milliseconds.
type Summary struct {
	Min, Mean, P50, P90, P99, Max float64
}

// Samples counts the probes behind the figures: since the broker started
// (Sent, Received, Lost, Reordered, Duplicated) and in the window the
// statistics are computed over (Window).
type Samples struct {
	Sent, Received, Lost  uint64
	Window                int
	Reordered, Duplicated uint64
}

// Cost is a link's cost under one profile.
type Cost struct {
	Profile string
	Value   float64 // +Inf when the link is down
}

// Histogram is a link's one-way delay distribution over the window: the
// non-empty buckets, each counting the delays up to its upper bound LE (ms,
// +Inf for the last), and Missing, the probes that never came back. The
// buckets are the monitor's (see monitor.BucketBounds): 1-2% wide, with
// bounds in whole microseconds.
type Histogram struct {
	Missing float64
	Buckets []Bucket
}

// Bucket is one histogram bucket.
type Bucket struct {
	LE    float64
	Count float64
}
