// Package config reads Parvis's settings from flags and PARVIS_* environment variables
// (flags win). Every setting is listed once in Settings, which also feeds the configuration
// reference in the README (`parvis help config`). An unknown PARVIS_* variable or flag is an
// error naming it, so a typo never silently falls back to a default.
package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is the whole configuration, passed explicitly to whatever needs it.
type Config struct {
	Listen     string
	Database   string
	DataDir    string
	BaseURL    string
	SecretKey  string
	SMTP       string // smtp://user:pass@host:port?tls=starttls|tls|none ; "" = outbox only
	MailFrom   string
	TimeZone   string
	Location   *time.Location
	Lang       string
	LogLevel   string
	LogFormat  string
	BodyLimit  int64
	TrustProxy bool
	GCHeadroom uint64 // bytes; 0: Go's default collector pacing
	Demo       bool
	Suite      string
}

// Setting is one configuration entry.
type Setting struct {
	Flag, Env, Default, Help string
	set                      func(c *Config, v string) error
}

// Settings lists every setting in display order.
var Settings = []Setting{
	{"listen", "PARVIS_LISTEN", "127.0.0.1:8080", "address and port to listen on", func(c *Config, v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("must be host:port, as in 127.0.0.1:8080")
		}
		c.Listen = v
		return nil
	}},
	{"data", "PARVIS_DATA", "./data", "data folder (SQLite database, uploads, generated secret)", func(c *Config, v string) error {
		c.DataDir = v
		return nil
	}},
	{"database", "PARVIS_DATABASE", "sqlite:<data>/parvis.db", "sqlite:PATH or postgres://user@host:5432/db", func(c *Config, v string) error {
		if !strings.HasPrefix(v, "sqlite:") && !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
			return fmt.Errorf("must start with sqlite: or postgres://")
		}
		c.Database = v
		return nil
	}},
	{"base-url", "PARVIS_BASE_URL", "http://<listen>", "public URL of this instance, used in links sent by mail", func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("must be an absolute http(s) URL, as in https://mairie.example.org")
		}
		c.BaseURL = strings.TrimRight(v, "/")
		return nil
	}},
	{"secret-key", "PARVIS_SECRET_KEY", "generated into <data>/secret.key", "secret for signing tokens (at least 32 characters); the same on every node", func(c *Config, v string) error {
		if len(v) < 32 {
			return fmt.Errorf("must be at least 32 characters long")
		}
		c.SecretKey = v
		return nil
	}},
	{"smtp", "PARVIS_SMTP", "", "smtp://user:password@host:587?tls=starttls (tls is starttls, tls or none); empty: mails stay in the back-office outbox", func(c *Config, v string) error {
		if v == "" {
			c.SMTP = ""
			return nil
		}
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "smtp" || u.Hostname() == "" {
			return fmt.Errorf("must look like smtp://user:password@host:587?tls=starttls")
		}
		switch u.Query().Get("tls") {
		case "", "starttls", "tls", "none":
		default:
			return fmt.Errorf("tls= must be starttls, tls or none")
		}
		c.SMTP = v
		return nil
	}},
	{"mail-from", "PARVIS_MAIL_FROM", "Parvis <noreply@localhost>", "sender address of outgoing mail", func(c *Config, v string) error {
		if !strings.Contains(v, "@") {
			return fmt.Errorf("must be an email address")
		}
		c.MailFrom = v
		return nil
	}},
	{"timezone", "PARVIS_TIMEZONE", "Europe/Paris", "time zone for dates shown and schedules", func(c *Config, v string) error {
		loc, err := time.LoadLocation(v)
		if err != nil {
			return fmt.Errorf("unknown time zone")
		}
		c.TimeZone, c.Location = v, loc
		return nil
	}},
	{"lang", "PARVIS_LANG", "fr", "default language (fr or en)", func(c *Config, v string) error {
		if v != "fr" && v != "en" {
			return fmt.Errorf("must be fr or en")
		}
		c.Lang = v
		return nil
	}},
	{"log-level", "PARVIS_LOG_LEVEL", "info", "debug, info, warn or error", func(c *Config, v string) error {
		switch v {
		case "debug", "info", "warn", "error":
			c.LogLevel = v
			return nil
		}
		return fmt.Errorf("must be debug, info, warn or error")
	}},
	{"log-format", "PARVIS_LOG_FORMAT", "text", "text or json", func(c *Config, v string) error {
		if v != "text" && v != "json" {
			return fmt.Errorf("must be text or json")
		}
		c.LogFormat = v
		return nil
	}},
	{"body-limit", "PARVIS_BODY_LIMIT", "10485760", "largest request body accepted, in bytes", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1024 {
			return fmt.Errorf("must be a number of bytes, at least 1024")
		}
		c.BodyLimit = n
		return nil
	}},
	{"trust-proxy", "PARVIS_TRUST_PROXY", "false", "trust X-Forwarded-For/-Proto from a reverse proxy in front", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("must be true or false")
		}
		c.TrustProxy = b
		return nil
	}},
	{"gc-headroom", "PARVIS_GC_HEADROOM", strconv.Itoa(DefaultGCHeadroom >> 20), "memory in MiB the heap may grow above live data between collections (fewer collections under load, see bench/README.md); 0: Go's default; GOGC or GOMEMLIMIT in the environment win", func(c *Config, v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > 1<<20 {
			return fmt.Errorf("must be a number of MiB, such as 128 (0 turns it off)")
		}
		c.GCHeadroom = n << 20
		return nil
	}},
	{"demo", "PARVIS_DEMO", "true", "on an empty database, create demo content", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("must be true or false")
		}
		c.Demo = b
		return nil
	}},
	{"suite", "PARVIS_SUITE", "", "suite to apply at start (built-in name such as demo or rendez-vous, or uploaded); applying again changes nothing", func(c *Config, v string) error {
		for _, r := range v {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("must be a suite name, as in demo or rendez-vous (see parvis suite list)")
			}
		}
		c.Suite = v
		return nil
	}},
}

