package portal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
)

// discard is a ResponseWriter that keeps nothing, so the benchmark measures the handler.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkCacheHit serves the demo district home page from the page cache through the
// whole middleware chain ("chain") and through the portal's own middleware only ("portal"),
// so the cost of the kernel's outer layers shows as the difference.
func BenchmarkCacheHit(b *testing.B) {
	s := servertest.New(b, store.SQLite, servertest.Options{})
	m := portalOf(b, s)
	if err := m.Demo(context.Background()); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/mairie-11/", nil)
	req.Host = "127.0.0.1"
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	s.Handler.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.Fatalf("first request: %d", rec.Code)
	}
	b.Logf("page: %d bytes, gzip %d", len(m.cache.get(m.cacheKey(req)).plain), len(m.cache.get(m.cacheKey(req)).gz))
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{
		{"chain", s.Handler},
		{"portal", m.Middleware(http.NotFoundHandler())},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := &discard{h: http.Header{}}
				tc.h.ServeHTTP(w, req)
				if w.h.Get("X-Parvis-Cache") != "hit" {
					b.Fatal("not a cache hit")
				}
			}
		})
	}
}
