package appointments

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"parvis.org/parvis/kernel/store"
)

// cpuNow is the CPU time (user + system) the process has used so far: benchmarks report it
// per operation ("cpu-ns/op") beside the wall time, which a loaded machine inflates.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU starts counting the process's CPU time; call the result after the loop.
func reportCPU(b *testing.B) func() {
	start := cpuNow()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuNow()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// benchProfile, when APPT_BENCH_PROFILE names a directory, writes a CPU profile of one
// phase of the bench (whole process: server and clients), and prints the process's CPU
// time per operation and, after a booking rush, how long the notifier took to work
// through its outbox.
func benchProfile(t testing.TB, d store.Dialect, f *fixture, phase string) func(ops int64) {
	dir := os.Getenv("APPT_BENCH_PROFILE")
	var out *os.File
	if dir != "" {
		var err error
		if out, err = os.Create(filepath.Join(dir, string(d)+"-"+phase+".pprof")); err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			t.Fatal(err)
		}
	}
	c0, t0 := cpuNow(), time.Now()
	h0 := schedLatencies()
	return func(ops int64) {
		cpu, wall := cpuNow()-c0, time.Since(t0)
		sched := schedQuantiles(h0, schedLatencies())
		if out != nil {
			pprof.StopCPUProfile()
			out.Close()
		}
		backlog := -1
		var drain time.Duration
		if f != nil && phase == "http" && os.Getenv("APPT_BENCH_DRAIN") != "" {
			backlog = f.count(t, `SELECT COUNT(*) FROM appt_appointments WHERE notified_at IS NULL AND status = 'confirmed'`)
			d0 := time.Now()
			for f.count(t, `SELECT COUNT(*) FROM appt_appointments WHERE notified_at IS NULL AND status = 'confirmed'`) > 0 && time.Since(d0) < 5*time.Minute {
				time.Sleep(20 * time.Millisecond)
			}
			drain = time.Since(d0)
		}
		var batches, grouped, batchNanos int64
		if f != nil {
			batches, grouped, batchNanos = f.m.booking.group.batches.Load(), f.m.booking.group.bookings.Load(), f.m.booking.group.batchNanos.Load()
		}
		fmt.Printf("PHASE engine=%s phase=%s ops=%d wall_s=%.2f cpu_s=%.2f cpu_us_per_op=%.0f outbox_left=%d outbox_drain_s=%.2f group_commits=%d grouped_bookings=%d batches_s=%.2f sched_wait_p50_us=%.0f p99_us=%.0f\n",
			d, phase, ops, wall.Seconds(), cpu.Seconds(), float64(cpu.Microseconds())/float64(max(ops, 1)), backlog, drain.Seconds(),
			batches, grouped, float64(batchNanos)/1e9, sched[0]*1e6, sched[1]*1e6)
	}
}

// schedLatencies is the runtime's histogram of the time goroutines waited to run.
func schedLatencies() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return s[0].Value.Float64Histogram()
}

// schedQuantiles returns the median and the 99th percentile of the waits between two
// readings of the histogram.
func schedQuantiles(a, b *metrics.Float64Histogram) [2]float64 {
	var out [2]float64
	if a == nil || b == nil || len(a.Counts) != len(b.Counts) {
		return out
	}
	var total uint64
	d := make([]uint64, len(b.Counts))
	for i := range d {
		d[i] = b.Counts[i] - a.Counts[i]
		total += d[i]
	}
	for qi, q := range []float64{0.5, 0.99} {
		var acc uint64
		for i, c := range d {
			acc += c
			if float64(acc) >= q*float64(total) {
				out[qi] = b.Buckets[i+1]
				break
			}
		}
	}
	return out
}
