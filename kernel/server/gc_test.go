package server

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	for _, tc := range []struct {
		live, headroom uint64
		want           int
	}{
		{10 << 20, 64 << 20, 640},  // a town's live heap: goal 74 MB instead of 20
		{100 << 20, 64 << 20, 100}, // past the headroom: Go's default
		{0, 64 << 20, 1000},        // almost empty: capped
		{32 << 20, 64 << 20, 200},
		{1 << 30, 64 << 20, 100},
	} {
		if got := gcPercentFor(tc.live, tc.headroom); got != tc.want {
			t.Errorf("gcPercentFor(%d MiB, %d MiB) = %d, want %d", tc.live>>20, tc.headroom>>20, got, tc.want)
		}
	}
}

// TestTuneGC runs the real tuner: GOGC is raised while the live heap is small, lowered
// after collections once the live heap outgrows the headroom, and restored by stop.
func TestTuneGC(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	runtime.GC()

	const headroom = 256 << 20 // well above this test binary's live heap
	stop := TuneGC(headroom)
	if p := gogc(); p <= 100 {
		stop()
		t.Fatalf("GOGC after TuneGC = %d, want it raised above 100 for a small heap", p)
	}

	// Grow the live heap past the headroom: after a collection the tuner brings GOGC down.
	keep := make([][]byte, 0, 320)
	for range 320 {
		keep = append(keep, make([]byte, 1<<20))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		time.Sleep(20 * time.Millisecond) // cleanups run on their own goroutine
		p := gogc()
		if p == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d with %d MiB live and a %d MiB headroom", p, liveHeap()>>20, headroom>>20)
		}
	}
	runtime.KeepAlive(keep)
	stop()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GOGC after stop = %d, want 100", p)
	}
}

// gogc reads the current GOGC (the runtime offers no getter: set and restore).
func gogc() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func TestTuneGCOffWhenTheOperatorChose(t *testing.T) {
	t.Setenv("GOGC", "150")
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	TuneGC(64 << 20)()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GOGC = %d after TuneGC with GOGC set, want it untouched (100)", p)
	}
}
