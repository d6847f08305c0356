package suites

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/theme"
	"parvis.org/parvis/modules/portal"
	"parvis.org/parvis/modules/portal/portlet"
)

// Adapters over the portal's service methods (which audit each change and drop cached
// pages on every node) and its read API (modules/portal/suites_api.go). Media files are
// not part of suites: logos and images are referred to by URL.

func notFoundErr() error { return errs.New(errs.NotFound, "suites.error.gone") }

// ---- sites

type sitesSection struct {
	m *Module
	p *portal.Module
}

type siteItem struct {
	Name    string          `json:"name"`
	Host    string          `json:"host,omitempty"`
	Prefix  string          `json:"prefix,omitempty"`
	Lang    string          `json:"lang,omitempty"`
	Unit    string          `json:"unit,omitempty"`
	Contact *portal.Contact `json:"contact,omitempty"`
	Legal   string          `json:"legal,omitempty"`
	Theme   *portal.Theme   `json:"theme,omitempty"`
}

func (s *sitesSection) Key() string     { return "sites" }
func (s *sitesSection) Module() string  { return "portal" }
func (s *sitesSection) Order() int      { return 50 }
func (s *sitesSection) Needs() []string { return []string{"units"} }
func (s *sitesSection) Schema() map[string]any {
	link := map[string]any{"type": "object", "required": []string{"title", "url"}, "additionalProperties": false,
		"properties": map[string]any{"title": str(), "url": str()}}
	return object([]string{"name"}, map[string]any{
		"name": nonEmpty(), "host": str(), "prefix": map[string]any{"type": "string", "pattern": `^(/[a-z0-9]+(-[a-z0-9]+)*)?$`},
		"lang": enum("fr", "en"), "unit": keyRef(), "legal": str(),
		"contact": map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{
			"address": str(), "phone": str(), "email": str(), "hours": arrayOf(str())}},
		"theme": map[string]any{"type": "object", "additionalProperties": false, "properties": map[string]any{
			"primary": map[string]any{"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"}, "logo": str(), "footer": str(), "social": arrayOf(link)}},
	})
}
func (s *sitesSection) Refs(it Item) []Ref {
	if u, _ := it.Data["unit"].(string); u != "" {
		return []Ref{{Section: "units", Key: u, Path: "unit"}}
	}
	return nil
}
func (s *sitesSection) Check(items []Item, _ map[string][]Item) []Problem {
	var ps []Problem
	seen := map[string]string{}
	for _, it := range items {
		var v siteItem
		_ = it.Decode(&v)
		where := strings.ToLower(v.Host) + "|" + strings.TrimRight(v.Prefix, "/")
		if k, dup := seen[where]; dup {
			ps = append(ps, Problem{Path: it.Path + ".prefix", Key: "suites.error.same_address", Args: []any{"other", k}})
		}
		seen[where] = it.Key
		if v.Theme != nil && v.Theme.Primary != "" {
			if c, err := theme.ParseHex(v.Theme.Primary); err == nil {
				if r := theme.Contrast(c, theme.White); r < portal.MinContrast {
					ps = append(ps, Problem{Path: it.Path + ".theme.primary", Key: "kernel.theme.error.contrast", Args: []any{"ratio", theme.FormatRatio(r)}})
				}
			}
		}
	}
	return ps
}
func (s *sitesSection) Ident(_ context.Context, _ int64, it Item, _ Resolver) string {
	var v siteItem
	_ = it.Decode(&v)
	return strings.ToLower(v.Host) + "|" + strings.TrimRight(strings.ToLower(v.Prefix), "/")
}
func (s *sitesSection) List(ctx context.Context, org int64) ([]Resource, error) {
	sites, err := s.p.SitesOf(ctx, org)
	if err != nil {
		return nil, err
	}
	out := make([]Resource, len(sites))
	for i, st := range sites {
		k := slug(strings.TrimPrefix(st.Prefix, "/"))
		if st.Prefix == "" {
			k = "ville"
			if st.Host != "" {
				k = slug(st.Host)
			}
		}
		out[i] = Resource{ID: idStr(st.ID), Key: k, Ident: st.Host + "|" + st.Prefix}
	}
	return out, nil
}
func (s *sitesSection) site(ctx context.Context, org int64, id string) (*portal.Site, error) {
	st, err := s.p.Site(ctx, id64(id))
	if err != nil {
		return nil, err
	}
	if st.OrgID != org {
		return nil, notFoundErr()
	}
	return st, nil
}
func (s *sitesSection) Read(ctx context.Context, org int64, id string, r Resolver) (map[string]any, error) {
	st, err := s.site(ctx, org, id)
	if err != nil {
		return nil, err
	}
	v := siteItem{Name: st.Name, Host: st.Host, Prefix: st.Prefix, Lang: st.Lang, Unit: keyOf(r, "units", st.UnitID), Legal: st.Legal}
	if c := st.Contact; c.Address != "" || c.Phone != "" || c.Email != "" || len(c.Hours) > 0 {
		v.Contact = &c
	}
	if t := st.Theme; t.Primary != "" || t.Logo != "" || t.Footer != "" || len(t.Social) > 0 {
		v.Theme = &t
	}
	return Normalize(v), nil
}
func (s *sitesSection) Write(ctx context.Context, org int64, id string, it Item, r Resolver) (string, error) {
	var v siteItem
	if err := it.Decode(&v); err != nil {
		return "", err
	}
	unit, err := refID(r, "units", v.Unit)
	if err != nil {
		return "", err
	}
	in := portal.SiteInput{OrgID: org, UnitID: unit, Name: v.Name, Host: v.Host, Prefix: v.Prefix, Lang: v.Lang, Legal: v.Legal}
	if v.Contact != nil {
		in.Contact = *v.Contact
	}
	if id == "" {
		st, err := s.p.CreateSite(ctx, in, 0)
		if err != nil {
			return "", err
		}
		id = idStr(st.ID)
	} else if err := s.p.UpdateSite(ctx, id64(id), in); err != nil {
		return "", err
	}
	var th portal.Theme
	if v.Theme != nil {
		th = *v.Theme
	}
	return id, s.p.UpdateTheme(ctx, id64(id), th)
}

