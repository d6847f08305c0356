// Package mail is the kernel's mail service. Send renders a mail at once from the module's
// per-locale templates (subject, text and HTML inside the kernel's layout), stores it with
// its attachments in the caller's transaction, and enqueues a job — in that same
// transaction — that delivers it over SMTP. A crash therefore never loses a committed
// change's mail, nor sends one for a change that rolled back. Without SMTP settings, mails
// are kept in the back-office outbox (/admin/outbox) so that a newcomer still sees them.
package mail

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"log/slog"
	"net/http"
	netmail "net/mail"
	texttemplate "text/template"
	"time"

	"github.com/riverqueue/river"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/i18n"
	"parvis.org/parvis/kernel/jobs"
	"parvis.org/parvis/kernel/server"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

func init() { kernel.Register(&Module{}) }

//go:embed migrations templates locales layout mail
var files embed.FS

// ID is the module ID.
const ID = "kernel.mail"

// PermOutbox lets an agent read the mails of their organisation in the outbox.
const PermOutbox = "kernel.mail.outbox"

// Mail statuses.
const (
	StatusQueued = "queued" // waiting for (another) delivery attempt
	StatusSent   = "sent"   // accepted by the SMTP server
	StatusOutbox = "outbox" // no SMTP server configured: kept for the back office
	StatusFailed = "failed" // every attempt failed; the job can be retried from /admin/jobs
)

// SiteNamer, when a module provides it (kernel.Provide[mail.SiteNamer]), names the site in
// the mail layout, per organisation. Without it, the site name of the pages is used
// (server.SiteNamer), else "Parvis".
type SiteNamer interface {
	MailSiteName(ctx context.Context, orgID int64) string
}

// Module is the mail service.
type Module struct {
	env        *kernel.Env
	db         *store.DB
	log        *slog.Logger
	views      *web.Views
	bundle     *i18n.Bundle
	loc        *time.Location
	baseURL    string
	smtp       *smtpConfig // nil: outbox only
	templates  catalogue
	layoutHTML *htmltemplate.Template
	layoutText *texttemplate.Template
	jobs       kernel.Jobs
	now        func() time.Time
}

var (
	_ kernel.Module      = (*Module)(nil)
	_ kernel.Provisioner = (*Module)(nil)
	_ kernel.Validator   = (*Module)(nil)
	_ kernel.Declarer    = (*Module)(nil)
	_ kernel.Assembler   = (*Module)(nil)
	_ kernel.Mailer      = (*Module)(nil)
)

// Info implements kernel.Module.
func (*Module) Info() kernel.Info {
	return kernel.Info{ID: ID, Version: "1.0.0", Title: "kernel.mail.title", Builtin: true, Priority: 20,
		New: func() kernel.Module { return &Module{} }}
}

// Provision reads the SMTP settings, parses the layout, adds the delivery worker and
// publishes the kernel.Mailer service.
func (m *Module) Provision(ctx context.Context, env *kernel.Env) error {
	m.env, m.db, m.log, m.views, m.bundle = env, env.DB, env.Log, env.Views, env.I18n
	m.loc, m.baseURL, m.now = env.Config.Location, env.Config.BaseURL, env.Clock.Now
	if m.loc == nil {
		m.loc = time.UTC
	}
	var err error
	if m.smtp, err = parseSMTP(env.Config.SMTP, env.Config.MailFrom); err != nil {
		return err
	}
	if m.smtp == nil {
		m.log.Info("no SMTP server configured: mails are kept in the back-office outbox (/admin/outbox)")
	}
	if m.layoutHTML, err = htmltemplate.ParseFS(files, "layout/layout.html"); err != nil {
		return fmt.Errorf("mail layout: %w", err)
	}
	if m.layoutText, err = texttemplate.ParseFS(files, "layout/layout.txt"); err != nil {
		return fmt.Errorf("mail layout: %w", err)
	}
	m.jobs = env.Jobs
	if m.jobs == nil {
		m.jobs, _ = kernel.Service[kernel.Jobs](env)
	}
	river.AddWorker(env.Workers, &worker{m: m})
	kernel.Provide[kernel.Mailer](env, m)
	return nil
}

// Validate checks that the job queue is there.
func (m *Module) Validate() error {
	if m.jobs == nil {
		return errors.New("mail needs the job queue (kernel.jobs), which is not provided")
	}
	return nil
}

func sub(dir string) fs.FS { f, _ := fs.Sub(files, dir); return f }

// Declare lists the module's tables, pages, permission, menu entry and its own mails.
func (m *Module) Declare() kernel.Parts {
	return kernel.Parts{
		Migrations:  sub("migrations"),
		Templates:   sub("templates"),
		Locales:     sub("locales"),
		Mail:        sub("mail"),
		Permissions: []kernel.Permission{{Name: PermOutbox, Title: "kernel.mail.perm.outbox"}},
		Routes:      m.routes(),
		Menu:        []kernel.MenuItem{{Section: "menu.admin", Title: "kernel.mail.menu", Path: "/admin/outbox", Perm: PermOutbox, Order: 920}},
	}
}

// Assemble parses every module's mail templates; a broken one stops start-up.
func (m *Module) Assemble(all []kernel.Declared) error {
	m.templates = catalogue{}
	for _, d := range all {
		if d.Parts.Mail == nil {
			continue
		}
		if err := m.templates.load(d.ID, d.Parts.Mail); err != nil {
			return err
		}
	}
	return nil
}

