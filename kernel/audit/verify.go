package audit

import (
	"context"
	"database/sql"
	"fmt"

	"parvis.org/parvis/kernel/store"
)

// Report is the outcome of a walk of the chain.
type Report struct {
	Entries int64  // entries found intact
	Head    string // hash of the last intact entry (Genesis when empty)
}

// BrokenError names the first entry at which the chain does not hold.
type BrokenError struct {
	Seq    int64
	Reason string
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("audit chain broken at entry %d: %s", e.Seq, e.Reason)
}

// Verify walks the whole chain in order, streaming rows, and returns a *BrokenError naming
// the first entry that does not hold:
//   - a gap in the sequence: that entry was deleted;
//   - an entry whose own hash does not match its fields: it was altered (or moved: the
//     sequence number is hashed too);
//   - an entry whose hash holds but whose prev_hash does not match the entry before: the
//     one before was altered and its hash recomputed, so that one is named;
//   - entries past the head, or a head past the last entry: inserted or deleted at the end.
//
// It reads one consistent snapshot, so appends made meanwhile are simply not seen.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if l.db.Dialect == store.Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := l.db.R.BeginTx(ctx, opts)
	if err != nil {
		return Report{}, fmt.Errorf("audit verify: %w", err)
	}
	defer tx.Rollback()

	var headSeq int64
	var headHash string
	if err := tx.QueryRowContext(ctx, readHead).Scan(&headSeq, &headHash); err != nil {
		return Report{}, fmt.Errorf("audit verify: reading the chain head: %w", err)
	}
	rows, err := tx.QueryContext(ctx, store.Rebind(l.db.Dialect, walkEntries))
	if err != nil {
		return Report{}, fmt.Errorf("audit verify: %w", err)
	}
	defer rows.Close()

	rep := Report{Head: Genesis}
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return rep, fmt.Errorf("audit verify: reading after entry %d: %w", rep.Entries, err)
		}
		want := rep.Entries + 1
		if b := check(e, want, rep.Head, headSeq); b != nil {
			if b.Seq == want-1 {
				// The previous entry is to blame: it no longer counts as intact.
				rep.Entries--
			}
			return rep, b
		}
		rep.Entries, rep.Head = e.Seq, e.Hash
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("audit verify: %w", err)
	}
	switch {
	case rep.Entries < headSeq:
		return rep, &BrokenError{Seq: rep.Entries + 1, Reason: fmt.Sprintf(
			"entry missing: the chain ends at entry %d but its head is at entry %d (entries deleted at the end)", rep.Entries, headSeq)}
	case rep.Head != headHash:
		return rep, &BrokenError{Seq: headSeq, Reason: "the chain head's hash does not match the last entry (entry altered at the end)"}
	}
	return rep, nil
}

// check returns why e, expected at position want after an entry hashing prev, breaks the
// chain, or nil.
func check(e *Entry, want int64, prev string, headSeq int64) *BrokenError {
	ownOK := ComputeHash(e) == e.Hash
	switch {
	case e.Seq > want:
		return &BrokenError{Seq: want, Reason: fmt.Sprintf("entry missing: the chain jumps from entry %d to entry %d (entry deleted)", want-1, e.Seq)}
	case e.Seq < want:
		return &BrokenError{Seq: e.Seq, Reason: fmt.Sprintf("unexpected sequence number %d where %d was expected (entry inserted)", e.Seq, want)}
	case e.PrevHash != prev && ownOK && want > 1:
		return &BrokenError{Seq: want - 1, Reason: fmt.Sprintf(
			"entry %d no longer links to it: it was altered and its hash recomputed", want)}
	case e.PrevHash != prev:
		return &BrokenError{Seq: e.Seq, Reason: fmt.Sprintf(
			"prev_hash does not match entry %d (entry altered, moved or inserted)", want-1)}
	case !ownOK:
		return &BrokenError{Seq: e.Seq, Reason: "hash mismatch: the entry's fields were altered"}
	case e.Seq > headSeq:
		return &BrokenError{Seq: e.Seq, Reason: fmt.Sprintf("entry beyond the chain head at entry %d (entry inserted at the end)", headSeq)}
	}
	return nil
}
