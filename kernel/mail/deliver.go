package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"
	gomail "github.com/wneessen/go-mail"

	"parvis.org/parvis/kernel"
)

// smtpConfig is PARVIS_SMTP, parsed: smtp://user:pass@host:port?tls=starttls|tls|none.
type smtpConfig struct {
	host       string
	port       int
	user, pass string
	tls        string
	from       string
}

func parseSMTP(raw, from string) (*smtpConfig, error) {
	if raw == "" {
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "smtp" || u.Hostname() == "" {
		return nil, fmt.Errorf("PARVIS_SMTP: must look like smtp://user:password@host:587?tls=starttls")
	}
	c := &smtpConfig{host: u.Hostname(), tls: u.Query().Get("tls"), from: from}
	if c.tls == "" {
		c.tls = "starttls"
	}
	switch c.tls {
	case "starttls", "tls", "none":
	default:
		return nil, fmt.Errorf("PARVIS_SMTP: tls= must be starttls, tls or none")
	}
	c.port = map[string]int{"starttls": 587, "tls": 465, "none": 25}[c.tls]
	if p := u.Port(); p != "" {
		if c.port, err = strconv.Atoi(p); err != nil || c.port <= 0 || c.port > 65535 {
			return nil, fmt.Errorf("PARVIS_SMTP: bad port %q", p)
		}
	}
	if u.User != nil {
		c.user = u.User.Username()
		c.pass, _ = u.User.Password()
	}
	if c.from == "" {
		c.from = "Parvis <noreply@localhost>"
	}
	if _, err := netmail.ParseAddress(c.from); err != nil {
		return nil, fmt.Errorf("PARVIS_MAIL_FROM %q: %w", c.from, err)
	}
	return c, nil
}

func (c *smtpConfig) client() (*gomail.Client, error) {
	opts := []gomail.Option{gomail.WithPort(c.port), gomail.WithTimeout(30 * time.Second)}
	switch c.tls {
	case "tls":
		opts = append(opts, gomail.WithSSL())
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if c.user != "" {
		opts = append(opts, gomail.WithUsername(c.user), gomail.WithPassword(c.pass))
		if c.tls == "none" {
			// Chosen explicitly (a relay on the local network): a challenge mechanism if the
			// server has one, else PLAIN or LOGIN in clear.
			opts = append(opts, gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1,
				gomail.SMTPAuthCramMD5, gomail.SMTPAuthPlainNoEnc, gomail.SMTPAuthLoginNoEnc))
		} else {
			// Over TLS: the strongest mechanism the server offers.
			opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover))
		}
	}
	return gomail.NewClient(c.host, opts...)
}

// worker delivers one stored mail.
type worker struct {
	river.WorkerDefaults[DeliverArgs]
	m *Module
}

// Timeout bounds one delivery attempt.
func (w *worker) Timeout(*river.Job[DeliverArgs]) time.Duration { return 2 * time.Minute }

// Work sends the mail unless it was already sent (a re-run after a crash between the SMTP
// answer and the job's completion sends nothing twice), records the outcome, and returns
// the SMTP error so that River retries with backoff.
func (w *worker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	return w.m.deliver(ctx, job.Args.MailID, job.Attempt >= job.MaxAttempts)
}

func (m *Module) deliver(ctx context.Context, id int64, last bool) error {
	msg, err := m.Get(ctx, m.db.Read(), id)
	if err != nil {
		return fmt.Errorf("mail %d: %w", id, err)
	}
	if msg.Status == StatusSent || msg.Status == StatusOutbox {
		return nil
	}
	if m.smtp == nil {
		_, err := m.db.Write().ExecContext(ctx, "UPDATE mail_messages SET status = ? WHERE id = ? AND status <> ?", StatusOutbox, id, StatusSent)
		return err
	}
	sendErr := m.sendSMTP(ctx, msg)
	if sendErr == nil {
		_, err := m.db.Write().ExecContext(ctx, "UPDATE mail_messages SET status = ?, attempts = attempts + 1, last_error = '', sent_at = ? WHERE id = ?",
			StatusSent, m.now().UTC(), id)
		if err != nil {
			// The mail left: do not let River send it again because we could not note it.
			m.log.ErrorContext(ctx, "mail sent but not recorded", "mail", id, "err", err)
		}
		return nil
	}
	status := StatusQueued
	if last {
		status = StatusFailed
	}
	if _, err := m.db.Write().ExecContext(ctx, "UPDATE mail_messages SET status = ?, attempts = attempts + 1, last_error = ? WHERE id = ?",
		status, truncate(sendErr.Error(), 1000), id); err != nil {
		m.log.ErrorContext(ctx, "recording a mail failure", "mail", id, "err", err)
	}
	m.log.WarnContext(ctx, "mail delivery failed", "mail", id, "last", last, "err", sendErr)
	return sendErr
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// message builds the MIME message: multipart/alternative (text, HTML), plus attachments.
func (m *Module) message(ctx context.Context, msg *Message) (*gomail.Msg, error) {
	g := gomail.NewMsg()
	if err := g.From(m.smtp.from); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if err := g.To(msg.To...); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	g.Subject(msg.Subject)
	g.SetDateWithValue(msg.CreatedAt)
	// A stable Message-ID lets receiving servers drop a duplicate if a retry resends it.
	g.SetMessageIDWithValue(fmt.Sprintf("parvis.%d.%d@%s", msg.ID, msg.CreatedAt.Unix(), domainOf(m.smtp.from)))
	g.SetBodyString(gomail.TypeTextPlain, msg.Text)
	g.AddAlternativeString(gomail.TypeTextHTML, msg.HTML)
	atts, err := m.attachments(ctx, msg.ID)
	if err != nil {
		return nil, fmt.Errorf("attachments: %w", err)
	}
	for _, a := range atts {
		if err := g.AttachReader(a.Name, bytes.NewReader(a.Data), gomail.WithFileContentType(gomail.ContentType(a.ContentType))); err != nil {
			return nil, fmt.Errorf("attachment %s: %w", a.Name, err)
		}
	}
	return g, nil
}

func domainOf(addr string) string {
	if a, err := netmail.ParseAddress(addr); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok {
			return d
		}
	}
	return "localhost"
}

func (m *Module) sendSMTP(ctx context.Context, msg *Message) error {
	g, err := m.message(ctx, msg)
	if err != nil {
		return err
	}
	c, err := m.smtp.client()
	if err != nil {
		return err
	}
	if err := c.DialAndSendWithContext(ctx, g); err != nil {
		var ne net.Error
		if errors.As(err, &ne) {
			return fmt.Errorf("SMTP server %s:%d unreachable: %w", m.smtp.host, m.smtp.port, err)
		}
		return fmt.Errorf("SMTP %s:%d: %w", m.smtp.host, m.smtp.port, err)
	}
	return nil
}

var _ kernel.Mailer = (*Module)(nil)
