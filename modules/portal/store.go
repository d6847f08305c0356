package portal

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"parvis.org/parvis/kernel/store"
)

// Query functions, grouped per table. They take a store.Querier so that they run in a
// transaction or on the reader pool alike.

const siteCols = "id, org_id, unit_id, name, host, prefix, lang, theme, contact, legal, generation"

func scanSite(sc interface{ Scan(...any) error }) (*Site, error) {
	var s Site
	var theme, contact string
	if err := sc.Scan(&s.ID, &s.OrgID, &s.UnitID, &s.Name, &s.Host, &s.Prefix, &s.Lang, &theme, &contact, &s.Legal, &s.Generation); err != nil {
		return nil, err
	}
	_ = json.Unmarshal([]byte(theme), &s.Theme)
	_ = json.Unmarshal([]byte(contact), &s.Contact)
	return &s, nil
}

func listSites(ctx context.Context, q store.Querier) ([]*Site, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+siteCols+" FROM portal_sites ORDER BY org_id, prefix, host, id")
	if err != nil {
		return nil, fmt.Errorf("list sites: %w", err)
	}
	defer rows.Close()
	var out []*Site
	for rows.Next() {
		s, err := scanSite(rows)
		if err != nil {
			return nil, fmt.Errorf("list sites: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func getSite(ctx context.Context, q store.Querier, id int64) (*Site, error) {
	s, err := scanSite(q.QueryRowContext(ctx, "SELECT "+siteCols+" FROM portal_sites WHERE id = ?", id))
	if err != nil {
		return nil, store.NotFound(err, "site")
	}
	return s, nil
}

func jsonText(v any) string { b, _ := json.Marshal(v); return string(b) }

const pageCols = "id, site_id, parent_id, slug, position, visibility, in_menu, draft_version, published_version, scheduled_version, publish_at, unpublish_at, updated_at"

func scanPage(sc interface{ Scan(...any) error }) (*Page, error) {
	var p Page
	var pub, unpub sql.NullTime
	if err := sc.Scan(&p.ID, &p.SiteID, &p.ParentID, &p.Slug, &p.Position, &p.Visibility, &p.InMenu, &p.DraftVersion,
		&p.PublishedVersion, &p.ScheduledVersion, &pub, &unpub, &p.UpdatedAt); err != nil {
		return nil, err
	}
	if pub.Valid {
		t := pub.Time.UTC()
		p.PublishAt = &t
	}
	if unpub.Valid {
		t := unpub.Time.UTC()
		p.UnpublishAt = &t
	}
	p.UpdatedAt = p.UpdatedAt.UTC()
	return &p, nil
}

func getPage(ctx context.Context, q store.Querier, id int64) (*Page, error) {
	p, err := scanPage(q.QueryRowContext(ctx, "SELECT "+pageCols+" FROM portal_pages WHERE id = ?", id))
	if err != nil {
		return nil, store.NotFound(err, "page")
	}
	return p, nil
}

func listPages(ctx context.Context, q store.Querier, siteID int64) ([]*Page, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+pageCols+" FROM portal_pages WHERE site_id = ? ORDER BY parent_id, position, id", siteID)
	if err != nil {
		return nil, fmt.Errorf("list pages: %w", err)
	}
	defer rows.Close()
	var out []*Page
	for rows.Next() {
		p, err := scanPage(rows)
		if err != nil {
			return nil, fmt.Errorf("list pages: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

const versionCols = "page_id, version, title, seo_title, description, social_image, layout, content, created_at, created_by"

func scanVersion(sc interface{ Scan(...any) error }) (*Version, error) {
	var v Version
	var content string
	if err := sc.Scan(&v.PageID, &v.Version, &v.Title, &v.SEOTitle, &v.Description, &v.SocialImage, &v.Layout, &content, &v.CreatedAt, &v.CreatedBy); err != nil {
		return nil, err
	}
	v.CreatedAt = v.CreatedAt.UTC()
	if err := json.Unmarshal([]byte(content), &v.Content); err != nil {
		return nil, fmt.Errorf("page %d version %d: content: %w", v.PageID, v.Version, err)
	}
	return &v, nil
}

func getVersion(ctx context.Context, q store.Querier, pageID int64, n int) (*Version, error) {
	v, err := scanVersion(q.QueryRowContext(ctx, "SELECT "+versionCols+" FROM portal_page_versions WHERE page_id = ? AND version = ?", pageID, n))
	if err != nil {
		return nil, store.NotFound(err, "page version")
	}
	return v, nil
}

func listVersions(ctx context.Context, q store.Querier, pageID int64) ([]*Version, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+versionCols+" FROM portal_page_versions WHERE page_id = ? ORDER BY version DESC", pageID)
	if err != nil {
		return nil, fmt.Errorf("list versions: %w", err)
	}
	defer rows.Close()
	var out []*Version
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// titles returns the title of each page's given version, for menus and breadcrumbs.
func versionTitles(ctx context.Context, q store.Querier, siteID int64) (map[[2]int64]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT v.page_id, v.version, v.title FROM portal_page_versions v
		JOIN portal_pages p ON p.id = v.page_id
		WHERE p.site_id = ? AND v.version IN (p.published_version, p.scheduled_version, p.draft_version)`, siteID)
	if err != nil {
		return nil, fmt.Errorf("page titles: %w", err)
	}
	defer rows.Close()
	out := map[[2]int64]string{}
	for rows.Next() {
		var id int64
		var n int64
		var t string
		if err := rows.Scan(&id, &n, &t); err != nil {
			return nil, err
		}
		out[[2]int64{id, n}] = t
	}
	return out, rows.Err()
}

func insertVersion(ctx context.Context, tx *store.Tx, v *Version) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO portal_page_versions ("+versionCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		v.PageID, v.Version, v.Title, v.SEOTitle, v.Description, v.SocialImage, v.Layout, jsonText(nonNil(v.Content)), v.CreatedAt, v.CreatedBy)
	if err != nil {
		return fmt.Errorf("insert version: %w", err)
	}
	return nil
}

func nonNil(p []Placement) []Placement {
	if p == nil {
		return []Placement{}
	}
	return p
}

func listMenu(ctx context.Context, q store.Querier, siteID int64) ([]*MenuLink, error) {
	rows, err := q.QueryContext(ctx, "SELECT id, site_id, menu, title, url, page_id, position FROM portal_menu_links WHERE site_id = ? ORDER BY menu, position, id", siteID)
	if err != nil {
		return nil, fmt.Errorf("menu: %w", err)
	}
	defer rows.Close()
	var out []*MenuLink
	for rows.Next() {
		var l MenuLink
		if err := rows.Scan(&l.ID, &l.SiteID, &l.Menu, &l.Title, &l.URL, &l.PageID, &l.Position); err != nil {
			return nil, err
		}
		out = append(out, &l)
	}
	return out, rows.Err()
}

const newsCols = "n.id, n.site_id, n.slug, n.title, n.summary, n.body, n.image_id, n.tags, n.published, n.published_at, n.updated_at"

func scanNews(sc interface{ Scan(...any) error }) (*News, error) {
	var n News
	var tags string
	if err := sc.Scan(&n.ID, &n.SiteID, &n.Slug, &n.Title, &n.Summary, &n.Body, &n.ImageID, &tags, &n.Published, &n.PublishedAt, &n.UpdatedAt); err != nil {
		return nil, err
	}
	n.PublishedAt, n.UpdatedAt = n.PublishedAt.UTC(), n.UpdatedAt.UTC()
	for _, t := range strings.Split(tags, ",") {
		if t = strings.TrimSpace(t); t != "" {
			n.Tags = append(n.Tags, t)
		}
	}
	return &n, nil
}

// siteNews lists the published news shown on a site (its own and those shared to it), newest
// first, published at or before now.
func siteNews(ctx context.Context, q store.Querier, siteID int64, now time.Time, limit, offset int) ([]*News, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+newsCols+` FROM portal_news n
		WHERE n.published AND n.published_at <= ?
		  AND (n.site_id = ? OR EXISTS (SELECT 1 FROM portal_news_sites s WHERE s.news_id = n.id AND s.site_id = ?))
		ORDER BY n.published_at DESC, n.id DESC LIMIT ? OFFSET ?`, now, siteID, siteID, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("site news: %w", err)
	}
	defer rows.Close()
	var out []*News
	for rows.Next() {
		n, err := scanNews(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

func getNews(ctx context.Context, q store.Querier, id int64) (*News, error) {
	n, err := scanNews(q.QueryRowContext(ctx, "SELECT "+newsCols+" FROM portal_news n WHERE n.id = ?", id))
	if err != nil {
		return nil, store.NotFound(err, "news")
	}
	rows, err := q.QueryContext(ctx, "SELECT site_id FROM portal_news_sites WHERE news_id = ? ORDER BY site_id", id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		n.SharedWith = append(n.SharedWith, s)
	}
	return n, rows.Err()
}

// newsBySlug finds an article shown on a site, by the slug it has on its own site.
func newsBySlug(ctx context.Context, q store.Querier, siteID int64, slug string, now time.Time) (*News, error) {
	n, err := scanNews(q.QueryRowContext(ctx, "SELECT "+newsCols+` FROM portal_news n
		WHERE n.slug = ? AND n.published AND n.published_at <= ?
		  AND (n.site_id = ? OR EXISTS (SELECT 1 FROM portal_news_sites s WHERE s.news_id = n.id AND s.site_id = ?))
		ORDER BY CASE WHEN n.site_id = ? THEN 0 ELSE 1 END, n.id LIMIT 1`, slug, now, siteID, siteID, siteID))
	if err != nil {
		return nil, store.NotFound(err, "news")
	}
	return n, nil
}

const mediaCols = "id, site_id, kind, name, title, mime, size, width, height, variants, created_at"

func scanMedia(sc interface{ Scan(...any) error }) (*Media, error) {
	var m Media
	var variants string
	if err := sc.Scan(&m.ID, &m.SiteID, &m.Kind, &m.Name, &m.Title, &m.MIME, &m.Size, &m.Width, &m.Height, &variants, &m.CreatedAt); err != nil {
		return nil, err
	}
	for _, v := range strings.Split(variants, ",") {
		if n, err := strconv.Atoi(v); err == nil {
			m.Variants = append(m.Variants, n)
		}
	}
	return &m, nil
}

func getMedia(ctx context.Context, q store.Querier, id int64) (*Media, error) {
	m, err := scanMedia(q.QueryRowContext(ctx, "SELECT "+mediaCols+" FROM portal_media WHERE id = ?", id))
	if err != nil {
		return nil, store.NotFound(err, "media")
	}
	return m, nil
}

func listMedia(ctx context.Context, q store.Querier, siteID int64, kind string) ([]*Media, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+mediaCols+" FROM portal_media WHERE site_id = ? AND (? = '' OR kind = ?) ORDER BY created_at DESC, id DESC", siteID, kind, kind)
	if err != nil {
		return nil, fmt.Errorf("list media: %w", err)
	}
	defer rows.Close()
	var out []*Media
	for rows.Next() {
		m, err := scanMedia(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// bump marks sites as changed: their generation moves on, so every node drops the cached
// pages of those sites (on PostgreSQL, NOTIFY reaches the other nodes when tx commits).
func bump(ctx context.Context, tx *store.Tx, siteIDs ...int64) error {
	for _, id := range siteIDs {
		var gen int64
		if err := tx.QueryRowContext(ctx, "UPDATE portal_sites SET generation = generation + 1 WHERE id = ? RETURNING generation", id).Scan(&gen); err != nil {
			return fmt.Errorf("bump site %d: %w", id, store.NotFound(err, "site"))
		}
		if tx.Dialect == store.Postgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_notify('portal_cache', ?)", fmt.Sprintf("%d:%d", id, gen)); err != nil {
				return fmt.Errorf("notify: %w", err)
			}
		}
	}
	return nil
}