// ---- pages

type pagesSection struct {
	m *Module
	p *portal.Module
}

type placement struct {
	Zone   string         `json:"zone"`
	Type   string         `json:"type"`
	Config portlet.Config `json:"config,omitempty"`
}

type pageItem struct {
	Site        string      `json:"site"`
	Home        bool        `json:"home,omitempty"`
	Parent      string      `json:"parent,omitempty"`
	Slug        string      `json:"slug,omitempty"`
	Title       string      `json:"title"`
	SEOTitle    string      `json:"seo_title,omitempty"`
	Description string      `json:"description,omitempty"`
	Layout      string      `json:"layout,omitempty"`
	Visibility  string      `json:"visibility,omitempty"`
	InMenu      bool        `json:"in_menu,omitempty"`
	Content     []placement `json:"content,omitempty"`
}

func (s *pagesSection) Key() string     { return "pages" }
func (s *pagesSection) Module() string  { return "portal" }
func (s *pagesSection) Order() int      { return 60 }
func (s *pagesSection) Needs() []string { return []string{"sites"} }
func (s *pagesSection) Schema() map[string]any {
	pl := map[string]any{"type": "object", "required": []string{"zone", "type"}, "additionalProperties": false, "properties": map[string]any{
		"zone": nonEmpty(), "type": nonEmpty(), "config": map[string]any{"type": "object", "additionalProperties": str()}}}
	return object([]string{"site", "title"}, map[string]any{
		"site": keyRef(), "home": boolean(), "parent": keyRef(), "slug": map[string]any{"type": "string", "pattern": `^[a-z0-9]+(-[a-z0-9]+)*$`},
		"title": nonEmpty(), "seo_title": str(), "description": str(), "layout": enum("one", "two", "home"),
		"visibility": enum(portal.Public, portal.Citizens), "in_menu": boolean(), "content": arrayOf(pl),
	})
}
func (s *pagesSection) Refs(it Item) []Ref {
	var v pageItem
	_ = it.Decode(&v)
	out := []Ref{{Section: "sites", Key: v.Site, Path: "site"}}
	if v.Parent != "" {
		out = append(out, Ref{Section: "pages", Key: v.Parent, Path: "parent"})
	}
	return out
}
func (s *pagesSection) Check(items []Item, _ map[string][]Item) []Problem {
	var ps []Problem
	homes := map[string]string{}
	for _, it := range items {
		var v pageItem
		_ = it.Decode(&v)
		switch {
		case v.Home && (v.Slug != "" || v.Parent != ""):
			ps = append(ps, Problem{Path: it.Path + ".home", Key: "suites.error.home_slug"})
		case !v.Home && v.Slug == "":
			ps = append(ps, Problem{Path: it.Path, Key: "suites.error.slug_required"})
		}
		if v.Home {
			if k, dup := homes[v.Site]; dup {
				ps = append(ps, Problem{Path: it.Path + ".home", Key: "suites.error.two_homes", Args: []any{"other", k}})
			}
			homes[v.Site] = it.Key
		}
	}
	return ps
}