// DefaultGCHeadroom is PARVIS_GC_HEADROOM's default, in bytes (benchmarks run in a test
// process pace its collector as `parvis serve` would).
const DefaultGCHeadroom = 128 << 20

// ErrUsage marks configuration errors; the CLI exits with status 2 on them.
var ErrUsage = errors.New("configuration error")

// Load builds a Config from environ (KEY=VALUE strings) and args (flags after the command).
// It returns the remaining positional arguments.
func Load(environ []string, args []string, stderr io.Writer) (*Config, []string, error) {
	c := &Config{}
	byEnv := map[string]*Setting{}
	for i := range Settings {
		byEnv[Settings[i].Env] = &Settings[i]
	}
	vals := map[*Setting]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "PARVIS_") || strings.HasPrefix(k, "PARVIS_TEST_") {
			continue
		}
		s, ok := byEnv[k]
		if !ok {
			return nil, nil, fmt.Errorf("%w: unknown setting %s (see `parvis help config`)", ErrUsage, k)
		}
		vals[s] = v
	}
	fs := flag.NewFlagSet("parvis", flag.ContinueOnError)
	fs.SetOutput(stderr)
	for i := range Settings {
		s := &Settings[i]
		fs.Func(s.Flag, s.Help+" (env "+s.Env+")", func(v string) error { vals[s] = v; return nil })
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	for i := range Settings {
		s := &Settings[i]
		v, ok := vals[s]
		if !ok {
			if strings.Contains(s.Default, "<") || s.Default == "" {
				continue // derived below
			}
			v = s.Default
		}
		if err := s.set(c, v); err != nil {
			src := s.Env
			if _, fromFlag := flagSet(fs, s.Flag); fromFlag {
				src = "--" + s.Flag
			}
			return nil, nil, fmt.Errorf("%w: %s=%q: %v", ErrUsage, src, v, err)
		}
	}
	if c.Database == "" {
		c.Database = "sqlite:" + filepath.Join(c.DataDir, "parvis.db")
	}
	if c.BaseURL == "" {
		c.BaseURL = "http://" + c.Listen
	}
	return c, fs.Args(), nil
}

func flagSet(fs *flag.FlagSet, name string) (string, bool) {
	found := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			found = true
		}
	})
	return name, found
}

// EnsureSecret fills SecretKey from <data>/secret.key, creating it with 256 random bits the
// first time. Several nodes must share PARVIS_SECRET_KEY instead.
func (c *Config) EnsureSecret() error {
	if c.SecretKey != "" {
		return nil
	}
	p := filepath.Join(c.DataDir, "secret.key")
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		c.SecretKey = strings.TrimSpace(string(b))
		return nil
	}
	if err := os.MkdirAll(c.DataDir, 0o750); err != nil {
		return fmt.Errorf("data folder %s: %w", c.DataDir, err)
	}
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return err
	}
	c.SecretKey = hex.EncodeToString(k[:])
	return os.WriteFile(p, []byte(c.SecretKey+"\n"), 0o600)
}

// Secure reports whether the base URL is HTTPS (cookies get the Secure flag, HSTS is sent).
func (c *Config) Secure() bool { return strings.HasPrefix(c.BaseURL, "https://") }

// Reference writes the configuration reference as a Markdown table.
func Reference(w io.Writer) {
	fmt.Fprintln(w, "| Environment | Flag | Default | Meaning |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, s := range Settings {
		def := "`" + s.Default + "`"
		if s.Default == "" {
			def = "(none)"
		}
		fmt.Fprintf(w, "| `%s` | `--%s` | %s | %s |\n", s.Env, s.Flag, def, s.Help)
	}
}
