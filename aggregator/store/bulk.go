package store

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"
)

// On MySQL/MariaDB, measurements go in by LOAD DATA LOCAL INFILE when the
// server allows it (local_infile, on by default in MariaDB): a batch's rows
// stream to the server as tab-separated text from a goroutine that encodes
// them while the server stores the rows before. A multi-row INSERT costs
// the server per value bound, and a measurement has 23: on the 2-core
// development machine, MariaDB 10.11 takes prepared multi-row INSERTs of
// these rows at about 50,000 a second whatever the client does, and LOAD
// DATA at about 90,000 (the server's own ceiling: one thread, fed rows
// encoded beforehand).
//
// The data is never SQL: the statement is fixed, and the values travel
// escaped as LOAD DATA defines (backslash, tab, newline and NUL escaped,
// \N for NULL), so no value can change what is executed. LOAD DATA LOCAL
// turns data errors (a value too long, not a number) into warnings, so the
// warnings are checked in the same transaction and any fails the batch.
//
// The driver reads a registered io.Reader, never a file: the client cannot
// be asked for a file of its own (AllowAllFiles stays off).

// loadCounter names each load's reader uniquely.
var loadCounter atomic.Uint64

// loadMeasurementsSQL loads the rows of the reader named %s.
var loadMeasurementsSQL = "LOAD DATA LOCAL INFILE 'Reader::%s' IGNORE INTO TABLE measurements CHARACTER SET utf8mb4 " +
	`FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n' (` +
	strings.Join(measurementCols, ", ") + ")"

// localInfile reports whether the MySQL server accepts LOAD DATA LOCAL.
func localInfile(ctx context.Context, db *sql.DB) bool {
	var on sql.NullInt64
	err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.local_infile").Scan(&on)
	return err == nil && on.Int64 == 1
}

// loadMeasurements writes every link of every report by LOAD DATA, within
// tx. It returns once the encoding goroutine has ended.
func (s *sqlStore) loadMeasurements(ctx context.Context, tx *sql.Tx, batch []Received, ids map[string]int64) error {
	name := fmt.Sprintf("wayline-measurements-%d", loadCounter.Add(1))
	pr, pw := io.Pipe()
	mysql.RegisterReaderHandler(name, func() io.Reader { return pr })
	defer mysql.DeregisterReaderHandler(name)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(encodeTSV(pw, batch, ids))
	}()
	_, err := tx.ExecContext(ctx, fmt.Sprintf(loadMeasurementsSQL, name))
	pr.Close() // ends the encoder if the server stopped reading
	<-done
	if err != nil {
		return err
	}
	return warnings(ctx, tx)
}

// warnings fails if the last statement left warnings, naming the first,
// but for duplicate keys: a measurement stored already, which IGNORE
// skips.
func warnings(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, "SHOW WARNINGS")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var level, msg string
		var code int
		if err := rows.Scan(&level, &code, &msg); err != nil {
			return err
		}
		if code != duplicateKey {
			return fmt.Errorf("load: %s %d: %s", level, code, msg)
		}
	}
	return rows.Err()
}

// duplicateKey is MySQL's ER_DUP_ENTRY.
const duplicateKey = 1062

// encodeTSV writes the measurements of a batch as LOAD DATA reads them,
// one line each, columns in measurementCols order.
func encodeTSV(w io.Writer, batch []Received, ids map[string]int64) error {
	b := make([]byte, 0, 64<<10)
	for _, r := range batch {
		rep := &r.Report
		t, bid := dbTime(rep.Time), ids[rep.Broker]
		for i := range rep.Links {
			l := &rep.Links[i]
			b = tsvString(b, l.ID)
			b = strconv.AppendInt(append(b, '\t'), bid, 10)
			b = strconv.AppendInt(append(b, '\t'), t, 10)
			b = tsvString(append(b, '\t'), l.State)
			b = tsvString(append(b, '\t'), l.Monitor)
			for _, f := range [...]float64{l.RTT, l.Latency.Min, l.Latency.Mean, l.Latency.P50,
				l.Latency.P90, l.Latency.P99, l.Latency.Max, l.Jitter, l.Loss} {
				b = tsvFloat(append(b, '\t'), f)
			}
			for _, n := range [...]int64{dbCount(l.Samples.Sent), dbCount(l.Samples.Received), dbCount(l.Samples.Lost),
				int64(l.Samples.Window), dbCount(l.Samples.Reordered), dbCount(l.Samples.Duplicated), dbCount(l.Dropped)} {
				b = strconv.AppendInt(append(b, '\t'), n, 10)
			}
			// Cost names are %-escaped and figures are numbers, so the
			// costs and histogram texts hold nothing LOAD DATA escapes
			// but what a name may: tsvString handles it.
			mark := len(b) + 1
			b = encodeCosts(append(b, '\t'), l.Costs)
			if needsEscape(b[mark:]) {
				b = tsvString(b[:mark], string(b[mark:]))
			}
			b = encodeHistogram(append(b, '\t'), l.Histogram)
			b = append(b, '\n')
			if len(b) >= 60<<10 {
				if _, err := w.Write(b); err != nil {
					return err
				}
				b = b[:0]
			}
		}
	}
	_, err := w.Write(b)
	return err
}

// tsvFloat appends a figure, \N for NaN and the largest double for an
// infinity, as dbFloat stores them.
func tsvFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `\N`...)
	case math.IsInf(f, 1):
		f = math.MaxFloat64
	case math.IsInf(f, -1):
		f = -math.MaxFloat64
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

func needsEscape(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c == '\t' || c == '\n' || c == 0 {
			return true
		}
	}
	return false
}

// tsvString appends s with LOAD DATA's escapes.
func tsvString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '\t':
			b = append(b, `\t`...)
		case '\n':
			b = append(b, `\n`...)
		case 0:
			b = append(b, `\0`...)
		default:
			b = append(b, c)
		}
	}
	return b
}
