package portal

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/theme"
)

// The portal's changes. Each runs in one transaction which also records the audit entry and
// moves the generation of every site whose pages show what changed, so cached pages are
// dropped exactly then, on every node. Errors are errs codes with portal.error.* keys.

var (
	slugRe   = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	prefixRe = regexp.MustCompile(`^(/[a-z0-9]+(-[a-z0-9]+)*)?$`)
	hostRe   = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
)

// reserved are the paths of a site the portal serves itself; no top-level page may take them.
var reserved = map[string]bool{"actualites": true, "recherche": true, "accessibilite": true, "mentions-legales": true,
	"media": true, "plan-du-site": true, "admin": true, "static": true, "compte": true, "api": true}

func (m *Module) now() time.Time { return m.clock.Now().UTC() }

func actor(ctx context.Context) int64 {
	if a := kernel.AgentFrom(ctx); a != nil {
		return a.ID
	}
	return 0
}

func (m *Module) audit(ctx context.Context, tx *store.Tx, action, typ string, id int64, before, after any) error {
	if m.auditor == nil {
		return nil
	}
	return m.auditor.Record(ctx, tx, kernel.AuditEntry{Action: action, ResourceType: typ, ResourceID: fmt.Sprint(id), Before: before, After: after})
}

// write runs f in a transaction and, once it committed, reloads the sites so this node sees
// the new generations at once (other nodes hear of them by NOTIFY or their poll).
func (m *Module) write(ctx context.Context, f func(tx *store.Tx) error) error {
	return m.db.InTx(ctx, func(tx *store.Tx) error {
		tx.AfterCommit(func() { m.reload(context.WithoutCancel(ctx)) })
		return f(tx)
	})
}

// SiteInput is what an administrator gives to create or edit a site.
type SiteInput struct {
	OrgID, UnitID int64
	Name          string
	Host, Prefix  string
	Lang          string
	Contact       Contact
	Legal         string
}

func (in *SiteInput) clean() error {
	in.Name = strings.TrimSpace(in.Name)
	in.Host = strings.ToLower(strings.TrimSpace(in.Host))
	in.Prefix = strings.TrimRight(strings.ToLower(strings.TrimSpace(in.Prefix)), "/")
	if in.Lang == "" {
		in.Lang = "fr"
	}
	switch {
	case in.Name == "":
		return errs.OnField(errs.Invalid, "name", "kernel.error.required")
	case in.Host != "" && !hostRe.MatchString(in.Host):
		return errs.OnField(errs.Invalid, "host", "portal.error.host")
	case !prefixRe.MatchString(in.Prefix):
		return errs.OnField(errs.Invalid, "prefix", "portal.error.prefix")
	case in.Prefix != "" && reserved[in.Prefix[1:]]:
		return errs.OnField(errs.Invalid, "prefix", "portal.error.reserved")
	case in.Lang != "fr" && in.Lang != "en":
		return errs.OnField(errs.Invalid, "lang", "portal.error.lang")
	}
	return nil
}

// CreateSite creates a site with a published home page. With copyFrom set, the new site
// starts as a copy of that site's page tree, menus and theme.
func (m *Module) CreateSite(ctx context.Context, in SiteInput, copyFrom int64) (*Site, error) {
	if err := in.clean(); err != nil {
		return nil, err
	}
	var site *Site
	err := m.write(ctx, func(tx *store.Tx) error {
		now := m.now()
		var th Theme
		if copyFrom != 0 {
			src, err := getSite(ctx, tx, copyFrom)
			if err != nil || src.OrgID != in.OrgID {
				return errs.OnField(errs.NotFound, "copy", "portal.error.no_site")
			}
			th = src.Theme
		}
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO portal_sites (org_id, unit_id, name, host, prefix, lang, theme, contact, legal, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			in.OrgID, in.UnitID, in.Name, in.Host, in.Prefix, in.Lang, jsonText(th), jsonText(in.Contact), in.Legal, now).Scan(&id)
		if store.IsUniqueViolation(err) {
			return errs.OnField(errs.Conflict, "prefix", "portal.error.site_taken")
		}
		if err != nil {
			return fmt.Errorf("create site: %w", err)
		}
		if copyFrom != 0 {
			if err := copyTree(ctx, tx, copyFrom, id, now, actor(ctx)); err != nil {
				return err
			}
		} else {
			if _, err := m.insertPage(ctx, tx, id, 0, "", "Accueil", "home", now); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE portal_pages SET published_version = 1 WHERE site_id = ?", id); err != nil {
				return err
			}
		}
		site, err = getSite(ctx, tx, id)
		if err != nil {
			return err
		}
		return m.audit(ctx, tx, "portal.site.create", "site", id, nil, site)
	})
	return site, err
}

