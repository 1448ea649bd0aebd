package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// pruneChunk is how many rows one DELETE removes: each is its own short
// transaction, so a prune of days of data never holds locks for long and
// writers get in between.
const pruneChunk = 5000

// pruneLinks is how many links one DELETE names: each one's old rows are
// a range at the front of its part of the key, found without a scan.
const pruneLinks = 500

// Prune deletes the measurements taken before before (by report time) and
// the reports received before it (by the aggregator's clock), pruneLinks
// links and a chunk of rows at a time; brokers, links and actions stay. A
// block of measurements goes whole, once all of its measurements are
// older than before. It returns how many rows went (a block is one),
// also when it fails or ctx ends part way, when what went stays gone.
func (s *sqlStore) Prune(ctx context.Context, before time.Time) (int64, error) {
	cut := dbTime(before)
	links, err := s.allLinkIDs(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: prune: links: %w", err)
	}
	var n int64
	err = chunks(len(links), pruneLinks, func(lo, hi int) error {
		q := s.d.deleteSome("measurements", "link_id, t, broker_id", "link_id IN ("+bindVars(hi-lo)+") AND t < ?")
		k, err := s.deleteAll(ctx, q, append(links[lo:hi:hi], cut)...)
		n += k
		if err != nil {
			return fmt.Errorf("store: prune: measurements of links %v to %v: %w", links[lo], links[hi-1], err)
		}
		// A block goes when its last measurement is older than before.
		q = s.d.deleteSome("measurement_blocks", "link_id, t0, broker_id", "link_id IN ("+bindVars(hi-lo)+") AND t0 < ? AND t1 < ?")
		k, err = s.deleteAll(ctx, q, append(links[lo:hi:hi], cut, cut)...)
		n += k
		if err != nil {
			return fmt.Errorf("store: prune: blocks of links %v to %v: %w", links[lo], links[hi-1], err)
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	k, err := s.deleteAll(ctx, s.d.deleteSome("reports", "id", "received_at < ?"), cut)
	n += k
	if err != nil {
		return n, fmt.Errorf("store: prune: reports: %w", err)
	}
	return n, nil
}

// allLinkIDs are the row ids of every link, in order, as arguments.
func (s *sqlStore) allLinkIDs(ctx context.Context) ([]any, error) {
	var ids []any
	err := s.each(ctx, "SELECT id FROM links ORDER BY id", nil, func(rows *sql.Rows) error {
		var id int64
		err := rows.Scan(&id)
		ids = append(ids, id)
		return err
	})
	return ids, err
}

// deleteAll runs a chunked DELETE until it deletes less than a chunk.
func (s *sqlStore) deleteAll(ctx context.Context, q string, args ...any) (int64, error) {
	args = append(args, s.pruneChunk)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, err := s.deleteOnce(ctx, q, args)
		n += k
		if err != nil || k < int64(s.pruneChunk) {
			return n, err
		}
	}
}

func (s *sqlStore) deleteOnce(ctx context.Context, q string, args []any) (int64, error) {
	if s.d.serialWrites {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
