// Package store opens the Parvis database — SQLite (embedded, pure Go) or PostgreSQL — and
// gives modules one small API over both: queries are written once with `?` placeholders
// (rebound to `$n` on PostgreSQL), writes go through a single-connection writer on SQLite so
// that a write transaction takes the write lock when it begins, and reads use a pool. On
// SQLite statements run prepared, from a bounded cache per pool (stmts.go).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// Dialect names the SQL engine behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is the handle every module receives. W is the writer pool (one connection on SQLite),
// R the reader pool. On PostgreSQL both point at the same pool.
type DB struct {
	Dialect Dialect
	URL     string // as configured, password removed (for logs and `parvis doctor`)
	W       *sql.DB
	R       *sql.DB
	path    string // SQLite file path

	stW, stR *stmtCache // prepared statements of each pool (SQLite only, see stmts.go)
}

// ErrUnreachable wraps every failure to reach the database at open time.
var ErrUnreachable = errors.New("database unreachable")

// Open opens `sqlite:PATH` or `postgres://…` and checks that the database answers.
func Open(ctx context.Context, dsn string) (*DB, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn)
	default:
		return nil, fmt.Errorf("PARVIS_DATABASE %q: must start with sqlite: or postgres://", dsn)
	}
}

// ReadConns is the size of the SQLite reader pool. In WAL mode readers never wait for each
// other nor for the writer, and the pure-Go SQLite is CPU-bound, so more connections than
// a few per core add no throughput, only memory (each has its own page cache and prepared
// statements). Measured on 2 shared cores with 64 signed-in requests in flight, one query
// each (BenchmarkSignedInPage in kernel/auth): throughput did not differ beyond noise from
// 2 to 64 connections; only a pool as large as the concurrency ends the waits for a
// connection, which then become waits for a core.
const ReadConns = 8

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, fmt.Errorf("PARVIS_DATABASE: sqlite: needs a file path, as in sqlite:./data/parvis.db")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("%w: creating %s: %v", ErrUnreachable, dir, err)
		}
	}
	// busy_timeout first so that every later pragma already waits instead of failing.
	pragmas := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	// The writer keeps its statement sub-journals in memory (temp_store): a savepoint inside
	// a transaction (a group of bookings runs each in one) journals the pages it changes
	// there, and past 64 KiB SQLite would spill them to a temporary file, a system call per
	// page. Writes are short, so this memory stays small; readers keep the default (their
	// large sorts may spill to disk).
	w, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=temp_store(MEMORY)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// The writer must exist (and WAL be set) before readers open with query_only.
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("%w: sqlite %s: %v", ErrUnreachable, path, err)
	}
	r, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	r.SetMaxOpenConns(ReadConns)
	r.SetMaxIdleConns(ReadConns)
	r.SetConnMaxIdleTime(5 * time.Minute)
	return &DB{Dialect: SQLite, URL: "sqlite:" + path, W: w, R: r, path: path,
		stW: newStmtCache(w, stmtCacheSize), stR: newStmtCache(r, stmtCacheSize)}, nil
}

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, Redact(dsn), err)
	}
	return &DB{Dialect: Postgres, URL: Redact(dsn), W: db, R: db}, nil
}

// Redact removes a password from a database URL.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Path returns the SQLite file path ("" on PostgreSQL).
func (db *DB) Path() string { return db.path }

// Close closes both pools.
func (db *DB) Close() error {
	for _, c := range []*stmtCache{db.stR, db.stW} {
		if c != nil {
			c.close()
		}
	}
	err := db.W.Close()
	if db.R != db.W {
		err = errors.Join(err, db.R.Close())
	}
	return err
}

// Querier is what query functions take: a *Tx, or the DB's reader or writer through Q.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Q wraps a pool or transaction so that `?` placeholders are rebound for the dialect, and
// statements run prepared on SQLite (see stmts.go).
type Q struct {
	d Dialect
	q interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
	c  *stmtCache // nil: run every statement unprepared
	tx *Tx        // set on a transaction's Querier
}

// stmt returns the prepared statement of s for this Querier, and the cache entry to hand
// to done once the statement has run; nil when s is to run unprepared. multi tells a multi-row query,
// which a transaction runs unprepared (see stmts.go).
func (q Q) stmt(ctx context.Context, s string, multi bool) (*sql.Stmt, *stmtEntry) {
	if q.c == nil {
		return nil, nil
	}
	if q.tx == nil {
		e := q.c.get(ctx, s)
		if e == nil {
			return nil, nil
		}
		return e.st, e
	}
	if multi {
		return nil, nil
	}
	// A statement bound once serves the whole transaction (a transaction running the same
	// statements many times, as a group of bookings does, binds each once).
	if st := q.tx.bound[s]; st != nil {
		return st, nil
	}
	e, want := q.c.lookup(s)
	if e == nil {
		if want {
			q.tx.missed = append(q.tx.missed, s)
		}
		return nil, nil
	}
	st := q.tx.Raw.StmtContext(ctx, e.st)
	q.c.release(e) // the transaction's statement holds its parent until the transaction ends
	if q.tx.bound == nil {
		q.tx.bound = map[string]*sql.Stmt{}
	}
	q.tx.bound[s] = st
	return st, nil
}

