// Package cli is the parvis command line: serve, migrate, modules, version, backup, and the
// commands modules contribute (admin create, audit verify…). Configuration errors exit with
// status 2 and a message naming the setting; other failures exit 1 with a one-line reason.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/config"
	"parvis.org/parvis/kernel/server"
	"parvis.org/parvis/kernel/store"
)

// Version is set at build time with -ldflags "-X parvis.org/parvis/kernel/cli.Version=…".
var Version = "0.1.0-dev"

const usage = `Usage: parvis COMMAND [--flags] [ARGS]

Commands:
  serve              run the server (SQLite in ./data by default)
  migrate            apply pending database migrations and exit
  modules            list the compiled-in modules and their versions
  version            print the version
  backup DEST        copy the SQLite database to DEST (online); on PostgreSQL, print the pg_dump to run
  help config        list every setting (flags and PARVIS_* variables)
%s
Every setting is a flag (before the arguments) or a PARVIS_* environment variable.
`

// Main runs the CLI and returns the exit status.
func Main(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, usage, "")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, args, environ, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, config.ErrUsage):
		fmt.Fprintln(stderr, "parvis:", err)
		return 2
	case errors.Is(err, store.ErrUnreachable):
		fmt.Fprintln(stderr, "parvis: cannot reach the database:", err)
		fmt.Fprintln(stderr, "        check PARVIS_DATABASE, and that the server is running and accepts connections")
		return 1
	default:
		fmt.Fprintln(stderr, "parvis:", err)
		return 1
	}
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "parvis", versionString())
		return nil
	case "help", "--help", "-h":
		if len(rest) > 0 && rest[0] == "config" {
			config.Reference(stdout)
			return nil
		}
		fmt.Fprintf(stdout, usage, moduleCommandsUsage())
		return nil
	case "modules":
		for _, i := range kernel.Registered() {
			kind := "module"
			if i.Builtin {
				kind = "kernel"
			}
			fmt.Fprintf(stdout, "%-24s %-12s %s\n", i.ID, i.Version, kind)
		}
		return nil
	}
	cfg, pos, err := config.Load(environ, rest, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	switch cmd {
	case "serve":
		if len(pos) > 0 {
			return fmt.Errorf("%w: serve takes no arguments (got %q)", config.ErrUsage, pos[0])
		}
		return serve(ctx, cfg, log, stdout)
	case "migrate":
		s, err := server.Build(ctx, cfg, log, server.Options{NoStart: true})
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, "migrations are up to date on", s.DB.URL)
		return s.Close(ctx)
	case "backup":
		if len(pos) != 1 {
			return fmt.Errorf("%w: usage: parvis backup DEST", config.ErrUsage)
		}
		return backup(ctx, cfg, pos[0], stdout)
	}
	// Commands contributed by modules, matched on their words; offline ones (doctor) first,
	// without opening anything.
	words := append([]string{cmd}, pos...)
	for _, i := range kernel.Registered() {
		if c, ok := i.New().(kernel.Commander); ok {
			for _, mc := range c.Commands() {
				name := strings.Fields(mc.Name)
				if mc.Offline != nil && len(words) >= len(name) && strings.Join(words[:len(name)], " ") == mc.Name {
					return mc.Offline(ctx, cfg, words[len(name):], stdout)
				}
			}
		}
	}
	s, err := server.Build(ctx, cfg, log, server.Options{NoStart: true})
	if err != nil {
		return err
	}
	defer s.Close(context.Background())
	for _, in := range s.Modules {
		c, ok := in.Module.(kernel.Commander)
		if !ok {
			continue
		}
		for _, mc := range c.Commands() {
			name := strings.Fields(mc.Name)
			if len(words) >= len(name) && strings.Join(words[:len(name)], " ") == mc.Name {
				return mc.Run(ctx, words[len(name):], stdout)
			}
		}
	}
	return fmt.Errorf("%w: unknown command %q (see parvis help)", config.ErrUsage, strings.Join(words, " "))
}

func moduleCommandsUsage() string {
	// Module commands are known only once modules are constructed; they do not need the DB.
	var lines []string
	for _, i := range kernel.Registered() {
		if c, ok := i.New().(kernel.Commander); ok {
			for _, mc := range c.Commands() {
				lines = append(lines, fmt.Sprintf("  %-18s %s", strings.TrimSpace(mc.Name+" "+mc.Args), mc.Help))
			}
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, stdout io.Writer) error {
	start := time.Now()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", cfg.Listen, err)
	}
	s, err := server.Build(ctx, cfg, log, server.Options{})
	if err != nil {
		ln.Close()
		return err
	}
	if err := s.Start(ctx); err != nil {
		ln.Close()
		s.Close(context.Background())
		return err
	}
	defer server.TuneGC(cfg.GCHeadroom)()
	fmt.Fprintf(stdout, "Parvis %s ready in %s on %s (database %s)\n", Version, time.Since(start).Round(time.Millisecond), cfg.BaseURL, s.DB.URL)
	fmt.Fprintf(stdout, "  public site:  %s/\n  back office:  %s/admin/\n", cfg.BaseURL, cfg.BaseURL)
	return s.Serve(ctx, ln)
}

func backup(ctx context.Context, cfg *config.Config, dest string, stdout io.Writer) error {
	if cfg.Database != "" && !strings.HasPrefix(cfg.Database, "sqlite:") {
		fmt.Fprintf(stdout, "PostgreSQL: run\n  pg_dump --format=custom --file=%s '%s'\nand restore with\n  pg_restore --clean --if-exists --dbname='%s' %s\n",
			dest, store.Redact(cfg.Database), store.Redact(cfg.Database), dest)
		return nil
	}
	if _, err := os.Stat(dest); err == nil {
		return fmt.Errorf("%w: %s already exists; choose a new file", config.ErrUsage, dest)
	}
	db, err := store.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer db.Close()
	abs, err := filepath.Abs(dest)
	if err != nil {
		return err
	}
	// VACUUM INTO writes a consistent, compacted copy while the server keeps running.
	if _, err := db.W.ExecContext(ctx, "VACUUM INTO ?", abs); err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	fmt.Fprintln(stdout, "backup written to", abs)
	return nil
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func versionString() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		v += " (" + bi.GoVersion + ")"
	}
	return v
}
