package suites

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"parvis.org/parvis/kernel/config"
	"parvis.org/parvis/kernel/server"
	"parvis.org/parvis/kernel/store"
)

// doctorTimeout bounds each network check, so doctor answers quickly on a dead host.
const doctorTimeout = 5 * time.Second

type report struct {
	out  io.Writer
	bad  int
	warn int
}

func (r *report) ok(what string, args ...any) {
	fmt.Fprintf(r.out, "ok    %s\n", fmt.Sprintf(what, args...))
}
func (r *report) fail(what, fix string) {
	r.bad++
	fmt.Fprintf(r.out, "FAIL  %s\n      fix: %s\n", what, fix)
}
func (r *report) warning(what, fix string) {
	r.warn++
	fmt.Fprintf(r.out, "warn  %s\n      %s\n", what, fix)
}

// Doctor checks a configuration and the instance it describes: the data folder, the
// secret key, the database and its migrations, the SMTP server, the base URL and whether
// an instance answers there. It prints what to fix and fails when something is wrong.
func Doctor(ctx context.Context, cfg *config.Config, out io.Writer) error {
	r := &report{out: out}
	pg := !strings.HasPrefix(cfg.Database, "sqlite:")
	fmt.Fprintf(out, "Parvis doctor — database %s, base URL %s\n", store.Redact(cfg.Database), cfg.BaseURL)

	// Data folder: uploads and, on SQLite, the database live there.
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		r.fail("data folder "+cfg.DataDir+" cannot be created: "+err.Error(), "set PARVIS_DATA to a folder the parvis user can write")
	} else if f, err := os.CreateTemp(cfg.DataDir, ".doctor-*"); err != nil {
		r.fail("data folder "+cfg.DataDir+" is not writable: "+err.Error(), "give the parvis user write access to it (chown parvis "+cfg.DataDir+")")
	} else {
		f.Close()
		os.Remove(f.Name())
		r.ok("data folder %s is writable", cfg.DataDir)
	}

	// Secret key: several nodes must share one; a generated file is per machine.
	switch {
	case cfg.SecretKey != "":
		r.ok("secret key set explicitly")
	case pg:
		r.fail("PARVIS_SECRET_KEY is not set on PostgreSQL: each node would generate its own and sign-ins would fail across nodes",
			"set the same PARVIS_SECRET_KEY (at least 32 random characters: openssl rand -hex 32) on every node")
	default:
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "secret.key")); err == nil {
			r.ok("secret key kept in %s", filepath.Join(cfg.DataDir, "secret.key"))
		} else {
			r.ok("secret key will be generated into %s at first start", filepath.Join(cfg.DataDir, "secret.key"))
		}
	}

	// Database and migrations.
	dctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	db, err := store.Open(dctx, cfg.Database)
	cancel()
	if err != nil {
		r.fail("database unreachable: "+err.Error(), "check PARVIS_DATABASE, that the server runs and accepts connections from this host")
	} else {
		db.Close()
		r.ok("database reachable")
		c := *cfg
		if c.SecretKey == "" {
			c.SecretKey = strings.Repeat("d", 32) // doctor must not create secret.key
		}
		s, err := server.Build(ctx, &c, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{NoStart: true, NoMigrate: true})
		if err != nil {
			r.fail("modules cannot start on this database: "+err.Error(), "read the message above; run parvis migrate")
		} else {
			n, err := s.Pending(ctx)
			switch {
			case err != nil:
				r.fail("cannot read the migration state: "+err.Error(), "run parvis migrate")
			case n > 0:
				r.fail(fmt.Sprintf("%d migrations are not applied", n), "run parvis migrate (or start parvis: migrations run at start, once even with several nodes)")
			default:
				r.ok("migrations are up to date")
			}
			s.Close(context.Background())
		}
	}

	// SMTP.
	if cfg.SMTP == "" {
		r.warning("no SMTP server: mails stay in the back-office outbox", "set PARVIS_SMTP=smtp://user:password@host:587?tls=starttls to send them")
	} else if err := checkSMTP(ctx, cfg.SMTP); err != nil {
		r.fail("SMTP server does not answer: "+err.Error(), "check PARVIS_SMTP (host, port, tls=starttls|tls|none) and that this host may connect to it")
	} else {
		r.ok("SMTP server answers")
	}

	// Base URL and the running instance.
	u, _ := url.Parse(cfg.BaseURL)
	host := u.Hostname()
	if u.Scheme != "https" && !isLocal(host) {
		r.warning("base URL "+cfg.BaseURL+" is not HTTPS", "put a reverse proxy with HTTPS in front (see docs/deploy.md) and set PARVIS_BASE_URL=https://…")
	}
	if strings.Contains(cfg.BaseURL, "127.0.0.1") || strings.Contains(cfg.BaseURL, "localhost") {
		if !isLocal(hostOf(cfg.Listen)) {
			r.warning("base URL "+cfg.BaseURL+" is local while parvis listens on "+cfg.Listen, "set PARVIS_BASE_URL to the public address: links in mails use it")
		}
	}
	if ip := net.ParseIP(host); ip == nil {
		rctx, cancel := context.WithTimeout(ctx, doctorTimeout)
		_, err := net.DefaultResolver.LookupHost(rctx, host)
		cancel()
		if err != nil {
			r.fail("host "+host+" of the base URL does not resolve: "+err.Error(), "fix PARVIS_BASE_URL or the DNS record of "+host)
		}
	}
	client := &http.Client{Timeout: doctorTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(cfg.BaseURL + "/healthz")
	if err != nil {
		r.warning("no instance answers at "+cfg.BaseURL+"/healthz: "+shortErr(err), "start parvis (systemctl start parvis) or check the reverse proxy; the other checks still hold")
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			r.fail(fmt.Sprintf("%s/healthz answers %d", cfg.BaseURL, resp.StatusCode), "the address reaches something else than Parvis: check the reverse proxy's upstream")
		} else {
			r.ok("instance answers at %s", cfg.BaseURL)
			if resp, err := client.Get(cfg.BaseURL + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					r.fail(fmt.Sprintf("%s/readyz answers %d: the instance is not ready", cfg.BaseURL, resp.StatusCode), "look at its log (journalctl -u parvis); run parvis migrate")
				} else {
					r.ok("instance is ready (database and migrations)")
				}
			}
		}
	}

	if r.bad > 0 {
		fmt.Fprintf(out, "%d problem(s) to fix, %d warning(s)\n", r.bad, r.warn)
		return fmt.Errorf("doctor found %d problem(s)", r.bad)
	}
	fmt.Fprintf(out, "everything needed works (%d warning(s))\n", r.warn)
	return nil
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i > 0 {
		return s[i+2:]
	}
	return s
}

func hostOf(hostport string) string { h, _, _ := net.SplitHostPort(hostport); return h }

func isLocal(host string) bool {
	if host == "localhost" || host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkSMTP connects, reads the greeting and says EHLO, then quits.
func checkSMTP(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	mode := u.Query().Get("tls")
	port := u.Port()
	if port == "" {
		port = map[string]string{"tls": "465", "none": "25"}[mode]
		if port == "" {
			port = "587"
		}
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	d := &net.Dialer{Timeout: doctorTimeout}
	var conn net.Conn
	if mode == "tls" {
		conn, err = tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: u.Hostname()})
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Now().Add(doctorTimeout))
	c, err := smtp.NewClient(conn, u.Hostname())
	if err != nil {
		conn.Close()
		return fmt.Errorf("greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello("parvis-doctor"); err != nil {
		return err
	}
	// Extension makes the client send EHLO and read the answer.
	if ok, _ := c.Extension("STARTTLS"); !ok && mode == "starttls" || mode == "" && !ok {
		return fmt.Errorf("the server does not offer STARTTLS (use tls=tls or tls=none)")
	}
	return c.Quit()
}