func (q Q) done(e *stmtEntry) {
	if e != nil {
		q.c.release(e)
	}
}

func (q Q) ExecContext(ctx context.Context, s string, args ...any) (sql.Result, error) {
	s = Rebind(q.d, s)
	if st, e := q.stmt(ctx, s, false); st != nil {
		defer q.done(e)
		return st.ExecContext(ctx, args...)
	}
	return q.q.ExecContext(ctx, s, args...)
}

func (q Q) QueryContext(ctx context.Context, s string, args ...any) (*sql.Rows, error) {
	s = Rebind(q.d, s)
	if st, e := q.stmt(ctx, s, true); st != nil {
		defer q.done(e)
		return st.QueryContext(ctx, args...)
	}
	return q.q.QueryContext(ctx, s, args...)
}

func (q Q) QueryRowContext(ctx context.Context, s string, args ...any) *sql.Row {
	s = Rebind(q.d, s)
	if st, e := q.stmt(ctx, s, false); st != nil {
		defer q.done(e)
		return st.QueryRowContext(ctx, args...)
	}
	return q.q.QueryRowContext(ctx, s, args...)
}

// Read returns a Querier on the reader pool.
func (db *DB) Read() Querier { return Q{d: db.Dialect, q: db.R, c: db.stR} }

// Write returns a Querier on the writer pool, for single statements outside a transaction.
func (db *DB) Write() Querier { return Q{d: db.Dialect, q: db.W, c: db.stW} }

// Tx is a write transaction. Its Querier methods rebind placeholders; Raw is the *sql.Tx
// itself, for libraries (the job queue) that enlist in the same transaction.
type Tx struct {
	Q
	Raw     *sql.Tx
	Dialect Dialect
	after   []func()
	missed  []string             // statements to prepare once the transaction has ended
	bound   map[string]*sql.Stmt // prepared statements bound to this transaction, by text
}

// AfterCommit runs f once the transaction has committed (never if it rolls back): the place
// for cache invalidation and in-process notifications.
func (tx *Tx) AfterCommit(f func()) { tx.after = append(tx.after, f) }

// InTx runs f in a write transaction, committing if f returns nil and rolling back otherwise.
// On SQLite the transaction begins IMMEDIATE (it holds the write lock from its first
// statement), so a read-then-write inside f cannot fail with "database is locked".
func (db *DB) InTx(ctx context.Context, f func(tx *Tx) error) (err error) {
	raw, err := db.W.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	tx := &Tx{Raw: raw, Dialect: db.Dialect}
	tx.Q = Q{d: db.Dialect, q: raw, c: db.stW, tx: tx}
	defer db.prepareMissed(ctx, tx) // runs last, once the connection is back in the pool
	defer func() {
		if p := recover(); p != nil {
			_ = raw.Rollback()
			panic(p)
		}
	}()
	if err := f(tx); err != nil {
		_ = raw.Rollback()
		return err
	}
	if err := raw.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for _, a := range tx.after {
		a()
	}
	return nil
}

// prepareMissed prepares, on the writer, the statements a transaction met for the second
// time without a prepared one (at most 16: the next transactions do the rest).
func (db *DB) prepareMissed(ctx context.Context, tx *Tx) {
	if db.stW == nil || len(tx.missed) == 0 || ctx.Err() != nil {
		return
	}
	for i, s := range tx.missed {
		if i == 16 {
			break
		}
		db.stW.prepare(ctx, s, false)
	}
}

// Rebind turns `?` placeholders into `$1, $2…` for PostgreSQL, leaving string literals,
// quoted identifiers and comments alone.
func Rebind(d Dialect, q string) string {
	if d != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch c {
		case '\'', '"':
			j := i + 1
			for j < len(q) && q[j] != c {
				j++
			}
			if j >= len(q) {
				j = len(q) - 1
			}
			b.WriteString(q[i : j+1])
			i = j
		case '-':
			if i+1 < len(q) && q[i+1] == '-' {
				j := strings.IndexByte(q[i:], '\n')
				if j < 0 {
					b.WriteString(q[i:])
					return b.String()
				}
				b.WriteString(q[i : i+j])
				i += j - 1
				continue
			}
			b.WriteByte(c)
		case '?':
			n++
			fmt.Fprintf(&b, "$%d", n)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// IsUniqueViolation reports whether err is a unique-constraint failure on either engine.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "SQLSTATE 23505")
}

// ErrNotFound is returned (wrapped) by query functions when a row does not exist.
var ErrNotFound = errors.New("not found")

// NotFound maps sql.ErrNoRows to ErrNotFound, wrapped with what was looked for.
func NotFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return err
}
