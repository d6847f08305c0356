// Package i18n holds the translations of every module: flat YAML files fr.yaml and en.yaml
// whose keys are prefixed by the module ID ("auth.login.title"). French is the default.
// Messages use {name} placeholders, filled from alternating key/value arguments.
package i18n

import (
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
)

// Languages Parvis ships, default first.
var Languages = []string{"fr", "en"}

// Default is the language used when nothing else is known.
const Default = "fr"

// Bundle maps language → key → message.
type Bundle struct {
	msgs map[string]map[string]string
	// owner records which module defined a key, to report duplicates naming both sides.
	owner map[string]string
}

// New returns an empty bundle.
func New() *Bundle {
	b := &Bundle{msgs: map[string]map[string]string{}, owner: map[string]string{}}
	for _, l := range Languages {
		b.msgs[l] = map[string]string{}
	}
	return b
}

// Load reads <lang>.yaml for every language from fsys on behalf of module. Keys must start
// with the module ID followed by a dot, and may not be defined twice.
func (b *Bundle) Load(module string, fsys fs.FS) error {
	for _, lang := range Languages {
		data, err := fs.ReadFile(fsys, lang+".yaml")
		if err != nil {
			return fmt.Errorf("module %s: locale %s.yaml: %w", module, lang, err)
		}
		var m map[string]string
		if err := yaml.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("module %s: locale %s.yaml: %w", module, lang, err)
		}
		for k, v := range m {
			if !strings.HasPrefix(k, module+".") {
				return fmt.Errorf("module %s: locale %s.yaml: key %q must start with %q", module, lang, k, module+".")
			}
			if prev, dup := b.owner[lang+"\x00"+k]; dup {
				return fmt.Errorf("locale key %q defined by both %s and %s", k, prev, module)
			}
			b.owner[lang+"\x00"+k] = module
			b.msgs[lang][k] = v
		}
	}
	return nil
}

// Has reports whether key exists in lang.
func (b *Bundle) Has(lang, key string) bool { _, ok := b.msgs[lang][key]; return ok }

// Keys lists the keys of lang, sorted.
func (b *Bundle) Keys(lang string) []string {
	out := make([]string, 0, len(b.msgs[lang]))
	for k := range b.msgs[lang] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// T translates key into lang, filling {name} placeholders from args given as name, value
// pairs. A missing key falls back to French, then shows the key itself (tests catch those).
func (b *Bundle) T(lang, key string, args ...any) string {
	msg, ok := b.msgs[lang][key]
	if !ok {
		if msg, ok = b.msgs[Default][key]; !ok {
			return key
		}
	}
	if len(args) == 0 || !strings.Contains(msg, "{") {
		return msg
	}
	pairs := make([]string, 0, len(args))
	for i := 0; i+1 < len(args); i += 2 {
		pairs = append(pairs, "{"+fmt.Sprint(args[i])+"}", fmt.Sprint(args[i+1]))
	}
	return strings.NewReplacer(pairs...).Replace(msg)
}

// Supported returns lang if Parvis ships it, else "".
func Supported(lang string) string {
	lang = strings.ToLower(strings.TrimSpace(lang))
	if i := strings.IndexAny(lang, "-_"); i > 0 {
		lang = lang[:i]
	}
	for _, l := range Languages {
		if l == lang {
			return l
		}
	}
	return ""
}

// FromAcceptLanguage picks the first supported language of an Accept-Language header.
func FromAcceptLanguage(h string) string {
	for part := range strings.SplitSeq(h, ",") { // no slice: this runs on every page
		tag, _, _ := strings.Cut(part, ";")
		if l := Supported(tag); l != "" {
			return l
		}
	}
	return ""
}
