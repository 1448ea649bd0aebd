package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"time"
)

// compactLinks is how many links one compaction transaction packs, and
// compactStep the time it packs of them: an hour of fifty links reported
// every 5 s is 36,000 rows.
const (
	compactLinks = 50
	compactStep  = 12 * blockSpan
)

// blockCols are the columns of measurement_blocks.
var blockCols = []string{"link_id", "broker_id", "t0", "t1", "n", "figs", "detail"}

// Compact packs the measurements of windows that end at or before before
// into blocks (see blocks.go) and deletes their rows, a transaction for
// each compactStep of compactLinks links. A measurement stored after its
// window was packed is packed into the window's blocks by the next
// Compact. A transaction that fails (a row whose detail cannot be read)
// leaves its rows as they are, and the others go on; the first such error
// is returned at the end. It returns how many measurements it packed, also
// when it fails or ctx ends part way: what a committed transaction packed
// stays packed, and the walk of measurements sees each measurement once
// throughout.
func (s *sqlStore) Compact(ctx context.Context, before time.Time) (int64, error) {
	cut := window(dbTime(before))
	ids, err := s.allLinkIDs(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: compact: links: %w", err)
	}
	var (
		n     int64
		first error // of a transaction that failed
	)
	err = chunks(len(ids), compactLinks, func(lo, hi int) error {
		links := ids[lo:hi:hi]
		from := int64(math.MinInt64)
		for {
			t, ok, err := s.firstRow(ctx, links, from, cut)
			if err != nil || !ok {
				return err
			}
			a := window(t)
			b := cut
			if a < cut-compactStep {
				b = a + compactStep
			}
			k, err := s.compactRange(ctx, links, a, b)
			n += k
			if err != nil {
				err = fmt.Errorf("links %v to %v from %v: %w", links[0], links[len(links)-1], goTime(a), err)
				if ctx.Err() != nil {
					return err
				}
				if first == nil {
					first = err
				}
			}
			from = b
		}
	})
	if err == nil {
		err = first
	}
	if err != nil {
		return n, fmt.Errorf("store: compact: %w", err)
	}
	return n, nil
}

// firstRow is the time of the first measurement row of links in [from,
// to).
func (s *sqlStore) firstRow(ctx context.Context, links []any, from, to int64) (int64, bool, error) {
	var first sql.NullInt64
	err := s.db.QueryRowContext(ctx, "SELECT MIN(t) FROM measurements WHERE link_id IN ("+bindVars(len(links))+") AND t >= ? AND t < ?",
		append(slices.Clip(links), from, to)...).Scan(&first)
	return first.Int64, first.Valid, err
}

