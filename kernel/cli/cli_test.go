package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"parvis.org/parvis/kernel/cli"
)

func run(env []string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cli.Main(args, env, &out, &errb)
	return code, out.String(), errb.String()
}

func TestBadSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cases := []struct {
		env  []string
		args []string
		code int
		want string
	}{
		{[]string{"PARVIS_LISTN=:80"}, []string{"migrate"}, 2, "PARVIS_LISTN"},
		{[]string{"PARVIS_LISTEN=nope"}, []string{"migrate"}, 2, "PARVIS_LISTEN"},
		{nil, []string{"migrate", "--listen", "nope"}, 2, "--listen"},
		{nil, []string{"migrate", "--no-such-flag"}, 2, "no-such-flag"},
		{[]string{"PARVIS_DATABASE=mysql://x"}, []string{"migrate"}, 2, "PARVIS_DATABASE"},
		{[]string{"PARVIS_TIMEZONE=Mars/Olympus"}, []string{"migrate"}, 2, "PARVIS_TIMEZONE"},
		{[]string{"PARVIS_SMTP=http://x"}, []string{"migrate"}, 2, "PARVIS_SMTP"},
		{[]string{"PARVIS_SECRET_KEY=short"}, []string{"migrate"}, 2, "PARVIS_SECRET_KEY"},
		{[]string{"PARVIS_BASE_URL=/relative"}, []string{"migrate"}, 2, "PARVIS_BASE_URL"},
		{nil, []string{"frobnicate"}, 2, "unknown command"},
		{nil, []string{"backup"}, 2, "usage"},
		{[]string{"PARVIS_DATABASE=postgres://nobody@127.0.0.1:1/none", "PARVIS_DATA=" + dir}, []string{"migrate"}, 1, "cannot reach the database"},
	}
	for _, c := range cases {
		code, _, stderr := run(c.env, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want exit %d naming %q", c.env, c.args, code, stderr, c.code, c.want)
		}
		if strings.Contains(stderr, "goroutine ") {
			t.Errorf("%v: stack trace printed", c.args)
		}
	}
}

func TestVersionModulesHelp(t *testing.T) {
	if code, out, _ := run(nil, "version"); code != 0 || !strings.HasPrefix(out, "parvis ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, out, _ := run(nil, "help", "config"); code != 0 || !strings.Contains(out, "PARVIS_DATABASE") {
		t.Errorf("help config: %d %q", code, out)
	}
}

func TestMigrateAndBackupSQLite(t *testing.T) {
	dir := t.TempDir()
	env := []string{"PARVIS_DATA=" + dir}
	if code, out, errs := run(env, "migrate"); code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("migrate: %d %q %q", code, out, errs)
	}
	dest := filepath.Join(dir, "copy.db")
	if code, out, errs := run(env, "backup", dest); code != 0 || !strings.Contains(out, "backup written") {
		t.Fatalf("backup: %d %q %q", code, out, errs)
	}
	if st, err := os.Stat(dest); err != nil || st.Size() == 0 {
		t.Fatalf("backup file: %v", err)
	}
	// The copy is a working database: migrate against it finds nothing to do.
	if code, _, errs := run([]string{"PARVIS_DATA=" + dir, "PARVIS_DATABASE=sqlite:" + dest}, "migrate"); code != 0 {
		t.Fatalf("migrate on backup: %d %q", code, errs)
	}
	if code, _, errs := run(env, "backup", dest); code != 2 || !strings.Contains(errs, "already exists") {
		t.Fatalf("backup over existing file: %d %q", code, errs)
	}
	if code, out, _ := run([]string{"PARVIS_DATABASE=postgres://u@h/db"}, "backup", "x.dump"); code != 0 || !strings.Contains(out, "pg_dump") {
		t.Fatalf("backup on postgres: %d %q", code, out)
	}
}