// copyTree copies the pages (their live or latest content, as published pages) and menus of
// site from into site to.
func copyTree(ctx context.Context, tx *store.Tx, from, to int64, now time.Time, by int64) error {
	pages, err := listPages(ctx, tx, from)
	if err != nil {
		return err
	}
	ids := map[int64]int64{0: 0}
	// Parents come before children when walked by depth.
	for len(ids) <= len(pages) {
		progress := false
		for _, p := range pages {
			if _, done := ids[p.ID]; done {
				continue
			}
			parent, ok := ids[p.ParentID]
			if !ok {
				continue
			}
			n := p.PublishedVersion
			if n == 0 {
				n = p.DraftVersion
			}
			v, err := getVersion(ctx, tx, p.ID, n)
			if err != nil {
				return err
			}
			var id int64
			if err := tx.QueryRowContext(ctx, `INSERT INTO portal_pages (site_id, parent_id, slug, position, visibility, in_menu, draft_version, published_version, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, 1, 1, ?) RETURNING id`, to, parent, p.Slug, p.Position, p.Visibility, p.InMenu, now).Scan(&id); err != nil {
				return fmt.Errorf("copy page: %w", err)
			}
			v.PageID, v.Version, v.CreatedAt, v.CreatedBy = id, 1, now, by
			if err := insertVersion(ctx, tx, v); err != nil {
				return err
			}
			ids[p.ID] = id
			progress = true
		}
		if !progress {
			break
		}
	}
	links, err := listMenu(ctx, tx, from)
	if err != nil {
		return err
	}
	for _, l := range links {
		if _, err := tx.ExecContext(ctx, "INSERT INTO portal_menu_links (site_id, menu, title, url, page_id, position) VALUES (?, ?, ?, ?, ?, ?)",
			to, l.Menu, l.Title, l.URL, ids[l.PageID], l.Position); err != nil {
			return err
		}
	}
	return nil
}

// UpdateSite changes a site's name, contact details and legal notice.
func (m *Module) UpdateSite(ctx context.Context, id int64, in SiteInput) error {
	if err := in.clean(); err != nil {
		return err
	}
	return m.write(ctx, func(tx *store.Tx) error {
		before, err := getSite(ctx, tx, id)
		if err != nil {
			return errs.New(errs.NotFound, "portal.error.no_site")
		}
		_, err = tx.ExecContext(ctx, "UPDATE portal_sites SET name = ?, host = ?, prefix = ?, lang = ?, contact = ?, legal = ?, unit_id = ? WHERE id = ?",
			in.Name, in.Host, in.Prefix, in.Lang, jsonText(in.Contact), in.Legal, in.UnitID, id)
		if store.IsUniqueViolation(err) {
			return errs.OnField(errs.Conflict, "prefix", "portal.error.site_taken")
		}
		if err != nil {
			return err
		}
		if err := bump(ctx, tx, id); err != nil {
			return err
		}
		after, _ := getSite(ctx, tx, id)
		return m.audit(ctx, tx, "portal.site.update", "site", id, before, after)
	})
}

// MinContrast is WCAG 2.1 AA for normal text: the primary colour carries white text (buttons,
// header) and is used for links on white.
const MinContrast = 4.5

