package suites_test

import (
	"net"
	"strings"
	"testing"

	"parvis.org/parvis/kernel/mail/mailtest"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
)

// closedPort is an address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestDoctor(t *testing.T) {
	// A real instance for the base URL checks.
	live := servertest.New(t, store.SQLite, servertest.Options{})
	good := t.TempDir()
	goodEnv := []string{"PARVIS_DATA=" + good, "PARVIS_LOG_LEVEL=error", "PARVIS_SMTP=" + mailtest.New(t).URL(), "PARVIS_BASE_URL=" + live.URL}
	if code, _, errs := run(goodEnv, "migrate"); code != 0 {
		t.Fatalf("migrate: %s", errs)
	}
	cases := []struct {
		name string
		env  []string
		code int
		want []string
	}{
		{"all good", goodEnv, 0, []string{"ok    database reachable", "ok    migrations are up to date", "ok    SMTP server answers", "ok    instance answers", "instance is ready"}},
		{"pending migrations", []string{"PARVIS_DATA=" + t.TempDir(), "PARVIS_LOG_LEVEL=error"}, 1, []string{"migrations are not applied", "parvis migrate"}},
		{"everything wrong", []string{"PARVIS_DATA=" + t.TempDir(), "PARVIS_DATABASE=postgres://nobody@" + closedPort(t) + "/none",
			"PARVIS_SMTP=smtp://" + closedPort(t) + "?tls=none", "PARVIS_BASE_URL=https://parvis.invalid"}, 1,
			[]string{"FAIL  PARVIS_SECRET_KEY is not set", "FAIL  database unreachable", "FAIL  SMTP server does not answer", "FAIL  host parvis.invalid", "problem(s) to fix"}},
		{"SMTP without STARTTLS", []string{"PARVIS_DATA=" + good, "PARVIS_SMTP=smtp://" + mailtest.New(t).Addr(), "PARVIS_BASE_URL=" + live.URL}, 1,
			[]string{"does not offer STARTTLS"}},
		{"not Parvis at the base URL", []string{"PARVIS_DATA=" + good, "PARVIS_BASE_URL=" + live.URL + "/nothing-here"}, 1, []string{"answers 404"}},
	}
	for _, c := range cases {
		code, out, errs := run(c.env, "doctor")
		for _, w := range c.want {
			if code != c.code || !strings.Contains(out, w) {
				t.Errorf("%s: exit %d, want %d with %q\n%s%s", c.name, code, c.code, w, out, errs)
				break
			}
		}
	}
}
