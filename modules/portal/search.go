package portal

import (
	"context"
	"fmt"
	"html"
	"html/template"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
)

// Site search over pages, news and the service catalogue. SQLite uses FTS5 with the
// unicode61 tokenizer folding accents (remove_diacritics 2) and prefix queries standing in
// for stemming ("ecole" finds "Écoles"); PostgreSQL uses a text search configuration built
// on unaccent and french_stem (migration 00001).

// Result is one search hit; Snippet is escaped HTML with the matched words in <mark>.
type Result struct {
	Kind    string // "page", "news", "service"
	URL     string
	Title   string
	Snippet template.HTML
}

var tagRe = regexp.MustCompile(`<[^>]*>`)

// plain turns portlet settings and Markdown into indexable text.
func plain(s string) string {
	s = tagRe.ReplaceAllString(s, " ")
	s = html.UnescapeString(s)
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || strings.ContainsRune("#*_`>[]()|", r) }), " ")
}

func (m *Module) index(ctx context.Context, tx *store.Tx, siteID int64, kind string, ref int64, url, title, body string) error {
	r := fmt.Sprint(ref)
	if _, err := tx.ExecContext(ctx, "DELETE FROM portal_search WHERE site_id = ? AND kind = ? AND ref = ?", fmt.Sprint(siteID), kind, r); err != nil {
		return fmt.Errorf("search index: %w", err)
	}
	if url == "" {
		return nil
	}
	q := "INSERT INTO portal_search (site_id, kind, ref, url, title, body) VALUES (?, ?, ?, ?, ?, ?)"
	if tx.Dialect == store.Postgres {
		q = `INSERT INTO portal_search (site_id, kind, ref, url, title, body, tsv) VALUES (?, ?, ?, ?, ?, ?,
			setweight(to_tsvector('portal_fr', ?), 'A') || to_tsvector('portal_fr', ?))`
	}
	args := []any{fmt.Sprint(siteID), kind, r, url, title, body}
	if tx.Dialect == store.Postgres {
		args[0] = siteID
		args = append(args, title, body)
	}
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("search index: %w", err)
	}
	return nil
}

// reindexPage indexes what visitors see of a page at now (nothing when it is offline or for
// signed-in citizens only).
func (m *Module) reindexPage(ctx context.Context, tx *store.Tx, pageID int64, now time.Time) error {
	p, err := getPage(ctx, tx, pageID)
	if err != nil {
		return err
	}
	site, err := getSite(ctx, tx, p.SiteID)
	if err != nil {
		return err
	}
	live := p.Live(now)
	if live == 0 || p.Visibility != Public {
		return m.index(ctx, tx, p.SiteID, "page", pageID, "", "", "")
	}
	v, err := getVersion(ctx, tx, pageID, live)
	if err != nil {
		return err
	}
	pages, err := listPages(ctx, tx, p.SiteID)
	if err != nil {
		return err
	}
	var body strings.Builder
	body.WriteString(v.Description)
	for _, pl := range v.Content {
		keys := make([]string, 0, len(pl.Config))
		for k := range pl.Config {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k == "url" || k == "media" || k == "decorative" || k == "level" || k == "limit" {
				continue
			}
			body.WriteString(" ")
			body.WriteString(plain(pl.Config[k]))
		}
	}
	return m.index(ctx, tx, p.SiteID, "page", pageID, site.Prefix+pagePath(pages, p), v.Title, body.String())
}

func (m *Module) reindexSubtree(ctx context.Context, tx *store.Tx, siteID int64) error {
	pages, err := listPages(ctx, tx, siteID)
	if err != nil {
		return err
	}
	for _, p := range pages {
		if err := m.reindexPage(ctx, tx, p.ID, m.now()); err != nil {
			return err
		}
	}
	return nil
}

// reindexNews indexes an article on its own site and every site it is shared with.
func (m *Module) reindexNews(ctx context.Context, tx *store.Tx, n *News) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM portal_search WHERE kind = 'news' AND ref = ?", fmt.Sprint(n.ID)); err != nil {
		return err
	}
	if !n.Published {
		return nil
	}
	for _, s := range append([]int64{n.SiteID}, n.SharedWith...) {
		site, err := getSite(ctx, tx, s)
		if err != nil {
			return err
		}
		if err := m.index(ctx, tx, s, "news", n.ID, site.Prefix+"/actualites/"+n.Slug, n.Title, n.Summary+" "+plain(n.Body)); err != nil {
			return err
		}
	}
	return nil
}