// UpdateTheme changes a site's theme; a primary colour failing AA contrast with white is
// refused with the ratio it reaches.
func (m *Module) UpdateTheme(ctx context.Context, id int64, th Theme) error {
	th.Primary = strings.TrimSpace(th.Primary)
	if th.Primary != "" {
		c, err := theme.ParseHex(th.Primary)
		if err != nil {
			return errs.OnField(errs.Invalid, "primary", "portal.error.colour")
		}
		if r := theme.Contrast(c, theme.White); r < MinContrast {
			return errs.OnField(errs.Invalid, "primary", "portal.error.contrast", "ratio", theme.FormatRatio(r))
		}
		th.Primary = c.Hex()
	}
	for _, l := range th.Social {
		if !safeURL(l.URL) {
			return errs.OnField(errs.Invalid, "social", "portal.error.url")
		}
	}
	if th.Logo != "" && !safeURL(th.Logo) {
		return errs.OnField(errs.Invalid, "logo", "portal.error.url")
	}
	return m.write(ctx, func(tx *store.Tx) error {
		before, err := getSite(ctx, tx, id)
		if err != nil {
			return errs.New(errs.NotFound, "portal.error.no_site")
		}
		if _, err := tx.ExecContext(ctx, "UPDATE portal_sites SET theme = ? WHERE id = ?", jsonText(th), id); err != nil {
			return err
		}
		if err := bump(ctx, tx, id); err != nil {
			return err
		}
		return m.audit(ctx, tx, "portal.site.theme", "site", id, before.Theme, th)
	})
}

// safeURL admits absolute http(s) URLs, site-relative paths and mailto:/tel: links — never
// javascript: or data:.
func safeURL(u string) bool {
	l := strings.ToLower(strings.TrimSpace(u))
	if strings.ContainsAny(l, " \t\n\r\"<>") {
		return false
	}
	return strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "mailto:") ||
		strings.HasPrefix(l, "tel:") || (strings.HasPrefix(l, "/") && !strings.HasPrefix(l, "//"))
}

