package suites_test

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

// The suite commands, end to end on SQLite.
func TestCLI(t *testing.T) {
	dir := t.TempDir()
	env := []string{"PARVIS_DATA=" + dir, "PARVIS_DEMO=false", "PARVIS_LOG_LEVEL=error"}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("format: 1\nname: bad\nversion: 1.0.0\ntitle: Bad\nrequires: [kernel.auth, budget]\nunits:\n  - {key: a, name: A, parent: zz}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "export.yaml")
	cases := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"suite", "list"}, 0, []string{"demo", "rendez-vous", "formulaires", "built-in"}},
		{[]string{"suite", "apply", "demo", "--dry-run"}, 0, []string{"create", "units/etat-civil", "dry run: nothing was changed"}},
		{[]string{"suite", "apply", "demo"}, 0, []string{"0 in conflict"}},
		{[]string{"suite", "apply", "demo"}, 0, []string{"0 to create, 0 to update"}},
		{[]string{"suite", "list"}, 0, []string{"1.0.0    1.0.0"}},
		{[]string{"suite", "export", "--only", "workflows", "--name", "wf", "--out", out}, 0, []string{"suite written"}},
		{[]string{"suite", "apply", out, "--dry-run"}, 0, []string{"unchanged"}},
		{[]string{"suite", "apply", bad}, 1, []string{"bad.yaml:5:1: $.requires:", "budget"}},
		{[]string{"suite", "apply"}, 2, []string{"usage"}},
		{[]string{"suite", "apply", "nope"}, 1, []string{"nope"}},
		{[]string{"suite", "schema"}, 0, []string{"2020-12"}},
	}
	for _, c := range cases {
		code, stdout, stderr := run(env, c.args...)
		all := stdout + stderr
		for _, w := range c.want {
			if code != c.code || !strings.Contains(all, w) {
				t.Errorf("parvis %s: exit %d, want %d with %q\n%s", strings.Join(c.args, " "), code, c.code, w, all)
				break
			}
		}
	}
	b, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(b), "key: appointments") || strings.Contains(string(b), "sites:") {
		t.Fatalf("export file: %v\n%s", err, b)
	}
	// The missing reference is reported too when the modules are all there.
	_ = os.WriteFile(bad, []byte("format: 1\nname: bad\nversion: 1.0.0\ntitle: Bad\nunits:\n  - {key: a, name: A, parent: zz}\n"), 0o600)
	if code, _, stderr := run(env, "suite", "apply", bad); code != 1 || !strings.Contains(stderr, "bad.yaml:6:") || !strings.Contains(stderr, "$.units[0].parent") {
		t.Fatalf("missing reference: %d %s", code, stderr)
	}
}
