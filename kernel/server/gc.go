package server

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// GC headroom.
//
// Parvis keeps little live data (about 10 MB for a town: templates, sites, the page cache),
// but a busy node allocates a few kilobytes per request. With Go's default GOGC=100 the
// heap goal is twice the live heap, so under a traffic peak the collector runs a dozen
// times a second, and the requests caught in each 10–15 ms marking phase make the tail
// latency (bench/README.md: p99 12 ms from the page cache, about 8 ms with this tuner).
//
// TuneGC keeps the heap goal at least `headroom` bytes above the live heap: GOGC is raised
// while the live heap is small and falls back to 100 as it grows past `headroom`, so a
// large instance's memory stays proportional to its live data. An operator's own GOGC or
// GOMEMLIMIT in the environment wins: the tuner stays off. After every collection the goal is
// recomputed from the live heap the runtime reports.

// gcTuner recomputes GOGC after each collection.
type gcTuner struct {
	headroom uint64
	mu       sync.Mutex // adjust (cleanup goroutine) against stop
	stopped  bool
	percent  int
	sample   []metrics.Sample
}

// gcSentinel is garbage from the start: its cleanup runs once per collection.
type gcSentinel struct {
	_ *int // has pointers and 16 bytes: never merged by the tiny allocator
	_ [8]byte
}

// TuneGC starts the tuner with the given headroom in bytes and returns a function that
// stops it (and restores GOGC=100). It does nothing, and returns a no-op, when headroom is
// 0 or GOGC or GOMEMLIMIT is set in the environment.
func TuneGC(headroom uint64) (stop func()) {
	if headroom == 0 || os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	t := newGCTuner(headroom)
	t.adjust()
	t.arm()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.stopped {
			t.stopped = true
			debug.SetGCPercent(100)
		}
	}
}

func newGCTuner(headroom uint64) *gcTuner {
	return &gcTuner{headroom: headroom, percent: 100,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
}

// arm registers a cleanup on a fresh sentinel, run after the next collection frees it.
// Cleanups run one at a time on the runtime's cleanup goroutine, so adjust needs no lock.
func (t *gcTuner) arm() {
	runtime.AddCleanup(new(gcSentinel), func(t *gcTuner) {
		if t.adjust() {
			t.arm()
		}
	}, t)
}

// adjust sets GOGC so that the next goal is max(2 × live, live + headroom); false once
// the tuner is stopped.
func (t *gcTuner) adjust() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return true
	}
	p := gcPercentFor(t.sample[0].Value.Uint64(), t.headroom)
	// Small moves are not worth the runtime's bookkeeping; large ones always happen.
	if d := p - t.percent; d > t.percent/10 || -d > t.percent/10 {
		debug.SetGCPercent(p)
		t.percent = p
	}
	return true
}

// gcPercentFor returns the GOGC giving a heap goal of max(2 × live, live + headroom),
// capped at 1000 (an almost empty heap would otherwise ask for an absurd value).
func gcPercentFor(live, headroom uint64) int {
	if live < 1<<20 {
		live = 1 << 20
	}
	p := headroom * 100 / live
	switch {
	case p < 100:
		return 100
	case p > 1000:
		return 1000
	}
	return int(p)
}
