package ui_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// repoRoot is the folder holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's folder")
		}
		dir = parent
	}
}

func skipDir(name string) bool {
	return name == ".git" || name == "node_modules" || name == "testdata" || (strings.HasPrefix(name, ".") && name != ".")
}

func readLocale(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// allLocales reads every fr.yaml of the repository with its en.yaml, checking that both
// hold the same keys, each with a non-empty message and the same {placeholders}.
func allLocales(t *testing.T, root string) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	ph := regexp.MustCompile(`\{[a-z_]+\}`)
	found := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() != "fr.yaml" {
			return nil
		}
		found++
		rel, _ := filepath.Rel(root, p)
		enPath := filepath.Join(filepath.Dir(p), "en.yaml")
		if _, err := os.Stat(enPath); err != nil {
			t.Errorf("%s has no en.yaml beside it", rel)
			return nil
		}
		fr, en := readLocale(t, p), readLocale(t, enPath)
		for k, v := range fr {
			keys[k] = true
			ev, ok := en[k]
			if !ok {
				t.Errorf("%s: key %q is missing from en.yaml", rel, k)
				continue
			}
			if strings.TrimSpace(v) == "" || strings.TrimSpace(ev) == "" {
				t.Errorf("%s: key %q has an empty message", rel, k)
			}
			a, b := ph.FindAllString(v, -1), ph.FindAllString(ev, -1)
			sort.Strings(a)
			sort.Strings(b)
			if strings.Join(a, ",") != strings.Join(b, ",") {
				t.Errorf("%s: key %q has placeholders %v in French but %v in English", rel, k, a, b)
			}
		}
		for k := range en {
			keys[k] = true
			if _, ok := fr[k]; !ok {
				t.Errorf("%s: key %q of en.yaml is missing from fr.yaml", rel, k)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 2 {
		t.Fatalf("only %d locale folders found under %s: the walk is wrong", found, root)
	}
	return keys
}

// TestLocalesComplete: every module's fr.yaml and en.yaml hold the same keys.
func TestLocalesComplete(t *testing.T) {
	allLocales(t, repoRoot(t))
}

// Literal keys in templates: {{.T "key"}}, {{$.T "key" …}}, {{.V.T "key"}} and the label
// and hint of {{.Field "name" "label" "hint"}}. Keys built at run time are not checked.
var (
	tCall     = regexp.MustCompile(`\.T\s+"([^"]+)"`)
	fieldCall = regexp.MustCompile(`\.Field\s+"[^"]*"\s+"([^"]+)"(?:\s+"([^"]+)")?`)
)

// TestTemplateKeysExist: every literal key used in the repository's templates is defined.
func TestTemplateKeysExist(t *testing.T) {
	root := repoRoot(t)
	keys := allLocales(t, root)
	checked := 0
	for _, top := range []string{"kernel", "modules"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					return nil
				}
				return err
			}
			if d.IsDir() {
				if skipDir(d.Name()) {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(p, ".html") && !strings.HasSuffix(p, ".txt") {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			var used []string
			for _, m := range tCall.FindAllStringSubmatch(string(data), -1) {
				used = append(used, m[1])
			}
			for _, m := range fieldCall.FindAllStringSubmatch(string(data), -1) {
				used = append(used, m[1])
				if m[2] != "" {
					used = append(used, m[2])
				}
			}
			for _, k := range used {
				checked++
				if !keys[k] {
					t.Errorf("%s uses %q, which no locale file defines", rel, k)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 50 {
		t.Fatalf("only %d keys found in templates: the walk is wrong", checked)
	}
}
