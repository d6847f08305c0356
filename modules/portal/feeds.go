package portal

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/renderer/html"
)

// Markdown with raw HTML allowed, always passed through bluemonday's UGC policy: scripts,
// event handlers, javascript: links, iframes and styles never reach a visitor.
var (
	md       = goldmark.New(goldmark.WithRendererOptions(html.WithUnsafe()))
	sanitize = bluemonday.UGCPolicy()
)

func markdown(src string) template.HTML {
	var buf bytes.Buffer
	if err := md.Convert([]byte(src), &buf); err != nil {
		return template.HTML(template.HTMLEscapeString(src))
	}
	return template.HTML(sanitize.SanitizeBytes(buf.Bytes()))
}

// origin returns scheme://host of the request, for absolute URLs in feeds and sitemaps.
func (m *Module) origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.HasPrefix(m.cfg.baseURL(), "https://") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func xmlText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// atom writes a site's news feed (Atom 1.0).
func (m *Module) atom(w http.ResponseWriter, r *http.Request, site *Site, now time.Time) (bool, error) {
	news, err := siteNews(r.Context(), m.db.Read(), site.ID, now, 20, 0)
	if err != nil {
		return false, err
	}
	base := m.origin(r) + site.Prefix
	updated := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, n := range news {
		if n.UpdatedAt.After(updated) {
			updated = n.UpdatedAt
		}
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n" + `<feed xmlns="http://www.w3.org/2005/Atom">` + "\n")
	fmt.Fprintf(&b, "<title>%s</title>\n<id>%s/actualites/</id>\n<updated>%s</updated>\n", xmlText(site.Name), xmlText(base), updated.Format(time.RFC3339))
	fmt.Fprintf(&b, "<link rel=\"self\" href=\"%s/actualites/flux.atom\"/>\n<link href=\"%s/actualites\"/>\n", xmlText(base), xmlText(base))
	for _, n := range news {
		u := base + "/actualites/" + n.Slug
		fmt.Fprintf(&b, "<entry>\n<title>%s</title>\n<id>%s</id>\n<link href=\"%s\"/>\n<published>%s</published>\n<updated>%s</updated>\n<author><name>%s</name></author>\n<summary>%s</summary>\n<content type=\"html\">%s</content>\n</entry>\n",
			xmlText(n.Title), xmlText(u), xmlText(u), n.PublishedAt.Format(time.RFC3339), n.UpdatedAt.Format(time.RFC3339),
			xmlText(site.Name), xmlText(n.Summary), xmlText(string(markdown(n.Body))))
	}
	b.WriteString("</feed>\n")
	w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
	return true, nil
}

// robots allows everything but the back office and points at the sitemap of the host.
func (m *Module) robots(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "User-agent: *\nDisallow: /admin/\nDisallow: /compte/\nSitemap: %s/sitemap.xml\n", m.origin(r))
}

// sitemap lists the public pages and news of every site served on the request's host.
func (m *Module) sitemap(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := m.now()
	origin := m.origin(r)
	host := strings.ToLower(r.Host)
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	main := m.isMainHost(host, r.Host)
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">` + "\n")
	found := false
	for _, s := range m.st.Load().sites {
		if (s.Host == "" && !main) || (s.Host != "" && s.Host != host) {
			continue
		}
		found = true
		pages, err := listPages(ctx, m.db.Read(), s.ID)
		if err != nil {
			m.log.Error("sitemap", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		for _, p := range pages {
			if p.Live(now) == 0 || p.Visibility != Public {
				continue
			}
			fmt.Fprintf(&b, "<url><loc>%s</loc><lastmod>%s</lastmod></url>\n", xmlText(origin+s.Prefix+pagePath(pages, p)), p.UpdatedAt.Format("2006-01-02"))
		}
		news, err := siteNews(ctx, m.db.Read(), s.ID, now, 1000, 0)
		if err != nil {
			m.log.Error("sitemap", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		for _, n := range news {
			if n.SiteID != s.ID {
				continue // listed once, under its own site
			}
			fmt.Fprintf(&b, "<url><loc>%s</loc><lastmod>%s</lastmod></url>\n", xmlText(origin+s.Prefix+"/actualites/"+n.Slug), n.UpdatedAt.Format("2006-01-02"))
		}
	}
	if !found {
		m.notFound(w, r)
		return
	}
	b.WriteString("</urlset>\n")
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}