// Has reports whether a mail template "<module>/<name>" exists.
func (m *Module) Has(template string) bool { _, ok := m.templates[template]; return ok }

func (m *Module) siteName(ctx context.Context, orgID int64) string {
	if n, ok := kernel.Service[SiteNamer](m.env); ok {
		if s := n.MailSiteName(ctx, orgID); s != "" {
			return s
		}
	}
	// The name the pages show (kernel.theme), asked with a request to the site's home in
	// the caller's context (which carries the signed-in agent or citizen, if any).
	if n, ok := kernel.Service[server.SiteNamer](m.env); ok {
		if r, err := http.NewRequestWithContext(ctx, http.MethodGet, m.baseURL+"/", nil); err == nil {
			if s := n.SiteName(r); s != "" {
				return s
			}
		}
	}
	return "Parvis"
}

// DeliverArgs is the job that delivers a stored mail.
type DeliverArgs struct {
	MailID int64 `json:"mail_id"`
}

// Kind implements river.JobArgs.
func (DeliverArgs) Kind() string { return "kernel.mail.deliver" }

// Send renders m now and stores it, with a delivery job, in tx.
func (m *Module) Send(ctx context.Context, tx *store.Tx, msg kernel.Mail) error {
	if tx == nil {
		return errors.New("mail: Send needs a transaction")
	}
	if len(msg.To) == 0 {
		return fmt.Errorf("mail %s: no recipient", msg.Template)
	}
	for _, to := range msg.To {
		if _, err := netmail.ParseAddress(to); err != nil {
			return fmt.Errorf("mail %s: recipient %q: %w", msg.Template, to, err)
		}
	}
	r, err := m.render(msg, m.siteName(ctx, msg.OrgID))
	if err != nil {
		return err
	}
	to, _ := json.Marshal(msg.To)
	var id int64
	err = tx.QueryRowContext(ctx, `INSERT INTO mail_messages (org_id, template, lang, recipients, subject, text_body, html_body, status, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		msg.OrgID, msg.Template, r.Lang, string(to), r.Subject, r.Text, r.HTML, StatusQueued, m.now().UTC()).Scan(&id)
	if err != nil {
		return fmt.Errorf("mail: store: %w", err)
	}
	for _, a := range msg.Attachments {
		if a.Name == "" {
			return fmt.Errorf("mail %s: attachment without a name", msg.Template)
		}
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO mail_attachments (mail_id, name, content_type, data) VALUES (?, ?, ?, ?)",
			id, a.Name, ct, a.Data); err != nil {
			return fmt.Errorf("mail: store attachment: %w", err)
		}
	}
	opts := &river.InsertOpts{}
	if msg.OrgID != 0 {
		opts.Metadata = jobs.OrgMetadata(msg.OrgID)
	}
	return m.jobs.Enqueue(ctx, tx, DeliverArgs{MailID: id}, opts)
}

// Message is a stored mail.
type Message struct {
	ID          int64
	OrgID       int64
	Template    string
	Lang        string
	To          []string
	Subject     string
	Text        string
	HTML        string
	Status      string
	Attempts    int
	LastError   string
	CreatedAt   time.Time
	SentAt      *time.Time
	Attachments []AttachmentInfo
}

// AttachmentInfo describes a stored attachment (without its data).
type AttachmentInfo struct {
	ID          int64
	Name        string
	ContentType string
	Size        int
}

// Get returns a stored mail with the list of its attachments.
func (m *Module) Get(ctx context.Context, q store.Querier, id int64) (*Message, error) {
	msg := &Message{}
	var to string
	var sent sql.NullTime
	err := q.QueryRowContext(ctx, `SELECT id, org_id, template, lang, recipients, subject, text_body, html_body, status,
		attempts, last_error, created_at, sent_at FROM mail_messages WHERE id = ?`, id).Scan(
		&msg.ID, &msg.OrgID, &msg.Template, &msg.Lang, &to, &msg.Subject, &msg.Text, &msg.HTML, &msg.Status,
		&msg.Attempts, &msg.LastError, &msg.CreatedAt, &sent)
	if err != nil {
		return nil, store.NotFound(err, fmt.Sprintf("mail %d", id))
	}
	if sent.Valid {
		msg.SentAt = &sent.Time
	}
	if err := json.Unmarshal([]byte(to), &msg.To); err != nil {
		return nil, fmt.Errorf("mail %d: recipients: %w", id, err)
	}
	rows, err := q.QueryContext(ctx, "SELECT id, name, content_type, LENGTH(data) FROM mail_attachments WHERE mail_id = ? ORDER BY id", id)
	if err != nil {
		return nil, fmt.Errorf("mail %d: attachments: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var a AttachmentInfo
		if err := rows.Scan(&a.ID, &a.Name, &a.ContentType, &a.Size); err != nil {
			return nil, err
		}
		msg.Attachments = append(msg.Attachments, a)
	}
	return msg, rows.Err()
}

// attachments loads the attachments of a mail with their data, for delivery.
func (m *Module) attachments(ctx context.Context, id int64) ([]kernel.Attachment, error) {
	rows, err := m.db.Read().QueryContext(ctx, "SELECT name, content_type, data FROM mail_attachments WHERE mail_id = ? ORDER BY id", id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []kernel.Attachment
	for rows.Next() {
		var a kernel.Attachment
		if err := rows.Scan(&a.Name, &a.ContentType, &a.Data); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
