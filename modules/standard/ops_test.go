package standard_test

import (
	"strings"
	"testing"

	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store/storetest"
)

// TestOperationsEndpoints: health, readiness and the Prometheus metrics named in the kernel
// issue (requests by route and status, latency histograms, database pool, jobs).
func TestOperationsEndpoints(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			s := servertest.New(t, d, servertest.Options{})
			c := s.Client()
			if r := c.Get("/healthz"); r.Status != 200 {
				t.Fatalf("/healthz %d", r.Status)
			}
			if r := c.Get("/readyz"); r.Status != 200 || !strings.Contains(r.Body, `"migrations":"ok"`) {
				t.Fatalf("/readyz %d %s", r.Status, r.Body)
			}
			c.Get("/admin/login")
			r := c.Get("/metrics")
			for _, want := range []string{
				`parvis_http_requests_total{method="GET",route="GET /admin/login",status="200"} 1`,
				`parvis_http_request_duration_seconds_bucket{route="GET /admin/login"`,
				`go_sql_max_open_connections{db_name="write"}`,
				`parvis_jobs{state="available"}`,
				`parvis_jobs{state="discarded"}`,
				"go_goroutines",
			} {
				if !strings.Contains(r.Body, want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}
			if id := r.Header.Get("X-Request-Id"); len(id) < 8 {
				t.Errorf("no request ID: %q", id)
			}
		})
	}
}
