package mail

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"path"
	"sort"
	"strings"
	texttemplate "text/template"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/i18n"
	"parvis.org/parvis/kernel/web"
)

// Languages mail templates are written in; French is the fallback.
var languages = []string{"fr", "en"}

const fallback = "fr"

// set is one template in one language.
type set struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// catalogue holds every module's parsed mail templates: "<module>/<name>" → lang → set.
type catalogue map[string]map[string]*set

var suffixes = []string{".subject.txt", ".txt", ".html"}

// load parses the mail templates of one module. Each <lang>/<name> needs its three files;
// French must exist for every name (it is the fallback).
func (c catalogue) load(module string, fsys fs.FS) error {
	files := map[string]map[string]map[string]string{} // name → lang → suffix → path
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		lang, file, ok := strings.Cut(p, "/")
		if !ok || strings.Contains(file, "/") || !contains(languages, lang) {
			return fmt.Errorf("mail template %s/%s: expected <fr|en>/<name>.subject.txt, .txt or .html", module, p)
		}
		suffix := ""
		for _, s := range suffixes {
			if strings.HasSuffix(file, s) {
				suffix = s
				break
			}
		}
		name := strings.TrimSuffix(file, suffix)
		if suffix == "" || name == "" {
			return fmt.Errorf("mail template %s/%s: expected <name>.subject.txt, <name>.txt or <name>.html", module, p)
		}
		if files[name] == nil {
			files[name] = map[string]map[string]string{}
		}
		if files[name][lang] == nil {
			files[name][lang] = map[string]string{}
		}
		files[name][lang][suffix] = p
		return nil
	})
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		key := module + "/" + name
		if _, ok := files[name][fallback]; !ok {
			return fmt.Errorf("mail template %s: no French version (%s/%s.*)", key, fallback, name)
		}
		c[key] = map[string]*set{}
		for lang, bySuffix := range files[name] {
			for _, s := range suffixes {
				if bySuffix[s] == "" {
					return fmt.Errorf("mail template %s: %s/%s%s is missing", key, lang, name, s)
				}
			}
			st := &set{}
			read := func(p string) (string, error) {
				b, err := fs.ReadFile(fsys, p)
				return string(b), err
			}
			src, err := read(bySuffix[".subject.txt"])
			if err == nil {
				st.subject, err = texttemplate.New(path.Base(bySuffix[".subject.txt"])).Option("missingkey=error").Parse(src)
			}
			if err == nil {
				src, err = read(bySuffix[".txt"])
			}
			if err == nil {
				st.text, err = texttemplate.New(path.Base(bySuffix[".txt"])).Option("missingkey=error").Parse(src)
			}
			if err == nil {
				src, err = read(bySuffix[".html"])
			}
			if err == nil {
				st.html, err = htmltemplate.New(path.Base(bySuffix[".html"])).Option("missingkey=error").Parse(src)
			}
			if err != nil {
				return fmt.Errorf("mail template %s/%s/%s: %w", module, lang, name, err)
			}
			c[key][lang] = st
		}
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// View is the dot of a mail template: the caller's Data and helpers.
type View struct {
	Data     any
	Lang     string
	SiteName string
	BaseURL  string

	bundle *i18n.Bundle
	loc    *time.Location
}

// T translates a locale key into the mail's language.
func (v *View) T(key string, args ...any) string { return v.bundle.T(v.Lang, key, args...) }

// URL makes an absolute link to a path of this instance: {{.URL "/compte"}}.
func (v *View) URL(p string) string { return v.BaseURL + "/" + strings.TrimPrefix(p, "/") }

// Date writes a long date in the instance's time zone: "28 novembre 2026".
func (v *View) Date(t time.Time) string { return web.FormatDate(v.Lang, t.In(v.loc)) }

// DateTime writes a date and time: "28 novembre 2026 à 14:05".
func (v *View) DateTime(t time.Time) string {
	t = t.In(v.loc)
	return v.bundle.T(v.Lang, "kernel.datetime", "date", web.FormatDate(v.Lang, t), "time", t.Format("15:04"))
}

// rendered is a mail ready to store.
type rendered struct {
	Lang, Subject, Text, HTML string
}

// layoutData is what the kernel's mail layout wraps around a module's HTML body.
type layoutData struct {
	*View
	Subject string
	Body    htmltemplate.HTML
}

// render executes m's templates in m's language (French when missing) inside the layout.
func (mod *Module) render(m kernel.Mail, site string) (*rendered, error) {
	byLang, ok := mod.templates[m.Template]
	if !ok {
		return nil, fmt.Errorf("mail: unknown template %q", m.Template)
	}
	lang := i18n.Supported(m.Lang)
	if byLang[lang] == nil {
		lang = fallback
	}
	st := byLang[lang]
	v := &View{Data: m.Data, Lang: lang, SiteName: site, BaseURL: mod.baseURL, bundle: mod.bundle, loc: mod.loc}
	var subj, text, html, out bytes.Buffer
	if err := st.subject.Execute(&subj, v); err != nil {
		return nil, fmt.Errorf("mail %s (%s): subject: %w", m.Template, lang, err)
	}
	if err := st.text.Execute(&text, v); err != nil {
		return nil, fmt.Errorf("mail %s (%s): text: %w", m.Template, lang, err)
	}
	if err := st.html.Execute(&html, v); err != nil {
		return nil, fmt.Errorf("mail %s (%s): html: %w", m.Template, lang, err)
	}
	subject := strings.Join(strings.Fields(subj.String()), " ") // one line, whatever the template's newlines
	// The module's HTML was escaped by html/template, so it is safe to embed as is.
	if err := mod.layoutHTML.Execute(&out, layoutData{View: v, Subject: subject, Body: htmltemplate.HTML(html.String())}); err != nil {
		return nil, fmt.Errorf("mail %s: layout: %w", m.Template, err)
	}
	var txt bytes.Buffer
	if err := mod.layoutText.Execute(&txt, layoutData{View: v, Subject: subject, Body: htmltemplate.HTML(strings.TrimSpace(text.String()))}); err != nil {
		return nil, fmt.Errorf("mail %s: text layout: %w", m.Template, err)
	}
	return &rendered{Lang: lang, Subject: subject, Text: txt.String(), HTML: out.String()}, nil
}