func (m *Module) insertPage(ctx context.Context, tx *store.Tx, siteID, parentID int64, slug, title, layout string, now time.Time) (int64, error) {
	var pos int
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(position), 0) + 1 FROM portal_pages WHERE site_id = ? AND parent_id = ?", siteID, parentID).Scan(&pos); err != nil {
		return 0, err
	}
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO portal_pages (site_id, parent_id, slug, position, draft_version, updated_at)
		VALUES (?, ?, ?, ?, 1, ?) RETURNING id`, siteID, parentID, slug, pos, now).Scan(&id)
	if store.IsUniqueViolation(err) {
		return 0, errs.OnField(errs.Conflict, "slug", "portal.error.slug_taken", "slug", slug)
	}
	if err != nil {
		return 0, fmt.Errorf("insert page: %w", err)
	}
	return id, insertVersion(ctx, tx, &Version{PageID: id, Version: 1, Title: title, Layout: layout, CreatedAt: now, CreatedBy: actor(ctx)})
}

func checkSlug(slug string, parent *Page) error {
	if !slugRe.MatchString(slug) || len(slug) > 80 {
		return errs.OnField(errs.Invalid, "slug", "portal.error.slug")
	}
	if parent != nil && parent.ParentID == 0 && reserved[slug] {
		return errs.OnField(errs.Invalid, "slug", "portal.error.reserved")
	}
	return nil
}

// CreatePage adds a draft page under parent (which belongs to the site); it is not shown
// until published.
func (m *Module) CreatePage(ctx context.Context, siteID, parentID int64, slug, title string) (*Page, error) {
	slug, title = strings.TrimSpace(slug), strings.TrimSpace(title)
	if title == "" {
		return nil, errs.OnField(errs.Invalid, "title", "kernel.error.required")
	}
	var page *Page
	err := m.write(ctx, func(tx *store.Tx) error {
		parent, err := getPage(ctx, tx, parentID)
		if err != nil || parent.SiteID != siteID {
			return errs.OnField(errs.Invalid, "parent", "portal.error.no_parent")
		}
		if err := checkSlug(slug, parent); err != nil {
			return err
		}
		id, err := m.insertPage(ctx, tx, siteID, parentID, slug, title, "one", m.now())
		if err != nil {
			return err
		}
		page, err = getPage(ctx, tx, id)
		if err != nil {
			return err
		}
		return m.audit(ctx, tx, "portal.page.create", "page", id, nil, page)
	})
	return page, err
}

// DraftInput is an editor's change to a page's draft.
type DraftInput struct {
	Title, SEOTitle, Description, SocialImage, Layout string
	Content                                           []Placement
	Visibility                                        string
	InMenu                                            bool
}

// SaveDraft cleans every portlet's settings and writes a new draft version: the live page
// does not change until Publish.
func (m *Module) SaveDraft(ctx context.Context, pageID int64, in DraftInput) (int, error) {
	in.Title = strings.TrimSpace(in.Title)
	if in.Title == "" {
		return 0, errs.OnField(errs.Invalid, "title", "kernel.error.required")
	}
	if in.Visibility != Public && in.Visibility != Citizens {
		return 0, errs.OnField(errs.Invalid, "visibility", "portal.error.visibility")
	}
	lay := layoutOf(in.Layout)
	in.Layout = lay.Key
	for i, p := range in.Content {
		t := m.portlets[p.Type]
		if t == nil {
			return 0, errs.OnField(errs.Invalid, "type", "portal.error.portlet_type")
		}
		if !contains(lay.Zones, p.Zone) {
			in.Content[i].Zone = lay.Zones[0]
		}
		cfg, err := t.Clean(ctx, p.Config)
		if err != nil {
			return 0, err
		}
		in.Content[i].Config = cfg
	}
	if in.SocialImage != "" && !safeURL(in.SocialImage) {
		return 0, errs.OnField(errs.Invalid, "social_image", "portal.error.url")
	}
	var n int
	err := m.write(ctx, func(tx *store.Tx) error {
		p, err := getPage(ctx, tx, pageID)
		if err != nil {
			return errs.New(errs.NotFound, "portal.error.no_page")
		}
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) + 1 FROM portal_page_versions WHERE page_id = ?", pageID).Scan(&n); err != nil {
			return err
		}
		v := &Version{PageID: pageID, Version: n, Title: in.Title, SEOTitle: in.SEOTitle, Description: in.Description,
			SocialImage: in.SocialImage, Layout: in.Layout, Content: in.Content, CreatedAt: m.now(), CreatedBy: actor(ctx)}
		if err := insertVersion(ctx, tx, v); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE portal_pages SET draft_version = ?, visibility = ?, in_menu = ?, updated_at = ? WHERE id = ?",
			n, in.Visibility, in.InMenu, m.now(), pageID); err != nil {
			return err
		}
		// Visibility and menu flags apply at once: they change what the live site shows.
		if p.Visibility != in.Visibility || p.InMenu != in.InMenu {
			if err := bump(ctx, tx, p.SiteID); err != nil {
				return err
			}
		}
		return m.audit(ctx, tx, "portal.page.draft", "page", pageID, nil, v)
	})
	return n, err
}

// Publish makes the draft live now, or at a later time (scheduled publication). With
// unpublishAt set, the page goes offline then.
func (m *Module) Publish(ctx context.Context, pageID int64, at, unpublishAt *time.Time) error {
	now := m.now()
	if at != nil && unpublishAt != nil && !unpublishAt.After(*at) {
		return errs.OnField(errs.Invalid, "unpublish_at", "portal.error.unpublish_before")
	}
	return m.write(ctx, func(tx *store.Tx) error {
		p, err := getPage(ctx, tx, pageID)
		if err != nil {
			return errs.New(errs.NotFound, "portal.error.no_page")
		}
		if at == nil || !at.After(now) {
			_, err = tx.ExecContext(ctx, `UPDATE portal_pages SET published_version = draft_version, scheduled_version = 0,
				publish_at = NULL, unpublish_at = ?, updated_at = ? WHERE id = ?`, utcPtr(unpublishAt), now, pageID)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE portal_pages SET scheduled_version = draft_version, publish_at = ?,
				unpublish_at = ?, updated_at = ? WHERE id = ?`, at.UTC(), utcPtr(unpublishAt), now, pageID)
		}
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		if err := m.reindexPage(ctx, tx, pageID, now); err != nil {
			return err
		}
		if err := bump(ctx, tx, p.SiteID); err != nil {
			return err
		}
		return m.audit(ctx, tx, "portal.page.publish", "page", pageID, map[string]any{"version": p.PublishedVersion},
			map[string]any{"version": p.DraftVersion, "at": at, "unpublish_at": unpublishAt})
	})
}

func utcPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC()
}

