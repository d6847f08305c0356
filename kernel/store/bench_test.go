package store_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

const benchRows = 1000

// benchDB returns a database with a session-like table of benchRows rows.
func benchDB(b *testing.B, d store.Dialect) *store.DB {
	db := storetest.Open(b, d)
	ctx := context.Background()
	err := db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE bench_sessions (id INTEGER PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE,
			agent_id INTEGER NOT NULL, stage TEXT NOT NULL, expires_at TIMESTAMP NOT NULL, client_ip TEXT NOT NULL)`); err != nil {
			return err
		}
		exp := time.Now().Add(time.Hour).UTC()
		for i := range benchRows {
			if _, err := tx.ExecContext(ctx, `INSERT INTO bench_sessions (id, token_hash, agent_id, stage, expires_at, client_ip) VALUES (?, ?, ?, ?, ?, ?)`,
				i+1, fmt.Sprintf("hash-%04d", i), i%50, "ok", exp, "127.0.0.1"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return db
}

const benchQuery = `SELECT id, agent_id, stage, expires_at, client_ip FROM bench_sessions WHERE token_hash = ? AND stage = ? AND expires_at > ?`

func readRow(ctx context.Context, q store.Querier, i int64, now time.Time) error {
	var id, agent int64
	var stage, ip string
	var exp time.Time
	return q.QueryRowContext(ctx, benchQuery, fmt.Sprintf("hash-%04d", i%benchRows), "ok", now).Scan(&id, &agent, &stage, &exp, &ip)
}

// BenchmarkReadRow reads a session-like row by its hash from every goroutine at once, the
// shape of the session look-up every signed-in request makes: through the store's reader
// (statements prepared once per connection on SQLite), and, as "unprepared", straight on
// the *sql.DB as the store did before its statement cache.
func BenchmarkReadRow(b *testing.B) {
	for _, d := range storetest.Engines() {
		db := benchDB(b, d)
		ways := map[string]store.Querier{"store": db.Read()}
		if d == store.SQLite {
			ways["unprepared"] = db.R
		}
		for _, way := range []string{"store", "unprepared"} {
			q, ok := ways[way]
			if !ok {
				continue
			}
			b.Run(string(d)+"/"+way, func(b *testing.B) {
				ctx := context.Background()
				now := time.Now().UTC()
				var n atomic.Int64
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := readRow(ctx, q, n.Add(1), now); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
		}
	}
}

// BenchmarkReadPool runs 64 concurrent "requests" on SQLite, each a session-like read and
// then some CPU work outside the database (work=0: none; work=N: N rounds of SHA-256 over
// 1 KiB, about N·2 µs), with reader pools of several sizes, and reports the latency of a
// request at the 50th and 99th percentile.
func BenchmarkReadPool(b *testing.B) {
	db := benchDB(b, store.SQLite)
	for _, work := range []int{0, 100} {
		for _, conns := range []int{2, 4, 8, 16, 64} {
			b.Run(fmt.Sprintf("work=%d/conns=%d", work, conns), func(b *testing.B) {
				db.R.SetMaxOpenConns(conns)
				db.R.SetMaxIdleConns(conns)
				ctx := context.Background()
				now := time.Now().UTC()
				var n atomic.Int64
				var mu sync.Mutex
				var lat []time.Duration
				b.SetParallelism(32) // 64 goroutines on 2 cores
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					var mine []time.Duration
					var buf [1024]byte
					for pb.Next() {
						t0 := time.Now()
						if err := readRow(ctx, db.Read(), n.Add(1), now); err != nil {
							b.Fatal(err)
						}
						for range work {
							h := sha256.Sum256(buf[:])
							buf[0] = h[0]
						}
						mine = append(mine, time.Since(t0))
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
				b.StopTimer()
				slices.Sort(lat)
				if len(lat) > 0 {
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
				}
			})
		}
	}
}
