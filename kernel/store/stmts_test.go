package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

func openTestSQLite(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.W.Exec(`CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if _, err := db.W.Exec(`INSERT INTO things (id, name) VALUES (?, ?)`, i, fmt.Sprint("n", i)); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func (c *stmtCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// The cache keeps at most its size, closes what it evicts, but only once nobody uses it.
func TestStmtCacheBoundAndEviction(t *testing.T) {
	ctx := context.Background()
	db := openTestSQLite(t)
	c := newStmtCache(db.R, 4)
	q := func(i int) string { return fmt.Sprintf("SELECT name FROM things WHERE id = ? AND %d = %d", i, i) }
	if e := c.get(ctx, q(0)); e != nil {
		t.Fatal("a text met once was prepared")
	}
	held := c.get(ctx, q(0))
	if held == nil {
		t.Fatal("a text met twice was not prepared")
	}
	for i := 1; i <= 10; i++ {
		c.get(ctx, q(i))
		if e := c.get(ctx, q(i)); e != nil {
			c.release(e)
		}
		if n := c.len(); n > 4 {
			t.Fatalf("cache holds %d statements, bound 4", n)
		}
	}
	// q(0) was evicted while held: it still runs, and is closed once released.
	var name string
	if err := held.st.QueryRowContext(ctx, 1).Scan(&name); err != nil || name != "n1" {
		t.Fatalf("evicted statement in use: %q, %v", name, err)
	}
	c.release(held)
	if err := held.st.QueryRowContext(ctx, 1).Scan(&name); err == nil {
		t.Fatal("evicted statement still open after its last use")
	}
	// The most recently used stay.
	if e, _ := c.lookup(q(10)); e == nil {
		t.Fatal("the last statement was evicted")
	} else {
		c.release(e)
	}
}

// Statements run prepared from the pools and in transactions, with the same results, and a
// transaction's statements stay in the transaction.
func TestStmtCacheQueries(t *testing.T) {
	ctx := context.Background()
	db := openTestSQLite(t)
	var names func(q Querier, nested bool) []string
	names = func(q Querier, nested bool) (out []string) {
		t.Helper()
		rows, err := q.QueryContext(ctx, `SELECT name FROM things WHERE id <= ? ORDER BY id`, 3)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			if nested {
				// The same multi-row text again while the first rows are open.
				out = append(out, names(q, false)...)
			}
			out = append(out, n)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for round := range 3 {
		if got := fmt.Sprint(names(db.Read(), false)); got != "[n1 n2 n3]" {
			t.Fatalf("round %d: read %s", round, got)
		}
		var n int
		if err := db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM things WHERE id > ?`, 0).Scan(&n); err != nil || n != 5+round {
			t.Fatalf("round %d: count %d, %v", round, n, err)
		}
		err := db.InTx(ctx, func(tx *Tx) error {
			if got := fmt.Sprint(names(tx, true)); got != "[n1 n2 n3 n1 n1 n2 n3 n2 n1 n2 n3 n3]" {
				t.Errorf("round %d: nested read in a transaction: %s", round, got)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO things (name) VALUES (?)`, "kept"); err != nil {
				return err
			}
			var id int64
			return tx.QueryRowContext(ctx, `SELECT MAX(id) FROM things WHERE name = ?`, "kept").Scan(&id)
		})
		if err != nil {
			t.Fatal(err)
		}
		// A rolled back transaction leaves nothing, prepared statements included.
		err = db.InTx(ctx, func(tx *Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO things (name) VALUES (?)`, "dropped"); err != nil {
				return err
			}
			return fmt.Errorf("roll back")
		})
		if err == nil {
			t.Fatal("no error")
		}
		if err := db.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM things WHERE name = ?`, "dropped").Scan(&n); err != nil || n != 0 {
			t.Fatalf("round %d: rolled back rows: %d, %v", round, n, err)
		}
	}
	if db.stW.len() == 0 || db.stR.len() == 0 {
		t.Fatalf("nothing prepared: writer %d, reader %d", db.stW.len(), db.stR.len())
	}
	if hits, _ := db.StmtStats(); hits == 0 {
		t.Fatal("no statement ran prepared")
	}
	// A prepared statement follows a change of schema.
	for range 2 {
		if _, err := db.Write().ExecContext(ctx, `SELECT * FROM things WHERE id = ?`, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.W.Exec(`ALTER TABLE things ADD COLUMN extra TEXT NOT NULL DEFAULT 'x'`); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Read().QueryContext(ctx, `SELECT * FROM things WHERE id = ?`, 1)
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	rows.Close()
	if len(cols) != 3 {
		t.Fatalf("columns after ALTER TABLE: %v", cols)
	}
}

// Goroutines sharing a small cache evict each other's statements while running them: every
// query still answers right (run with -race).
func TestStmtCacheConcurrentEviction(t *testing.T) {
	ctx := context.Background()
	db := openTestSQLite(t)
	db.stR = newStmtCache(db.R, 2)
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				id := (g+i)%5 + 1
				var name string
				q := fmt.Sprintf("SELECT name FROM things WHERE id = ? AND %d = %d", i%5, i%5)
				if err := db.Read().QueryRowContext(ctx, q, id).Scan(&name); err != nil || name != fmt.Sprint("n", id) {
					errc <- fmt.Errorf("id %d: %q, %v", id, name, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if n := db.stR.len(); n > 2 {
		t.Errorf("cache holds %d statements, bound 2", n)
	}
}
