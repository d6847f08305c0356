package portal

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
	"parvis.org/parvis/modules/portal/portlet"
)

// Shared blocks: a portlet written once on a site and shown on pages of other sites of the
// organisation (the city's alert banner, its quick links on every district site), edited in
// one place. A page shows one through the "shared" portlet type, which names the block;
// saving a block moves the generation of its site and of every site it is shared with, so
// their cached pages go.

// Block is a shared portlet.
type Block struct {
	ID         int64
	SiteID     int64 // the site that owns and edits it
	Type       string
	Title      string // the editors' name for it
	Config     portlet.Config
	SharedWith []int64
	UpdatedAt  time.Time
}

// BlockInput is what an editor gives to create or replace a block.
type BlockInput struct {
	Type       string
	Title      string
	Config     portlet.Config
	SharedWith []int64
}

const sharedKey = "shared"

func getBlock(ctx context.Context, q store.Querier, id int64) (*Block, error) {
	b := &Block{ID: id}
	var cfg string
	err := q.QueryRowContext(ctx, "SELECT site_id, type, title, config, updated_at FROM portal_blocks WHERE id = ?", id).
		Scan(&b.SiteID, &b.Type, &b.Title, &cfg, &b.UpdatedAt)
	if err != nil {
		return nil, store.NotFound(err, "block")
	}
	if err := json.Unmarshal([]byte(cfg), &b.Config); err != nil {
		return nil, fmt.Errorf("block %d config: %w", id, err)
	}
	rows, err := q.QueryContext(ctx, "SELECT site_id FROM portal_block_sites WHERE block_id = ? ORDER BY site_id", id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		b.SharedWith = append(b.SharedWith, s)
	}
	return b, rows.Err()
}

