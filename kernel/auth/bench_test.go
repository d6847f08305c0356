package auth_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store/storetest"
)

// BenchmarkSignedInPage requests the back-office home /admin/ with a session cookie, and
// BenchmarkBearer an API route with a bearer token, through the server's whole handler
// chain (no network), 64 at once. Besides time and allocations they report how often a
// request waited for a connection of the reader pool (SQLite: 8 connections). The agent holds two permissions
// through a role of its own and belongs to a unit.
func BenchmarkSignedInPage(b *testing.B) {
	for _, d := range storetest.Engines() {
		b.Run(string(d), func(b *testing.B) {
			s := servertest.New(b, d, servertest.Options{})
			org := s.DefaultOrg()
			unit := s.NewUnit(org, 0, "Accueil")
			a := s.NewAgentWith(auth.NewAgent{OrgID: org, Email: "bench@mairie.fr", Password: servertest.Password,
				Perms: []string{"test.things.view", auth.PermUsers}, UnitIDs: []int64{unit}})
			token, err := s.Auth().SessionToken(b.Context(), a.ID, "127.0.0.1", "bench")
			if err != nil {
				b.Fatal(err)
			}
			serve(b, s, func(r *http.Request) { r.AddCookie(&http.Cookie{Name: auth.CookieName, Value: token}) }, "/admin/")
		})
	}
}

func BenchmarkBearer(b *testing.B) {
	for _, d := range storetest.Engines() {
		b.Run(string(d), func(b *testing.B) {
			s := servertest.New(b, d, servertest.Options{})
			org := s.DefaultOrg()
			a := s.NewAgent(org, "bench@mairie.fr", "test.things.view")
			token := s.APIToken(a, "test.things.view")
			serve(b, s, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }, "/api/test/things")
		})
	}
}

func serve(b *testing.B, s *servertest.Server, auth func(*http.Request), path string) {
	do := func() int {
		r := httptest.NewRequest("GET", path, nil)
		auth(r)
		w := httptest.NewRecorder()
		s.Handler.ServeHTTP(w, r)
		return w.Code
	}
	if code := do(); code != http.StatusOK {
		b.Fatalf("GET %s: %d", path, code)
	}
	before := s.DB.R.Stats()
	b.ReportAllocs()
	b.SetParallelism(32) // 64 requests at once on 2 cores, as wrk -c64 in bench/kernel.sh
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if code := do(); code != http.StatusOK {
				b.Errorf("GET %s: %d", path, code)
				return
			}
		}
	})
	b.StopTimer()
	// Requests that waited for a connection of the reader pool, and how long on average.
	after := s.DB.R.Stats()
	b.ReportMetric(float64(after.WaitCount-before.WaitCount)/float64(b.N), "poolwaits/op")
	b.ReportMetric(float64((after.WaitDuration-before.WaitDuration).Microseconds())/float64(b.N), "poolwait-µs/op")
}
