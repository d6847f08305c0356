package config

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

// TestReadmeReference keeps the README's configuration table true.
func TestReadmeReference(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	Reference(&b)
	if !strings.Contains(string(readme), b.String()) {
		t.Fatalf("README.md's configuration table is out of date; paste the output of `parvis help config`:\n%s", b.String())
	}
}

func TestDefaultsAndPrecedence(t *testing.T) {
	c, rest, err := Load([]string{"PARVIS_LISTEN=127.0.0.1:9000", "PARVIS_TEST_POSTGRES=ignored", "HOME=/x"}, []string{"--data", "/tmp/d", "extra"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9000" || c.DataDir != "/tmp/d" || c.Database != "sqlite:/tmp/d/parvis.db" ||
		c.BaseURL != "http://127.0.0.1:9000" || c.TimeZone != "Europe/Paris" || c.Lang != "fr" || !c.Demo {
		t.Fatalf("defaults: %+v", c)
	}
	if len(rest) != 1 || rest[0] != "extra" {
		t.Fatalf("rest %v", rest)
	}
	c, _, err = Load([]string{"PARVIS_LISTEN=127.0.0.1:9000"}, []string{"--listen", "127.0.0.1:9001"}, io.Discard)
	if err != nil || c.Listen != "127.0.0.1:9001" {
		t.Fatalf("flag must win over env: %v %v", c, err)
	}
}

func TestEnsureSecretIsStable(t *testing.T) {
	dir := t.TempDir()
	a := &Config{DataDir: dir}
	if err := a.EnsureSecret(); err != nil || len(a.SecretKey) < 32 {
		t.Fatal(err)
	}
	b := &Config{DataDir: dir}
	if err := b.EnsureSecret(); err != nil || b.SecretKey != a.SecretKey {
		t.Fatalf("secret changed across starts: %v", err)
	}
	st, _ := os.Stat(dir + "/secret.key")
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("secret.key mode %v", st.Mode())
	}
}
