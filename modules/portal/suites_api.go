package portal

import (
	"context"
	"fmt"
)

// Read access for the suites module (export of sites, pages and news as suite files, and
// the content hashes that tell a suite whether the town changed an item by hand). The
// portal publishes itself as kernel.Service[*portal.Module]; writes go through the usual
// service methods (CreateSite, SaveDraft, Publish, SaveNews…), which audit and drop caches.

// Site returns one site (any organisation; callers check OrgID).
func (m *Module) Site(ctx context.Context, id int64) (*Site, error) {
	return getSite(ctx, m.db.Read(), id)
}

// SitesOf lists the sites of an organisation, read from the database.
func (m *Module) SitesOf(ctx context.Context, orgID int64) ([]*Site, error) {
	all, err := listSites(ctx, m.db.Read())
	if err != nil {
		return nil, err
	}
	var out []*Site
	for _, s := range all {
		if s.OrgID == orgID {
			out = append(out, s)
		}
	}
	return out, nil
}

// Pages lists the pages of a site (parents first, by position).
func (m *Module) Pages(ctx context.Context, siteID int64) ([]*Page, error) {
	return listPages(ctx, m.db.Read(), siteID)
}

// Page returns one page.
func (m *Module) Page(ctx context.Context, id int64) (*Page, error) {
	return getPage(ctx, m.db.Read(), id)
}

// PageVersion returns one version of a page's content.
func (m *Module) PageVersion(ctx context.Context, pageID int64, n int) (*Version, error) {
	return getVersion(ctx, m.db.Read(), pageID, n)
}

// NewsOf lists every article a site owns (published or not), by id.
func (m *Module) NewsOf(ctx context.Context, siteID int64) ([]*News, error) {
	rows, err := m.db.Read().QueryContext(ctx, "SELECT id FROM portal_news WHERE site_id = ? ORDER BY id", siteID)
	if err != nil {
		return nil, fmt.Errorf("news of site %d: %w", siteID, err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]*News, 0, len(ids))
	for _, id := range ids {
		n, err := getNews(ctx, m.db.Read(), id)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// NewsByID returns one article with the sites it is shared with.
func (m *Module) NewsByID(ctx context.Context, id int64) (*News, error) {
	return getNews(ctx, m.db.Read(), id)
}
