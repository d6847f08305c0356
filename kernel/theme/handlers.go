package theme

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/i18n"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

// serveCSS serves the custom properties of a theme:
//   - /theme.css?o=ORG&v=HASH, as linked by layouts: cached for a year when HASH is current
//     (a change gives a new URL), revalidated otherwise;
//   - /theme.css: the current request's organisation, revalidated with its ETag;
//   - /theme.css?preview=RRGGBB: the properties of a colour scoped to .pv-theme-preview,
//     for the theme editor's preview (refused if the colour fails AA contrast).
func (m *Module) serveCSS(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	h := w.Header()
	if p := q.Get("preview"); p != "" {
		t := Theme{Name: "preview", Primary: "#" + p}.Normalize()
		if err := t.Validate(); err != nil {
			http.Error(w, "preview: not a colour that passes AA contrast", http.StatusBadRequest)
			return
		}
		h.Set("Content-Type", "text/css; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
		_, _ = w.Write(t.CSS(".pv-theme-preview"))
		return
	}
	org := orgOf(r)
	if o := q.Get("o"); o != "" {
		n, err := strconv.ParseInt(o, 10, 64)
		if err != nil || n <= 0 {
			http.Error(w, "o: not an organisation number", http.StatusBadRequest)
			return
		}
		org = n
	}
	c, err := m.compiled(r.Context(), org)
	if err != nil {
		m.log.Error("theme stylesheet", "org", org, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	etag := `"` + c.hash + `"`
	h.Set("Content-Type", "text/css; charset=utf-8")
	h.Set("ETag", etag)
	if v := q.Get("v"); v != "" && v == c.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(c.css)
}

// editData is what the theme editor shows beside the form.
type editData struct {
	Ratio      string // contrast of the shown colour against white, "7.41"
	PreviewCSS string // stylesheet of the shown colour, scoped to the preview box
	Previewing bool   // the colour shown is not saved yet
	Saved      bool
}

func (m *Module) editData(t Theme) editData {
	d := editData{}
	if c, err := ParseHex(t.Primary); err == nil && Contrast(c, White) >= AA {
		d.Ratio = FormatRatio(Contrast(c, White))
		d.PreviewCSS = "/theme.css?preview=" + c.Hex()[1:]
	}
	return d
}

func formOf(t Theme) *web.Form {
	return web.NewForm(url.Values{"name": {t.Name}, "logo_url": {t.LogoURL}, "primary": {t.Primary}})
}

// edit shows the organisation's theme in a form.
func (m *Module) edit(w http.ResponseWriter, r *http.Request) {
	a := kernel.AgentFrom(r.Context())
	t, _, err := load(r.Context(), m.db.Read(), a.OrgID)
	if err != nil {
		m.fail(w, r, http.StatusInternalServerError, "kernel.error.internal", err)
		return
	}
	d := m.editData(t)
	d.Saved = r.URL.Query().Get("saved") == "1"
	pg := web.Page{Name: "kernel.theme/edit.html", Layout: "backoffice", Title: "kernel.theme.edit.title", Form: formOf(t), Data: d}
	if d.Saved {
		pg.Flash = "kernel.theme.saved"
	}
	m.views.Render(w, r, pg)
}

// update checks the posted theme and saves it with an audit entry in one transaction, or
// shows the form again (400) with an error summary and every answer kept. The "preview"
// button shows a valid colour without saving it.
func (m *Module) update(w http.ResponseWriter, r *http.Request) {
	a := kernel.AgentFrom(r.Context())
	f, err := web.ParseForm(r)
	if errors.Is(err, web.ErrBodyTooLarge) {
		m.fail(w, r, http.StatusRequestEntityTooLarge, "kernel.error.too_large", nil)
		return
	}
	if err != nil {
		m.fail(w, r, http.StatusBadRequest, "kernel.error.bad_request", nil)
		return
	}
	t := Theme{Name: f.Get("name"), LogoURL: f.Get("logo_url"), Primary: f.Get("primary")}.Normalize()
	if err := t.Validate(); err != nil {
		for _, e := range unjoin(err) {
			if de, ok := errs.As(e); ok {
				f.Fail(de.Field, de.Key, de.Args...)
			}
		}
		d := m.editData(t)
		d.Previewing = d.PreviewCSS != ""
		m.views.Render(w, r, web.Page{Name: "kernel.theme/edit.html", Layout: "backoffice", Title: "kernel.theme.edit.title",
			Status: http.StatusBadRequest, Form: f, Data: d})
		return
	}
	if f.Get("action") == "preview" {
		d := m.editData(t)
		d.Previewing = true
		m.views.Render(w, r, web.Page{Name: "kernel.theme/edit.html", Layout: "backoffice", Title: "kernel.theme.edit.title",
			Form: formOf(t), Data: d})
		return
	}
	ctx := r.Context()
	err = m.db.InTx(ctx, func(tx *store.Tx) error {
		before, existed, err := load(ctx, tx, a.OrgID)
		if err != nil {
			return err
		}
		if err := save(ctx, tx, a.OrgID, t, a.ID, m.clock.Now()); err != nil {
			return err
		}
		tx.AfterCommit(func() { m.changedOn(context.WithoutCancel(ctx), a.OrgID) })
		if m.audit == nil { // unit tests without the audit part
			return nil
		}
		e := kernel.AuditEntry{Action: "kernel.theme.update", ResourceType: "theme", ResourceID: strconv.FormatInt(a.OrgID, 10), After: t}
		if existed {
			e.Before = before
		}
		return m.audit.Record(ctx, tx, e)
	})
	if err != nil {
		m.fail(w, r, http.StatusInternalServerError, "kernel.error.internal", err)
		return
	}
	http.Redirect(w, r, "/admin/theme?saved=1", http.StatusSeeOther)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// errorPage matches the data of the kernel's error page.
type errorPage struct{ Message, Back string }

func (m *Module) fail(w http.ResponseWriter, r *http.Request, status int, key string, err error) {
	if err != nil {
		m.log.Error("theme", "err", err, "request_id", web.RequestIDFrom(r.Context()))
	}
	m.views.Render(w, r, web.Page{Name: "kernel/error.html", Layout: "backoffice", Status: status, Title: "kernel.error.title",
		Data: errorPage{Message: m.views.I18n.T(m.lang(r), key), Back: "/admin/"}})
}

func (m *Module) lang(r *http.Request) string {
	if m.views.Lang != nil {
		return m.views.Lang(r)
	}
	return i18n.Default
}