// Unpublish takes a page offline now.
func (m *Module) Unpublish(ctx context.Context, pageID int64) error {
	return m.write(ctx, func(tx *store.Tx) error {
		p, err := getPage(ctx, tx, pageID)
		if err != nil {
			return errs.New(errs.NotFound, "portal.error.no_page")
		}
		if p.ParentID == 0 {
			return errs.New(errs.Invalid, "portal.error.home_offline")
		}
		if _, err := tx.ExecContext(ctx, "UPDATE portal_pages SET published_version = 0, scheduled_version = 0, publish_at = NULL, unpublish_at = NULL WHERE id = ?", pageID); err != nil {
			return err
		}
		if err := m.reindexPage(ctx, tx, pageID, m.now()); err != nil {
			return err
		}
		if err := bump(ctx, tx, p.SiteID); err != nil {
			return err
		}
		return m.audit(ctx, tx, "portal.page.unpublish", "page", pageID, map[string]any{"version": p.PublishedVersion}, nil)
	})
}

// Restore copies an old version into a new draft (history is never rewritten).
func (m *Module) Restore(ctx context.Context, pageID int64, version int) (int, error) {
	var n int
	err := m.write(ctx, func(tx *store.Tx) error {
		v, err := getVersion(ctx, tx, pageID, version)
		if err != nil {
			return errs.New(errs.NotFound, "portal.error.no_version")
		}
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) + 1 FROM portal_page_versions WHERE page_id = ?", pageID).Scan(&n); err != nil {
			return err
		}
		v.Version, v.CreatedAt, v.CreatedBy = n, m.now(), actor(ctx)
		if err := insertVersion(ctx, tx, v); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE portal_pages SET draft_version = ? WHERE id = ?", n, pageID); err != nil {
			return err
		}
		return m.audit(ctx, tx, "portal.page.restore", "page", pageID, nil, map[string]any{"from": version, "version": n})
	})
	return n, err
}

// MovePage puts a page under a new parent at a position (1 = first), refusing a move under
// itself or one of its descendants, and a slug already used under the new parent.
func (m *Module) MovePage(ctx context.Context, pageID, parentID int64, position int) error {
	return m.write(ctx, func(tx *store.Tx) error {
		p, err := getPage(ctx, tx, pageID)
		if err != nil {
			return errs.New(errs.NotFound, "portal.error.no_page")
		}
		if p.ParentID == 0 {
			return errs.OnField(errs.Invalid, "parent", "portal.error.move_home")
		}
		parent, err := getPage(ctx, tx, parentID)
		if err != nil || parent.SiteID != p.SiteID {
			return errs.OnField(errs.Invalid, "parent", "portal.error.no_parent")
		}
		for a := parent; ; {
			if a.ID == p.ID {
				return errs.OnField(errs.Invalid, "parent", "portal.error.move_under_itself")
			}
			if a.ParentID == 0 {
				break
			}
			if a, err = getPage(ctx, tx, a.ParentID); err != nil {
				return err
			}
		}
		if parent.ParentID == 0 && reserved[p.Slug] {
			return errs.OnField(errs.Invalid, "parent", "portal.error.reserved")
		}
		var siblings []int64
		rows, err := tx.QueryContext(ctx, "SELECT id FROM portal_pages WHERE parent_id = ? AND id <> ? ORDER BY position, id", parentID, pageID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			siblings = append(siblings, id)
		}
		rows.Close()
		if position < 1 || position > len(siblings)+1 {
			position = len(siblings) + 1
		}
		order := append(append(append([]int64{}, siblings[:position-1]...), pageID), siblings[position-1:]...)
		if _, err := tx.ExecContext(ctx, "UPDATE portal_pages SET parent_id = ? WHERE id = ?", parentID, pageID); err != nil {
			if store.IsUniqueViolation(err) {
				return errs.OnField(errs.Conflict, "parent", "portal.error.slug_taken", "slug", p.Slug)
			}
			return err
		}
		for i, id := range order {
			if _, err := tx.ExecContext(ctx, "UPDATE portal_pages SET position = ? WHERE id = ?", i+1, id); err != nil {
				return err
			}
		}
		if err := m.reindexSubtree(ctx, tx, p.SiteID); err != nil {
			return err
		}
		if err := bump(ctx, tx, p.SiteID); err != nil {
			return err
		}
		return m.audit(ctx, tx, "portal.page.move", "page", pageID, map[string]any{"parent": p.ParentID, "position": p.Position},
			map[string]any{"parent": parentID, "position": position})
	})
}

