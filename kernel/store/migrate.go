package store

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Migrations of one module: fsys holds sqlite/ and postgres/ folders of goose SQL files.
// Each module records its versions in its own table, parvis_migrations_<module>; on
// PostgreSQL an advisory session lock makes nodes that start together apply them once.
func provider(db *DB, module string, fsys fs.FS, log *slog.Logger, locked bool) (*goose.Provider, error) {
	sub, err := fs.Sub(fsys, string(db.Dialect))
	if err != nil {
		return nil, fmt.Errorf("migrations of %s: %w", module, err)
	}
	dialect := goose.DialectSQLite3
	opts := []goose.ProviderOption{
		goose.WithTableName("parvis_migrations_" + strings.ReplaceAll(module, ".", "_")),
		goose.WithDisableGlobalRegistry(true),
	}
	if log != nil {
		opts = append(opts, goose.WithSlog(log))
	}
	if db.Dialect == Postgres {
		dialect = goose.DialectPostgres
	}
	if db.Dialect == Postgres && locked {
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, db.W, sub, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations of %s: %w", module, err)
	}
	return p, nil
}

// Migrate applies the pending migrations of module and returns how many ran.
func Migrate(ctx context.Context, db *DB, module string, fsys fs.FS, log *slog.Logger) (int, error) {
	p, err := provider(db, module, fsys, log, true)
	if err != nil {
		return 0, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return len(res), fmt.Errorf("migrating %s: %w", module, err)
	}
	return len(res), nil
}

// Pending returns how many migrations of module are not applied yet.
func Pending(ctx context.Context, db *DB, module string, fsys fs.FS) (int, error) {
	// Reading the status takes no lock: /readyz must answer at once, even while another
	// node (or another test schema on the same server) holds the migration lock.
	p, err := provider(db, module, fsys, nil, false)
	if err != nil {
		return 0, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("migration status of %s: %w", module, err)
	}
	n := 0
	for _, s := range st {
		if s.State == goose.StatePending {
			n++
		}
	}
	return n, nil
}
