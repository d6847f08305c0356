package jobs

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"parvis.org/parvis/kernel/store"
)

// jobCollector reports the number of jobs in each River state at scrape time, so that an
// operator can alert on failed (discarded) or piling-up (available) jobs.
type jobCollector struct {
	db   *store.DB
	desc *prometheus.Desc
}

func newJobCollector(db *store.DB) *jobCollector {
	return &jobCollector{db: db, desc: prometheus.NewDesc("parvis_jobs",
		"Durable jobs by state (available, scheduled, running, retryable, completed, discarded, cancelled).",
		[]string{"state"}, nil)}
}

func (c *jobCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *jobCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := c.db.Read().QueryContext(ctx, "SELECT state, COUNT(*) FROM river_job GROUP BY state")
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	defer rows.Close()
	counts := map[string]float64{}
	for _, st := range []string{"available", "scheduled", "running", "retryable", "completed", "discarded", "cancelled", "pending"} {
		counts[st] = 0
	}
	for rows.Next() {
		var state string
		var n float64
		if err := rows.Scan(&state, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(c.desc, err)
			return
		}
		counts[state] = n
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, n, st)
	}
}