// compactRange packs the rows of links in [a, b), which are window
// bounds, in one transaction, retried as Save's are.
func (s *sqlStore) compactRange(ctx context.Context, links []any, a, b int64) (int64, error) {
	if s.d.serialWrites {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	var n int64
	err := s.retry(ctx, "compact", func() (err error) {
		n, err = s.compactOnce(ctx, links, a, b)
		return err
	})
	return n, err
}

// blockKey names the blocks of a link, broker and window.
type blockKey struct{ link, broker, window int64 }

func (s *sqlStore) compactOnce(ctx context.Context, links []any, a, b int64) (n int64, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	in := "link_id IN (" + bindVars(len(links)) + ")"
	args := append(slices.Clip(links), a, b)
	// The rows, locked on MySQL so that none is added to the range
	// before they are deleted (SQLite's writers take turns).
	got := map[blockKey][]packed{}
	var keys []blockKey
	rows, err := tx.QueryContext(ctx, "SELECT link_id, broker_id, t, state, monitor, rtt, lat_mean, jitter, loss, detail FROM measurements WHERE "+
		in+" AND t >= ? AND t < ? ORDER BY link_id, t, broker_id"+s.d.forUpdate, args...)
	if err != nil {
		return 0, fmt.Errorf("read rows: %w", err)
	}
	for rows.Next() {
		var k blockKey
		var p packed
		var t int64
		var figs [4]sql.NullFloat64
		var detail []byte
		if err = rows.Scan(&k.link, &k.broker, &t, &p.state, &p.monitor, &figs[0], &figs[1], &figs[2], &figs[3], &detail); err != nil {
			break
		}
		p.t, k.window = t, window(t)
		for i, f := range figs {
			p.figs[i] = math.NaN()
			if f.Valid {
				p.figs[i] = f.Float64
			}
		}
		if p.head, p.hist, err = splitDetail(detail); err != nil {
			err = fmt.Errorf("link %d at %d: %w", k.link, t, err)
			break
		}
		if got[k] == nil {
			keys = append(keys, k)
		}
		got[k] = append(got[k], p)
		n++
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err != nil || n == 0 {
		if err == nil {
			err = tx.Commit()
		}
		return 0, err
	}
	// Blocks packed before of the same windows (rows that came late):
	// their measurements join the rows', and they are written again.
	var old [][3]any
	err = func() error {
		rows, err := tx.QueryContext(ctx, "SELECT link_id, broker_id, t0, figs, detail FROM measurement_blocks WHERE "+
			in+" AND t0 >= ? AND t0 < ?"+s.d.forUpdate, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var link, broker, t0 int64
			var figs, detail []byte
			if err := rows.Scan(&link, &broker, &t0, &figs, &detail); err != nil {
				return err
			}
			k := blockKey{link, broker, window(t0)}
			if got[k] == nil {
				continue
			}
			ps, err := decodeBlock(t0, figs, detail)
			if err != nil {
				return fmt.Errorf("link %d at %d: %w", link, t0, err)
			}
			got[k] = mergePacked(ps, got[k])
			old = append(old, [3]any{link, t0, broker})
		}
		return rows.Err()
	}()
	if err != nil {
		return 0, fmt.Errorf("read blocks: %w", err)
	}
	for _, k := range old {
		if _, err = tx.ExecContext(ctx, "DELETE FROM measurement_blocks WHERE link_id = ? AND t0 = ? AND broker_id = ?", k[:]...); err != nil {
			return 0, fmt.Errorf("delete a block: %w", err)
		}
	}
	if err = s.insertBlocks(ctx, tx, keys, got); err != nil {
		return 0, fmt.Errorf("write blocks: %w", err)
	}
	if _, err = tx.ExecContext(ctx, "DELETE FROM measurements WHERE "+in+" AND t >= ? AND t < ?", args...); err != nil {
		return 0, fmt.Errorf("delete rows: %w", err)
	}
	if err = tx.Commit(); err != nil {
		return 0, err
	}
	return n, nil
}

// mergePacked merges two lists of measurements in time order into one; of
// two at the same time (a report stored again after its window was
// packed) it keeps the first list's.
func mergePacked(a, b []packed) []packed {
	out := make([]packed, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i].t < b[j].t:
			out = append(out, a[i])
			i++
		case i == len(a) || b[j].t < a[i].t:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i, j = i+1, j+1
		}
	}
	return out
}

// insertBlocks writes the blocks of each key's measurements, a few
// megabytes an INSERT.
func (s *sqlStore) insertBlocks(ctx context.Context, tx *sql.Tx, keys []blockKey, got map[blockKey][]packed) error {
	const maxBytes = 2 << 20
	var args []any
	rows, bytes := 0, 0
	flush := func() error {
		if rows == 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, insertRows("measurement_blocks", blockCols, rows, ""), args...)
		args, rows, bytes = args[:0], 0, 0
		return err
	}
	for _, k := range keys {
		ps := got[k]
		for len(ps) > 0 {
			// A block of at most blockMaxCount measurements and about
			// blockMaxBytes.
			end, size := 0, 0
			for end < len(ps) && end < blockMaxCount && (end == 0 || size+ps[end].size() <= blockMaxBytes) {
				size += ps[end].size()
				end++
			}
			figs, detail, err := encodeBlock(ps[:end])
			if err != nil {
				return fmt.Errorf("link %d: %w", k.link, err)
			}
			args = append(args, k.link, k.broker, ps[0].t, ps[end-1].t, end, figs, detail)
			rows++
			bytes += len(figs) + len(detail)
			ps = ps[end:]
			if bytes >= maxBytes || (rows+1)*len(blockCols) > s.d.maxVars {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}
