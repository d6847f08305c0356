package mail

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

func (m *Module) routes() []kernel.Route {
	return []kernel.Route{
		{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/outbox", Perm: PermOutbox, Handler: http.HandlerFunc(m.list), Name: "kernel.mail.outbox"},
		{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/outbox/{id}", Perm: PermOutbox, Handler: http.HandlerFunc(m.show), Name: "kernel.mail.show"},
		{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/outbox/{id}/html", Perm: PermOutbox, Handler: http.HandlerFunc(m.html)},
		{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/outbox/{id}/attachments/{att}", Perm: PermOutbox, Handler: http.HandlerFunc(m.attachment)},
	}
}

// org returns the organisation whose mails the agent may read; 0 means all (superadmins).
func org(ctx context.Context) int64 {
	a := kernel.AgentFrom(ctx)
	if a == nil || a.Superadmin {
		return 0
	}
	return a.OrgID
}

// Row is one line of the outbox list.
type Row struct {
	ID        int64
	To        string
	Subject   string
	Template  string
	Status    string
	StatusKey string
	Color     string // of the status tag
	Attempts  int
	LastError string
	CreatedAt time.Time
}

type listData struct {
	Rows   []Row
	Outbox bool // no SMTP server configured
	Next   int64
}

const pageSize = 50

// List returns mails newest first, before the given id (0: from the newest), of orgID (0: all).
func (m *Module) List(ctx context.Context, orgID, before int64, n int) ([]Row, error) {
	q := "SELECT id, recipients, subject, template, status, attempts, last_error, created_at FROM mail_messages WHERE 1 = 1"
	var args []any
	if orgID != 0 {
		q += " AND org_id = ?"
		args = append(args, orgID)
	}
	if before > 0 {
		q += " AND id < ?"
		args = append(args, before)
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, n)
	rows, err := m.db.Read().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var r Row
		var to string
		if err := rows.Scan(&r.ID, &to, &r.Subject, &r.Template, &r.Status, &r.Attempts, &r.LastError, &r.CreatedAt); err != nil {
			return nil, err
		}
		r.To = joinRecipients(to)
		r.StatusKey = "kernel.mail.status." + r.Status
		r.Color = map[string]string{StatusSent: "green", StatusQueued: "yellow", StatusFailed: "red"}[r.Status]
		if r.Color == "" {
			r.Color = "grey"
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func joinRecipients(js string) string {
	var to []string
	if err := json.Unmarshal([]byte(js), &to); err != nil {
		return js
	}
	s := ""
	for i, t := range to {
		if i > 0 {
			s += ", "
		}
		s += t
	}
	return s
}

func (m *Module) list(w http.ResponseWriter, r *http.Request) {
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	rows, err := m.List(r.Context(), org(r.Context()), before, pageSize+1)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	d := listData{Rows: rows, Outbox: m.smtp == nil}
	if len(rows) > pageSize {
		d.Rows = rows[:pageSize]
		d.Next = d.Rows[pageSize-1].ID
	}
	m.views.Render(w, r, web.Page{Name: "kernel.mail/outbox.html", Layout: "backoffice", Title: "kernel.mail.outbox.title", Data: d})
}

// load fetches the mail named by the {id} path value, if the agent's organisation owns it.
func (m *Module) load(w http.ResponseWriter, r *http.Request) *Message {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		m.status(w, r, http.StatusNotFound, "kernel.mail.not_found")
		return nil
	}
	msg, err := m.Get(r.Context(), m.db.Read(), id)
	if errors.Is(err, store.ErrNotFound) || err == nil && org(r.Context()) != 0 && msg.OrgID != org(r.Context()) {
		m.status(w, r, http.StatusNotFound, "kernel.mail.not_found")
		return nil
	}
	if err != nil {
		m.fail(w, r, err)
		return nil
	}
	return msg
}

type showData struct {
	*Message
	StatusKey string
}

func (m *Module) show(w http.ResponseWriter, r *http.Request) {
	msg := m.load(w, r)
	if msg == nil {
		return
	}
	m.views.Render(w, r, web.Page{Name: "kernel.mail/message.html", Layout: "backoffice", Title: "kernel.mail.message.title",
		Data: showData{Message: msg, StatusKey: "kernel.mail.status." + msg.Status}})
}

// html shows the HTML body as the recipient would see it, in a sandbox: a unique origin
// where no script runs, and nothing loads but inline styles and images.
func (m *Module) html(w http.ResponseWriter, r *http.Request) {
	msg := m.load(w, r)
	if msg == nil {
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; frame-ancestors 'none'")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(msg.HTML))
}

func (m *Module) attachment(w http.ResponseWriter, r *http.Request) {
	msg := m.load(w, r)
	if msg == nil {
		return
	}
	att, _ := strconv.ParseInt(r.PathValue("att"), 10, 64)
	var name, ct string
	var data []byte
	err := m.db.Read().QueryRowContext(r.Context(), "SELECT name, content_type, data FROM mail_attachments WHERE id = ? AND mail_id = ?",
		att, msg.ID).Scan(&name, &ct, &data)
	if err != nil {
		if errors.Is(store.NotFound(err, "attachment"), store.ErrNotFound) {
			m.status(w, r, http.StatusNotFound, "kernel.mail.not_found")
			return
		}
		m.fail(w, r, err)
		return
	}
	h := w.Header()
	// Always a download, never rendered in the back office's origin.
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(data)
}

func (m *Module) fail(w http.ResponseWriter, r *http.Request, err error) {
	m.log.ErrorContext(r.Context(), "outbox page", "err", err)
	m.status(w, r, http.StatusInternalServerError, "kernel.error.internal")
}

func (m *Module) status(w http.ResponseWriter, r *http.Request, status int, key string) {
	lang := "fr"
	if m.views.Lang != nil {
		lang = m.views.Lang(r)
	}
	m.views.Render(w, r, web.Page{Name: "kernel/error.html", Layout: "backoffice", Status: status, Title: "kernel.error.title",
		Data: struct{ Message, Back string }{m.bundle.T(lang, key), "/admin/outbox"}})
}