func (s *pagesSection) home(ctx context.Context, siteID int64) (*portal.Page, error) {
	pages, err := s.p.Pages(ctx, siteID)
	if err != nil {
		return nil, err
	}
	for _, p := range pages {
		if p.ParentID == 0 {
			return p, nil
		}
	}
	return nil, fmt.Errorf("site %d has no home page", siteID)
}

func (s *pagesSection) Ident(ctx context.Context, _ int64, it Item, r Resolver) string {
	var v pageItem
	_ = it.Decode(&v)
	if v.Home {
		return "" // every site has one: the suite adopts it
	}
	site, ok := r.ID("sites", v.Site)
	if !ok {
		return ""
	}
	parent := ""
	if v.Parent != "" {
		if parent, ok = r.ID("pages", v.Parent); !ok {
			return ""
		}
	} else if h, err := s.home(ctx, id64(site)); err == nil {
		parent = idStr(h.ID)
	}
	return site + "/" + parent + "/" + v.Slug
}

func (s *pagesSection) List(ctx context.Context, org int64) ([]Resource, error) {
	sites, err := s.p.SitesOf(ctx, org)
	if err != nil {
		return nil, err
	}
	var out []Resource
	for _, st := range sites {
		pages, err := s.p.Pages(ctx, st.ID)
		if err != nil {
			return nil, err
		}
		base := "ville"
		if st.Prefix != "" {
			base = slug(st.Prefix)
		}
		for _, p := range pages {
			res := Resource{ID: idStr(p.ID), Key: base + "-" + p.Slug}
			if p.ParentID == 0 {
				res.Key = base + "-accueil"
			} else {
				res.Ident = idStr(st.ID) + "/" + idStr(p.ParentID) + "/" + p.Slug
			}
			out = append(out, res)
		}
	}
	return out, nil
}

func (s *pagesSection) Read(ctx context.Context, org int64, id string, r Resolver) (map[string]any, error) {
	p, err := s.p.Page(ctx, id64(id))
	if err != nil {
		return nil, err
	}
	st, err := s.p.Site(ctx, p.SiteID)
	if err != nil || st.OrgID != org {
		return nil, notFoundErr()
	}
	ver, err := s.p.PageVersion(ctx, p.ID, p.DraftVersion)
	if err != nil {
		return nil, err
	}
	v := pageItem{Site: keyOf(r, "sites", p.SiteID), Home: p.ParentID == 0, Slug: p.Slug, Title: ver.Title, SEOTitle: ver.SEOTitle,
		Description: ver.Description, Layout: ver.Layout, Visibility: p.Visibility, InMenu: p.InMenu}
	if p.ParentID != 0 {
		parent, err := s.p.Page(ctx, p.ParentID)
		if err != nil {
			return nil, err
		}
		if parent.ParentID != 0 { // under the home page: no parent needed
			v.Parent = keyOf(r, "pages", p.ParentID)
		}
	}
	for _, pl := range ver.Content {
		v.Content = append(v.Content, placement{Zone: pl.Zone, Type: pl.Type, Config: pl.Config})
	}
	return Normalize(v), nil
}

func (s *pagesSection) Write(ctx context.Context, org int64, id string, it Item, r Resolver) (string, error) {
	var v pageItem
	if err := it.Decode(&v); err != nil {
		return "", err
	}
	site, err := refID(r, "sites", v.Site)
	if err != nil {
		return "", err
	}
	if id == "" {
		if v.Home {
			h, err := s.home(ctx, site)
			if err != nil {
				return "", err
			}
			id = idStr(h.ID)
		} else {
			parent, err := refID(r, "pages", v.Parent)
			if err != nil {
				return "", err
			}
			if parent == 0 {
				h, err := s.home(ctx, site)
				if err != nil {
					return "", err
				}
				parent = h.ID
			}
			p, err := s.p.CreatePage(ctx, site, parent, v.Slug, v.Title)
			if err != nil {
				return "", err
			}
			id = idStr(p.ID)
		}
	}
	in := portal.DraftInput{Title: v.Title, SEOTitle: v.SEOTitle, Description: v.Description, Layout: v.Layout,
		Visibility: v.Visibility, InMenu: v.InMenu}
	if in.Visibility == "" {
		in.Visibility = portal.Public
	}
	for _, pl := range v.Content {
		cfg := portlet.Config{}
		for k, x := range pl.Config {
			cfg[k] = x
		}
		in.Content = append(in.Content, portal.Placement{Zone: pl.Zone, Type: pl.Type, Config: cfg})
	}
	if _, err := s.p.SaveDraft(ctx, id64(id), in); err != nil {
		return "", err
	}
	return id, s.p.Publish(ctx, id64(id), nil, nil)
}

// ---- news

type newsSection struct {
	m *Module
	p *portal.Module
}

