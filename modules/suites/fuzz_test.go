package suites_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/modules/suites"
)

// FuzzLoad: no suite file — they come from uploads and other towns — makes the loader
// panic; a refusal is always an *suites.Invalid naming where the problem is, or a plain
// format error, never a crash. Load writes nothing, so one server serves every input.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"rendez-vous", "formulaires", "demo"} {
		if b, err := os.ReadFile("builtin/" + name + ".yaml"); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("format: 99\nname: x\n"))
	f.Add([]byte("format: 1\nname: x\nversion: 1\nunits:\n  - key: a\n    parent: a\n"))
	f.Add([]byte("format: 1\nname: x\nunits: [\n"))
	f.Add([]byte("format: 1\nname: x\nversion: 1\nroles:\n  - key: r\n    permissions: [no.such]\n  - key: r\n"))
	s := servertest.New(f, store.SQLite, servertest.Options{})
	var m *suites.Module
	for _, in := range s.Modules {
		if sm, ok := in.Module.(*suites.Module); ok {
			m = sm
		}
	}
	if m == nil {
		f.Fatal("suites module not compiled in")
	}
	org := s.DefaultOrg()
	f.Fuzz(func(t *testing.T, src []byte) {
		_, err := m.Load(context.Background(), org, "fuzz.yaml", src)
		var inv *suites.Invalid
		if err != nil && errors.As(err, &inv) && inv.Error() == "" {
			t.Fatalf("a refusal without a message")
		}
	})
}
