package store

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// Prepared statements on SQLite. modernc.org/sqlite parses and plans every statement run
// through a pool or a transaction afresh, which cost about as much as running the short
// look-ups signed-in requests make (session, agent, rights). Each SQLite pool therefore
// keeps its statements, by SQL text, prepared on the pool: database/sql prepares one on
// each connection at its first use there and keeps it. PostgreSQL needs none of this:
// pgx's default query mode already prepares and caches statements per connection.
//
// The cache is bounded (dynamic SQL, as IN lists of varying length, must not grow it
// without end): least recently used statements are closed beyond stmtCacheSize, and a
// text is prepared only when it is seen a second time, so one-off texts never are.
//
// Inside a transaction a prepared statement is bound to it with Tx.StmtContext, for Exec
// and QueryRow only: rows of a multi-row query may still be open when the same text runs
// again on the transaction's single connection, and SQLite resets a statement when it
// runs anew. A text first met in a transaction is prepared after the transaction ends,
// since on SQLite the writer's only connection is the transaction's until then.

// stmtCacheSize bounds the statements kept per pool; each connection of the pool holds its
// own prepared copy of those it has run (a few kilobytes each).
const stmtCacheSize = 256

type stmtEntry struct {
	sql        string
	st         *sql.Stmt
	refs       int  // callers between get and the end of their call
	gone       bool // evicted: closed when refs drops to zero
	prev, next *stmtEntry
}

type stmtCache struct {
	db   *sql.DB
	size int

	mu   sync.Mutex
	m    map[string]*stmtEntry
	seen map[string]struct{} // texts met once, not prepared yet
	head stmtEntry           // sentinel of the recency list: head.next is the most recent

	hits, misses atomic.Int64
}

func newStmtCache(db *sql.DB, size int) *stmtCache {
	c := &stmtCache{db: db, size: size, m: map[string]*stmtEntry{}, seen: map[string]struct{}{}}
	c.head.prev, c.head.next = &c.head, &c.head
	return c
}

func (c *stmtCache) unlink(e *stmtEntry) { e.prev.next, e.next.prev = e.next, e.prev }
func (c *stmtCache) pushFront(e *stmtEntry) {
	e.prev, e.next = &c.head, c.head.next
	c.head.next.prev = e
	c.head.next = e
}

// lookup returns the entry of q, referenced, or nil; a nil return with want true means
// the text has been met before and should be prepared.
func (c *stmtCache) lookup(q string) (e *stmtEntry, want bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[q]; e != nil {
		c.unlink(e)
		c.pushFront(e)
		e.refs++
		c.hits.Add(1)
		return e, false
	}
	c.misses.Add(1)
	if _, ok := c.seen[q]; ok {
		return nil, true
	}
	if len(c.seen) >= c.size {
		clear(c.seen)
	}
	c.seen[q] = struct{}{}
	return nil, false
}

// get returns the entry of q, preparing it on the pool when it is met the second time; nil
// means "run it unprepared".
func (c *stmtCache) get(ctx context.Context, q string) *stmtEntry {
	e, want := c.lookup(q)
	if e != nil || !want {
		return e
	}
	return c.prepare(ctx, q, true)
}

// prepare prepares q on the pool and adds it, referenced when ref is set.
func (c *stmtCache) prepare(ctx context.Context, q string, ref bool) *stmtEntry {
	if !ref {
		c.mu.Lock()
		_, ok := c.m[q]
		c.mu.Unlock()
		if ok {
			return nil
		}
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil // the unprepared run reports the error, if it persists
	}
	var closeNow []*sql.Stmt
	c.mu.Lock()
	e := c.m[q]
	if e != nil {
		closeNow = append(closeNow, st) // prepared meanwhile by another caller
	} else {
		e = &stmtEntry{sql: q, st: st}
		c.m[q] = e
		c.pushFront(e)
		delete(c.seen, q)
		for len(c.m) > c.size {
			old := c.head.prev
			c.unlink(old)
			delete(c.m, old.sql)
			old.gone = true
			if old.refs == 0 {
				closeNow = append(closeNow, old.st)
			}
		}
	}
	if ref {
		e.refs++
	}
	c.mu.Unlock()
	for _, s := range closeNow {
		_ = s.Close()
	}
	return e
}

// release ends a caller's use of e. Rows still open keep the statement alive on their own:
// database/sql closes a statement only once its rows are closed.
func (c *stmtCache) release(e *stmtEntry) {
	c.mu.Lock()
	e.refs--
	closeIt := e.gone && e.refs == 0
	c.mu.Unlock()
	if closeIt {
		_ = e.st.Close()
	}
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, e := range c.m {
		_ = e.st.Close()
		delete(c.m, q)
	}
	c.head.prev, c.head.next = &c.head, &c.head
}

// StmtStats reports how many statements run through the DB's SQLite pools found their
// prepared statement (hits) and how many ran unprepared (misses); zero on PostgreSQL.
func (db *DB) StmtStats() (hits, misses int64) {
	for _, c := range []*stmtCache{db.stR, db.stW} {
		if c != nil {
			hits += c.hits.Load()
			misses += c.misses.Load()
		}
	}
	return hits, misses
}