var wordRe = regexp.MustCompile(`[\p{L}\p{N}]+`)

// Search finds what a site shows matching q.
func (m *Module) Search(ctx context.Context, site *Site, lang, q string, now time.Time) ([]Result, error) {
	words := wordRe.FindAllString(q, 12)
	if len(words) == 0 {
		return nil, nil
	}
	out := m.searchCatalogue(ctx, site, lang, words)
	var rows interface {
		Next() bool
		Scan(...any) error
		Close() error
		Err() error
	}
	var err error
	if m.db.Dialect == store.Postgres {
		rows, err = m.db.Read().QueryContext(ctx, `SELECT s.kind, s.url, s.title,
			ts_headline('portal_fr', s.body, q, ?) FROM portal_search s, plainto_tsquery('portal_fr', ?) q
			WHERE s.site_id = ? AND s.tsv @@ q ORDER BY ts_rank(s.tsv, q) DESC, s.title LIMIT 30`,
			"StartSel=\x01, StopSel=\x02, MaxWords=30, MinWords=12, ShortWord=2", strings.Join(words, " "), site.ID)
	} else {
		terms := make([]string, len(words))
		for i, w := range words {
			terms[i] = `"` + w + `"*`
		}
		rows, err = m.db.Read().QueryContext(ctx, `SELECT kind, url, title, snippet(portal_search, 5, char(1), char(2), '…', 24)
			FROM portal_search WHERE portal_search MATCH ? AND site_id = ? ORDER BY rank LIMIT 30`,
			strings.Join(terms, " "), fmt.Sprint(site.ID))
	}
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r Result
		var snip string
		if err := rows.Scan(&r.Kind, &r.URL, &r.Title, &snip); err != nil {
			return nil, err
		}
		r.Snippet = highlight(snip)
		out = append(out, r)
	}
	return out, rows.Err()
}

// highlight escapes a snippet whose matches are framed by \x01 … \x02 and marks them.
func highlight(s string) template.HTML {
	s = template.HTMLEscapeString(s)
	s = strings.ReplaceAll(s, "\x01", "<mark>")
	s = strings.ReplaceAll(s, "\x02", "</mark>")
	return template.HTML(s)
}

var folder = strings.NewReplacer("à", "a", "â", "a", "ä", "a", "á", "a", "ç", "c", "é", "e", "è", "e", "ê", "e", "ë", "e",
	"î", "i", "ï", "i", "í", "i", "ô", "o", "ö", "o", "ó", "o", "ù", "u", "û", "u", "ü", "u", "ú", "u", "ÿ", "y", "œ", "oe", "æ", "ae")

func fold(s string) string { return folder.Replace(strings.ToLower(s)) }

// searchCatalogue matches the citizen services of every module, in the site's language:
// each word must begin a word of the title, summary or keywords (accents folded).
func (m *Module) searchCatalogue(ctx context.Context, site *Site, lang string, words []string) []Result {
	var out []Result
	for _, e := range m.catalogueEntries(ctx, site.OrgID) {
		title, summary := m.i18n.T(lang, e.Title), m.i18n.T(lang, e.Summary)
		text := " " + strings.Join(wordRe.FindAllString(fold(title+" "+summary+" "+strings.Join(e.Keywords, " ")), -1), " ")
		ok := true
		for _, w := range words {
			if !strings.Contains(text, " "+fold(w)) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, Result{Kind: "service", URL: e.Path, Title: title, Snippet: template.HTML(template.HTMLEscapeString(summary))})
		}
	}
	return out
}

// catalogueEntries lists the static entries and those of every CatalogueSource.
func (m *Module) catalogueEntries(ctx context.Context, orgID int64) []kernel.CatalogueEntry {
	out := append([]kernel.CatalogueEntry(nil), m.catalogue...)
	for _, src := range m.catalogueSources {
		es, err := src.Entries(ctx, orgID)
		if err != nil {
			m.log.Warn("catalogue source", "err", err)
			continue
		}
		out = append(out, es...)
	}
	return out
}