type newsItem struct {
	Site        string   `json:"site"`
	Slug        string   `json:"slug"`
	Title       string   `json:"title"`
	Summary     string   `json:"summary,omitempty"`
	Body        string   `json:"body,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	Draft       bool     `json:"draft,omitempty"`
	PublishedAt string   `json:"published_at,omitempty"`
	SharedWith  []string `json:"shared_with,omitempty"`
}

func (s *newsSection) Key() string     { return "news" }
func (s *newsSection) Module() string  { return "portal" }
func (s *newsSection) Order() int      { return 70 }
func (s *newsSection) Needs() []string { return []string{"sites"} }
func (s *newsSection) Schema() map[string]any {
	return object([]string{"site", "slug", "title"}, map[string]any{
		"site": keyRef(), "slug": map[string]any{"type": "string", "pattern": `^[a-z0-9]+(-[a-z0-9]+)*$`}, "title": nonEmpty(),
		"summary": str(), "body": str(), "tags": arrayOf(str()), "draft": boolean(),
		"published_at": map[string]any{"type": "string", "format": "date-time"}, "shared_with": arrayOf(keyRef()),
	})
}
func (s *newsSection) Refs(it Item) []Ref {
	var v newsItem
	_ = it.Decode(&v)
	out := []Ref{{Section: "sites", Key: v.Site, Path: "site"}}
	for i, k := range v.SharedWith {
		out = append(out, Ref{Section: "sites", Key: k, Path: fmt.Sprintf("shared_with[%d]", i)})
	}
	return out
}
func (s *newsSection) Check(items []Item, _ map[string][]Item) []Problem {
	var ps []Problem
	for _, it := range items {
		var v newsItem
		_ = it.Decode(&v)
		if v.PublishedAt != "" {
			if _, err := time.Parse(time.RFC3339, v.PublishedAt); err != nil {
				ps = append(ps, Problem{Path: it.Path + ".published_at", Key: "suites.error.datetime"})
			}
		}
	}
	return ps
}
func (s *newsSection) Ident(_ context.Context, _ int64, it Item, r Resolver) string {
	var v newsItem
	_ = it.Decode(&v)
	site, ok := r.ID("sites", v.Site)
	if !ok {
		return ""
	}
	return site + "/" + v.Slug
}
func (s *newsSection) List(ctx context.Context, org int64) ([]Resource, error) {
	sites, err := s.p.SitesOf(ctx, org)
	if err != nil {
		return nil, err
	}
	var out []Resource
	for _, st := range sites {
		news, err := s.p.NewsOf(ctx, st.ID)
		if err != nil {
			return nil, err
		}
		for _, n := range news {
			out = append(out, Resource{ID: idStr(n.ID), Key: n.Slug, Ident: idStr(st.ID) + "/" + n.Slug})
		}
	}
	return out, nil
}
func (s *newsSection) Read(ctx context.Context, org int64, id string, r Resolver) (map[string]any, error) {
	n, err := s.p.NewsByID(ctx, id64(id))
	if err != nil {
		return nil, err
	}
	st, err := s.p.Site(ctx, n.SiteID)
	if err != nil || st.OrgID != org {
		return nil, notFoundErr()
	}
	v := newsItem{Site: keyOf(r, "sites", n.SiteID), Slug: n.Slug, Title: n.Title, Summary: n.Summary, Body: n.Body, Tags: n.Tags,
		Draft: !n.Published, PublishedAt: n.PublishedAt.UTC().Format(time.RFC3339)}
	for _, x := range n.SharedWith {
		v.SharedWith = append(v.SharedWith, keyOf(r, "sites", x))
	}
	sort.Strings(v.SharedWith)
	return Normalize(v), nil
}
func (s *newsSection) Write(ctx context.Context, org int64, id string, it Item, r Resolver) (string, error) {
	var v newsItem
	if err := it.Decode(&v); err != nil {
		return "", err
	}
	site, err := refID(r, "sites", v.Site)
	if err != nil {
		return "", err
	}
	in := portal.NewsInput{Slug: v.Slug, Title: v.Title, Summary: v.Summary, Body: v.Body, Tags: v.Tags, Published: !v.Draft}
	if v.PublishedAt != "" {
		in.PublishedAt, _ = time.Parse(time.RFC3339, v.PublishedAt)
	}
	for _, k := range v.SharedWith {
		x, err := refID(r, "sites", k)
		if err != nil {
			return "", err
		}
		in.SharedWith = append(in.SharedWith, x)
	}
	n, err := s.p.SaveNews(ctx, site, id64(id), in)
	if err != nil {
		return "", err
	}
	return idStr(n.ID), nil
}