// Dependents is returned (as the error's Args) when a page cannot be deleted.
var errHasDependents = errors.New("page has dependents")

// DeletePage deletes a page that has no sub-pages and no menu entry; otherwise it says
// which pages and menus depend on it.
func (m *Module) DeletePage(ctx context.Context, pageID int64) error {
	return m.write(ctx, func(tx *store.Tx) error {
		p, err := getPage(ctx, tx, pageID)
		if err != nil {
			return errs.New(errs.NotFound, "portal.error.no_page")
		}
		if p.ParentID == 0 {
			return errs.New(errs.Invalid, "portal.error.delete_home")
		}
		titles, err := versionTitles(ctx, tx, p.SiteID)
		if err != nil {
			return err
		}
		var deps []string
		rows, err := tx.QueryContext(ctx, "SELECT id, draft_version FROM portal_pages WHERE parent_id = ? ORDER BY position", pageID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, n int64
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return err
			}
			deps = append(deps, "« "+titles[[2]int64{id, n}]+" »")
		}
		rows.Close()
		if len(deps) > 0 {
			return &errs.Error{Code: errs.Conflict, Key: "portal.error.delete_children", Args: []any{"pages", strings.Join(deps, ", ")}, Err: errHasDependents}
		}
		var menus []string
		rows, err = tx.QueryContext(ctx, "SELECT menu, title FROM portal_menu_links WHERE page_id = ? ORDER BY menu", pageID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var menu, title string
			if err := rows.Scan(&menu, &title); err != nil {
				rows.Close()
				return err
			}
			menus = append(menus, "« "+title+" » ("+menu+")")
		}
		rows.Close()
		if len(menus) > 0 {
			return &errs.Error{Code: errs.Conflict, Key: "portal.error.delete_menu", Args: []any{"menus", strings.Join(menus, ", ")}, Err: errHasDependents}
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM portal_search WHERE site_id = ? AND kind = 'page' AND ref = ?", p.SiteID, fmt.Sprint(pageID)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM portal_pages WHERE id = ?", pageID); err != nil {
			return err
		}
		if err := bump(ctx, tx, p.SiteID); err != nil {
			return err
		}
		return m.audit(ctx, tx, "portal.page.delete", "page", pageID, p, nil)
	})
}

// AddMenuLink adds a manual entry to a site's main or footer menu: a page of the site or
// an external URL.
func (m *Module) AddMenuLink(ctx context.Context, l MenuLink) (*MenuLink, error) {
	l.Title, l.URL = strings.TrimSpace(l.Title), strings.TrimSpace(l.URL)
	if l.Menu != "main" && l.Menu != "footer" {
		return nil, errs.OnField(errs.Invalid, "menu", "portal.error.menu")
	}
	if l.Title == "" {
		return nil, errs.OnField(errs.Invalid, "title", "kernel.error.required")
	}
	if (l.PageID == 0) == (l.URL == "") {
		return nil, errs.OnField(errs.Invalid, "url", "portal.error.link_target")
	}
	if l.URL != "" && !safeURL(l.URL) {
		return nil, errs.OnField(errs.Invalid, "url", "portal.error.url")
	}
	err := m.write(ctx, func(tx *store.Tx) error {
		if l.PageID != 0 {
			p, err := getPage(ctx, tx, l.PageID)
			if err != nil || p.SiteID != l.SiteID {
				return errs.OnField(errs.Invalid, "page", "portal.error.no_page")
			}
		}
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(position), 0) + 1 FROM portal_menu_links WHERE site_id = ? AND menu = ?", l.SiteID, l.Menu).Scan(&l.Position); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, "INSERT INTO portal_menu_links (site_id, menu, title, url, page_id, position) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
			l.SiteID, l.Menu, l.Title, l.URL, l.PageID, l.Position).Scan(&l.ID); err != nil {
			return err
		}
		if err := bump(ctx, tx, l.SiteID); err != nil {
			return err
		}
		return m.audit(ctx, tx, "portal.menu.add", "site", l.SiteID, nil, l)
	})
	return &l, err
}

