package server

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/web"
)

// Metrics are per server (not global), so tests can build several servers in one process.
type Metrics struct {
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	cache    sync.Map // routeKey → *routeMetrics
}

func newMetrics(s *Server) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parvis_http_requests_total",
		Help: "HTTP requests by route pattern, method and status."}, []string{"route", "method", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "parvis_http_request_duration_seconds",
		Help: "HTTP request latency by route pattern.", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}},
		[]string{"route"})
	m.Registry.MustRegister(m.requests, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(s.DB.W, "write"))
	if s.DB.R != s.DB.W {
		m.Registry.MustRegister(collectors.NewDBStatsCollector(s.DB.R, "read"))
	}
	return m
}

// routeMetrics are the metric children of one route, method and status, kept so a request
// costs two atomic adds rather than two label hashes.
type routeMetrics struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

type routeKey struct {
	route, method string
	status        int
}

func (m *Metrics) children(route, method string, status int) *routeMetrics {
	k := routeKey{route, method, status}
	if c, ok := m.cache.Load(k); ok {
		return c.(*routeMetrics)
	}
	c := &routeMetrics{requests: m.requests.WithLabelValues(route, method, strconv.Itoa(status)), latency: m.latency.WithLabelValues(route)}
	m.cache.Store(k, c)
	return c
}

func (s *Server) observe(r *http.Request, pattern string, status int, d time.Duration) {
	if pattern == "" {
		pattern = "unmatched"
	}
	if s.metrics != nil {
		c := s.metrics.children(pattern, r.Method, status)
		c.requests.Inc()
		c.latency.Observe(d.Seconds())
	}
	lvl := slog.LevelDebug
	if status >= 500 {
		lvl = slog.LevelError
	}
	// Checked first: building the attributes costs more than the rest of a cached page.
	if !s.Log.Enabled(r.Context(), lvl) {
		return
	}
	s.Log.Log(r.Context(), lvl, "request", "method", r.Method, "path", r.URL.Path, "route", pattern, "status", status,
		"duration_ms", float64(d.Microseconds())/1000, "request_id", web.RequestIDFrom(r.Context()))
}

// mountOps adds /healthz (the process answers), /readyz (database reachable, migrations
// applied) and /metrics (Prometheus).
func (s *Server) mountOps() {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		res := map[string]string{"database": "ok", "migrations": "ok"}
		status := http.StatusOK
		if err := ping(ctx, s.DB.W); err != nil {
			res["database"], status = "unreachable", http.StatusServiceUnavailable
		} else if n, err := s.Pending(ctx); err != nil || n > 0 {
			res["migrations"], status = "pending", http.StatusServiceUnavailable
		}
		web.WriteJSON(w, status, res)
	})
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /admin/{$}", s.requireAgent(kernel.PermAnyAgent, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Views.Render(w, r, web.Page{Name: "kernel/admin_home.html", Layout: "backoffice", Title: "kernel.admin_home.title"})
	})).ServeHTTP)
}

// MetricsRegistry lets modules register their own collectors.
func (s *Server) MetricsRegistry() *prometheus.Registry { return s.metrics.Registry }

func ping(ctx context.Context, db *sql.DB) error { return db.PingContext(ctx) }