// blocksFor lists the blocks a site owns and those shared with it.
func blocksFor(ctx context.Context, q store.Querier, siteID int64) ([]*Block, error) {
	rows, err := q.QueryContext(ctx, `SELECT id FROM portal_blocks WHERE site_id = ?
		UNION SELECT block_id FROM portal_block_sites WHERE site_id = ? ORDER BY 1`, siteID, siteID)
	if err != nil {
		return nil, err
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
	var out []*Block
	for _, id := range ids {
		b, err := getBlock(ctx, q, id)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// SaveBlock creates (id 0) or replaces a block of site siteID. Its settings are checked by
// its portlet type; the sites it is shared with must be of the same organisation.
func (m *Module) SaveBlock(ctx context.Context, siteID, id int64, in BlockInput) (*Block, error) {
	in.Title = strings.TrimSpace(in.Title)
	t := m.portlets[in.Type]
	if t == nil || in.Type == sharedKey {
		return nil, errs.OnField(errs.Invalid, "type", "portal.error.portlet_type")
	}
	if in.Title == "" {
		return nil, errs.OnField(errs.Invalid, "block_title", "kernel.error.required")
	}
	cfg, err := t.Clean(ctx, in.Config)
	if err != nil {
		return nil, err
	}
	var out *Block
	err = m.write(ctx, func(tx *store.Tx) error {
		site, err := getSite(ctx, tx, siteID)
		if err != nil {
			return errs.New(errs.NotFound, "portal.error.no_site")
		}
		touched := []int64{siteID}
		var before *Block
		now := m.now()
		if id == 0 {
			err = tx.QueryRowContext(ctx, "INSERT INTO portal_blocks (site_id, type, title, config, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
				siteID, in.Type, in.Title, jsonText(cfg), now).Scan(&id)
		} else {
			before, err = getBlock(ctx, tx, id)
			if err != nil || before.SiteID != siteID {
				return errs.OnField(errs.NotFound, "id", "portal.error.no_block")
			}
			touched = append(touched, before.SharedWith...)
			_, err = tx.ExecContext(ctx, "UPDATE portal_blocks SET type = ?, title = ?, config = ?, updated_at = ? WHERE id = ?",
				in.Type, in.Title, jsonText(cfg), now, id)
		}
		if err != nil {
			return fmt.Errorf("save block: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM portal_block_sites WHERE block_id = ?", id); err != nil {
			return err
		}
		seen := map[int64]bool{siteID: true}
		for _, s := range in.SharedWith {
			if seen[s] {
				continue
			}
			seen[s] = true
			other, err := getSite(ctx, tx, s)
			if err != nil || other.OrgID != site.OrgID {
				return errs.OnField(errs.Invalid, "shared", "portal.error.no_site")
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO portal_block_sites (block_id, site_id) VALUES (?, ?)", id, s); err != nil {
				return err
			}
			touched = append(touched, s)
		}
		slices.Sort(touched)
		if err := bump(ctx, tx, slices.Compact(touched)...); err != nil {
			return err
		}
		if out, err = getBlock(ctx, tx, id); err != nil {
			return err
		}
		action := "portal.block.update"
		if before == nil {
			action = "portal.block.create"
		}
		return m.audit(ctx, tx, action, "block", id, before, out)
	})
	return out, err
}

// sharedPortlet shows a block on a page. A block neither owned by nor shared with the site
// of the page shows nothing (it may have been unshared since the page was written).
type sharedPortlet struct{ m *Module }

func (sharedPortlet) Key() string   { return sharedKey }
func (sharedPortlet) Title() string { return "portal.portlet.shared" }
func (sharedPortlet) Fields() []portlet.Field {
	return []portlet.Field{{Name: "block", Label: "portal.field.block", Hint: "portal.field.block_hint", Kind: portlet.KindText}}
}
func (p sharedPortlet) Clean(ctx context.Context, c portlet.Config) (portlet.Config, error) {
	id, err := strconv.ParseInt(strings.TrimSpace(c["block"]), 10, 64)
	if err != nil {
		return nil, errs.OnField(errs.Invalid, "block", "portal.error.no_block")
	}
	if _, err := getBlock(ctx, p.m.db.Read(), id); err != nil {
		return nil, errs.OnField(errs.Invalid, "block", "portal.error.no_block")
	}
	return portlet.Config{"block": strconv.FormatInt(id, 10)}, nil
}
func (p sharedPortlet) Render(ctx context.Context, rc *portlet.Context, c portlet.Config) (template.HTML, error) {
	id, _ := strconv.ParseInt(c["block"], 10, 64)
	b, err := getBlock(ctx, p.m.db.Read(), id)
	if err != nil {
		return "", nil
	}
	if b.SiteID != rc.SiteID && !slices.Contains(b.SharedWith, rc.SiteID) {
		return "", nil
	}
	t := p.m.portlets[b.Type]
	if t == nil || b.Type == sharedKey {
		return "", nil
	}
	return t.Render(ctx, rc, b.Config)
}

func (m *Module) renderBlocksAdmin(w http.ResponseWriter, r *http.Request, s *Site, f *web.Form, status int, flash string) {
	blocks, err := blocksFor(r.Context(), m.db.Read(), s.ID)
	if err != nil {
		m.fail(w, r, http.StatusInternalServerError, "portal.error.internal")
		return
	}
	st := m.st.Load()
	type row struct {
		B      *Block
		Own    bool
		Owner  string
		Shared []string
	}
	var rows []row
	for _, b := range blocks {
		rw := row{B: b, Own: b.SiteID == s.ID}
		if o := st.byID[b.SiteID]; o != nil {
			rw.Owner = o.Name
		}
		for _, id := range b.SharedWith {
			if o := st.byID[id]; o != nil {
				rw.Shared = append(rw.Shared, o.Name)
			}
		}
		rows = append(rows, rw)
	}
	var others []map[string]string
	for _, o := range st.sites {
		if o.OrgID == s.OrgID && o.ID != s.ID {
			others = append(others, map[string]string{"Value": strconv.FormatInt(o.ID, 10), "Label": o.Name})
		}
	}
	var types []portlet.Type
	for _, k := range m.portletOrder {
		if k != sharedKey {
			types = append(types, m.portlets[k])
		}
	}
	if f == nil {
		f = web.NewForm(nil)
	}
	m.views.Render(w, r, web.Page{Name: "portal/admin_blocks.html", Layout: "backoffice", Title: "portal.admin.blocks", Status: status,
		Form: f, Flash: flash, Data: map[string]any{"Site": s, "Rows": rows, "Others": others, "Types": types}})
}

func (m *Module) adminBlocks(w http.ResponseWriter, r *http.Request) {
	if s := m.siteParam(w, r, PermPagesEdit); s != nil {
		m.renderBlocksAdmin(w, r, s, nil, 0, doneKey(r))
	}
}

// adminBlockSave creates or replaces a block from one of the per-type forms, whose fields
// are all prefixed with the type ("alert.title"), so each form's IDs are unique on the page.
func (m *Module) adminBlockSave(w http.ResponseWriter, r *http.Request) {
	s := m.siteParam(w, r, PermPagesEdit)
	if s == nil {
		return
	}
	f := m.parse(w, r)
	if f == nil {
		return
	}
	typ := f.Get("type")
	t := m.portlets[typ]
	if t == nil || typ == sharedKey {
		m.fail(w, r, http.StatusBadRequest, "portal.error.portlet_type")
		return
	}
	var id int64
	if v := strings.TrimSpace(f.Get(typ + ".id")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			f.Fail(typ+".id", "portal.error.no_block")
			m.renderBlocksAdmin(w, r, s, f, http.StatusBadRequest, "")
			return
		}
		id = n
	}
	in := BlockInput{Type: typ, Title: f.Get(typ + ".block_title"), Config: portlet.Config{}}
	for _, fl := range t.Fields() {
		in.Config[fl.Name] = f.Values.Get(typ + "." + fl.Name)
	}
	for _, v := range f.Values[typ+".shared"] {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			in.SharedWith = append(in.SharedWith, n)
		}
	}
	if _, err := m.SaveBlock(r.Context(), s.ID, id, in); err != nil {
		if e, ok := errs.As(err); ok && e.Field != "" {
			e2 := *e
			e2.Field = typ + "." + e.Field
			err = &e2
		}
		m.renderBlocksAdmin(w, r, s, f, m.failForm(f, err, typ+".block_title"), "")
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/admin/portal/sites/%d/blocks?done=portal.admin.saved", s.ID), http.StatusSeeOther)
}