// DeleteMenuLink removes a menu entry of a site.
func (m *Module) DeleteMenuLink(ctx context.Context, siteID, id int64) error {
	return m.write(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM portal_menu_links WHERE id = ? AND site_id = ?", id, siteID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.New(errs.NotFound, "portal.error.no_link")
		}
		if err := bump(ctx, tx, siteID); err != nil {
			return err
		}
		return m.audit(ctx, tx, "portal.menu.delete", "site", siteID, map[string]any{"link": id}, nil)
	})
}

// NewsInput is an editor's article.
type NewsInput struct {
	Slug, Title, Summary, Body string
	ImageID                    int64
	Tags                       []string
	Published                  bool
	PublishedAt                time.Time // zero: now
	SharedWith                 []int64
}

// SaveNews creates (id 0) or updates an article of site; every site it is shown on (its
// own and those it is shared with, before and after) has its cached pages dropped.
func (m *Module) SaveNews(ctx context.Context, siteID, id int64, in NewsInput) (*News, error) {
	in.Slug, in.Title = strings.TrimSpace(in.Slug), strings.TrimSpace(in.Title)
	if in.Title == "" {
		return nil, errs.OnField(errs.Invalid, "title", "kernel.error.required")
	}
	if !slugRe.MatchString(in.Slug) {
		return nil, errs.OnField(errs.Invalid, "slug", "portal.error.slug")
	}
	if in.PublishedAt.IsZero() {
		in.PublishedAt = m.now()
	}
	var out *News
	err := m.write(ctx, func(tx *store.Tx) error {
		site, err := getSite(ctx, tx, siteID)
		if err != nil {
			return errs.New(errs.NotFound, "portal.error.no_site")
		}
		touched := map[int64]bool{siteID: true}
		var before *News
		now := m.now()
		if id == 0 {
			err = tx.QueryRowContext(ctx, `INSERT INTO portal_news (site_id, slug, title, summary, body, image_id, tags, published, published_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, siteID, in.Slug, in.Title, in.Summary, in.Body, in.ImageID,
				strings.Join(in.Tags, ","), in.Published, in.PublishedAt.UTC(), now).Scan(&id)
		} else {
			before, err = getNews(ctx, tx, id)
			if err != nil || before.SiteID != siteID {
				return errs.New(errs.NotFound, "portal.error.no_news")
			}
			for _, s := range before.SharedWith {
				touched[s] = true
			}
			_, err = tx.ExecContext(ctx, `UPDATE portal_news SET slug = ?, title = ?, summary = ?, body = ?, image_id = ?, tags = ?,
				published = ?, published_at = ?, updated_at = ? WHERE id = ?`, in.Slug, in.Title, in.Summary, in.Body, in.ImageID,
				strings.Join(in.Tags, ","), in.Published, in.PublishedAt.UTC(), now, id)
		}
		if store.IsUniqueViolation(err) {
			return errs.OnField(errs.Conflict, "slug", "portal.error.slug_taken", "slug", in.Slug)
		}
		if err != nil {
			return fmt.Errorf("save news: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM portal_news_sites WHERE news_id = ?", id); err != nil {
			return err
		}
		for _, s := range in.SharedWith {
			if s == siteID {
				continue
			}
			other, err := getSite(ctx, tx, s)
			if err != nil || other.OrgID != site.OrgID {
				return errs.OnField(errs.Invalid, "shared", "portal.error.no_site")
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO portal_news_sites (news_id, site_id) VALUES (?, ?)", id, s); err != nil {
				return err
			}
			touched[s] = true
		}
		out, err = getNews(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := m.reindexNews(ctx, tx, out); err != nil {
			return err
		}
		for s := range touched {
			if err := bump(ctx, tx, s); err != nil {
				return err
			}
		}
		action := "portal.news.update"
		if before == nil {
			action = "portal.news.create"
		}
		return m.audit(ctx, tx, action, "news", id, before, out)
	})
	return out, err
}

func contains[T comparable](xs []T, x T) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
