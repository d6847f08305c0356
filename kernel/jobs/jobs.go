// Package jobs is the kernel's durable job queue, built on River. A job is inserted in the
// caller's transaction (kernel.Jobs.Enqueue), so it is committed together with the change
// that causes it or not at all; workers added by modules with river.AddWorker run it after
// commit, with retries and backoff. The back-office page /admin/jobs lists pending,
// running, retryable and failed jobs with a retry button.
//
// One River driver type serves both engines: River's database/sql drivers work on the
// store's own *sql.DB, so the *sql.Tx of a store.Tx is River's transaction type too.
// SQLite uses riversqlite on the single-connection writer pool (River's writes then queue
// behind the application's in Go instead of failing with SQLITE_BUSY). PostgreSQL uses
// riverdatabasesql on the store's pool, with a small pgx pool from the same URL used only
// for LISTEN (River's NewWithPgxListener), so jobs start as soon as they are committed.
package jobs

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

func init() { kernel.Register(&Module{}) }

//go:embed templates locales
var files embed.FS

// ID is the module ID.
const ID = "kernel.jobs"

// PermManage lets an agent see jobs and retry failed ones.
const PermManage = "kernel.jobs.manage"

// MaxAttempts caps retries: River's backoff is attempt⁴ seconds, so 12 attempts spread
// over about 17 hours before a job is discarded (and shown as failed).
const MaxAttempts = 12

// Module is the job queue. The exported fields tune it; tests set them.
type Module struct {
	// Workers is the number of jobs worked at once on the default queue (default 10).
	Workers int
	// RetryPolicy replaces River's default backoff (tests use a short one).
	RetryPolicy river.ClientRetryPolicy
	// PollInterval is how often River looks for jobs without a notification (default 1 s).
	PollInterval time.Duration

	db      *store.DB
	dsn     string // PARVIS_DATABASE, for the LISTEN pool
	log     *slog.Logger
	views   *web.Views
	workers *river.Workers
	driver  riverdriver.Driver[*sql.Tx]
	ins     *river.Client[*sql.Tx] // insert-only: usable from Provision on (CLI commands too)
	run     *river.Client[*sql.Tx] // works jobs, between Start and Stop
	pool    *pgxpool.Pool          // PostgreSQL LISTEN connections
}

var (
	_ kernel.Module      = (*Module)(nil)
	_ kernel.Provisioner = (*Module)(nil)
	_ kernel.Declarer    = (*Module)(nil)
	_ kernel.Migrator    = (*Module)(nil)
	_ kernel.Starter     = (*Module)(nil)
	_ kernel.Stopper     = (*Module)(nil)
	_ kernel.Jobs        = (*Module)(nil)
)

// Info implements kernel.Module.
func (*Module) Info() kernel.Info {
	return kernel.Info{ID: ID, Version: "1.0.0", Title: "kernel.jobs.title", Builtin: true, Priority: 10,
		New: func() kernel.Module { return &Module{} }}
}

// Provision builds the insert client and publishes the kernel.Jobs service.
func (m *Module) Provision(ctx context.Context, env *kernel.Env) error {
	m.db, m.log, m.views, m.workers, m.dsn = env.DB, env.Log, env.Views, env.Workers, env.Config.Database
	if m.workers == nil {
		m.workers = river.NewWorkers()
	}
	switch env.DB.Dialect {
	case store.SQLite:
		m.driver = riversqlite.New(env.DB.W)
	case store.Postgres:
		m.driver = riverdatabasesql.New(env.DB.W)
	default:
		return fmt.Errorf("jobs: unsupported database %q", env.DB.Dialect)
	}
	var err error
	// The insert client knows the shared Workers bundle, so inserting a kind that no module
	// works is an error at once rather than a job that waits forever.
	m.ins, err = river.NewClient(m.driver, &river.Config{Logger: m.log, Workers: m.workers, MaxAttempts: MaxAttempts})
	if err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	kernel.Provide[kernel.Jobs](env, m)
	if env.Metrics != nil {
		if err := env.Metrics.Register(newJobCollector(env.DB)); err != nil {
			return fmt.Errorf("jobs: metrics: %w", err)
		}
	}
	return nil
}

// RescueAfter is how long a job may stay running before it is considered abandoned (its
// node died) and retried.
const RescueAfter = 10 * time.Minute

// Enqueue inserts a job in the caller's transaction. A signed-in agent's organisation is
// recorded in the job's metadata (unless opts already carry metadata) so that the jobs page
// shows an organisation's administrators only their own jobs.
func (m *Module) Enqueue(ctx context.Context, tx *store.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	if tx == nil {
		return errors.New("jobs: Enqueue needs a transaction")
	}
	if opts == nil || opts.Metadata == nil {
		if a := kernel.AgentFrom(ctx); a != nil && a.OrgID != 0 {
			o := river.InsertOpts{}
			if opts != nil {
				o = *opts
			}
			o.Metadata = OrgMetadata(a.OrgID)
			opts = &o
		}
	}
	if _, err := m.ins.InsertTx(ctx, tx.Raw, args, opts); err != nil {
		return fmt.Errorf("jobs: enqueue %s: %w", args.Kind(), err)
	}
	return nil
}

// Client is River's client for inserting and inspecting jobs (JobGet, JobList, JobCancel);
// it does not work jobs.
func (m *Module) Client() *river.Client[*sql.Tx] { return m.ins }

// OrgMetadata is the job metadata tying a job to an organisation (a string, so that the
// same SQL comparison works on SQLite and PostgreSQL).
func OrgMetadata(orgID int64) []byte {
	b, _ := json.Marshal(map[string]string{"org_id": strconv.FormatInt(orgID, 10)})
	return b
}

func (m *Module) migrator() (*rivermigrate.Migrator[*sql.Tx], error) {
	return rivermigrate.New(m.driver, &rivermigrate.Config{Logger: m.log})
}

// Migrate applies River's own schema migrations. River's migrator takes no lock, so on
// PostgreSQL nodes that start together would race to create its tables: a session-level
// advisory lock, held on a connection of its own while the migrator works on the pool,
// lets one node migrate and the others then find nothing to do. SQLite needs none (one
// file, one IMMEDIATE writer).
func (m *Module) Migrate(ctx context.Context) (err error) {
	mg, err := m.migrator()
	if err != nil {
		return err
	}
	if m.db.Dialect == store.Postgres {
		unlock, err := m.lockMigrations(ctx)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, unlock()) }()
	}
	res, err := mg.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	if len(res.Versions) > 0 {
		m.log.Info("river migrations applied", "count", len(res.Versions))
	}
	return nil
}

// migrationLock names River's migration lock per schema, so that towns (or tests) sharing
// a PostgreSQL server in separate schemas do not wait for each other.
const migrationLock = `hashtext('parvis.river.migrate.' || current_schema())`

// lockMigrations takes the advisory lock on a dedicated connection (it blocks while another
// node migrates) and returns the function that releases it and gives the connection back.
func (m *Module) lockMigrations(ctx context.Context) (func() error, error) {
	conn, err := m.db.W.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("river migrations: lock connection: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock("+migrationLock+")"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("river migrations: lock: %w", err)
	}
	return func() error {
		defer conn.Close()
		// Released even when ctx is done: the connection goes back to the pool, which keeps
		// its session (and so the lock) open. If unlocking fails, the connection is
		// discarded instead, and closing the session releases the lock.
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock("+migrationLock+")"); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			return fmt.Errorf("river migrations: unlock: %w", err)
		}
		return nil
	}, nil
}

// Pending counts River migrations not yet applied.
func (m *Module) Pending(ctx context.Context) (int, error) {
	mg, err := m.migrator()
	if err != nil {
		return 0, err
	}
	have, err := mg.ExistingVersions(ctx)
	if err != nil {
		return 0, fmt.Errorf("river migrations: %w", err)
	}
	return len(mg.AllVersions()) - len(have), nil
}

// Start creates and starts the client that works jobs, with every module's workers.
func (m *Module) Start(ctx context.Context) error {
	driver := m.driver
	if m.db.Dialect == store.Postgres {
		cfg, err := pgxpool.ParseConfig(m.dsn)
		if err != nil {
			return fmt.Errorf("jobs: %w", err)
		}
		cfg.MinConns, cfg.MaxConns = 0, 2
		m.pool, err = pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return fmt.Errorf("jobs: listener pool: %w", err)
		}
		driver = riverdatabasesql.NewWithPgxListener(m.db.W, m.pool)
	}
	n := m.Workers
	if n <= 0 {
		n = 10
	}
	cfg := &river.Config{
		Logger:            m.log,
		Workers:           m.workers,
		MaxAttempts:       MaxAttempts,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: n}},
		RetryPolicy:       m.RetryPolicy,
		FetchPollInterval: m.PollInterval,
		// Failed jobs stay visible (and retryable) in the back office for a month.
		DiscardedJobRetentionPeriod: 30 * 24 * time.Hour,
		// A job left running by a node that died (SIGKILL, power loss) is retried after
		// this long instead of River's default hour; the longest job timeout (mail
		// delivery, 2 minutes) leaves a wide margin, so a slow job is never run twice.
		RescueStuckJobsAfter: RescueAfter,
	}
	if cfg.FetchPollInterval > 0 && cfg.FetchPollInterval < 100*time.Millisecond {
		cfg.FetchCooldown = cfg.FetchPollInterval
	}
	c, err := river.NewClient(driver, cfg)
	if err != nil {
		m.closePool()
		return fmt.Errorf("jobs: %w", err)
	}
	if err := c.Start(ctx); err != nil {
		m.closePool()
		// River refuses to start with an empty Workers bundle (and offers no way to ask):
		// a binary whose modules define no job has nothing to work.
		if strings.Contains(err.Error(), "at least one Worker") {
			m.log.Info("no job workers registered")
			return nil
		}
		return fmt.Errorf("jobs: start: %w", err)
	}
	m.run = c
	return nil
}

// Stop lets running jobs finish (until ctx ends, then cancels them).
func (m *Module) Stop(ctx context.Context) error {
	var err error
	if m.run != nil {
		if err = m.run.Stop(ctx); err != nil && ctx.Err() != nil {
			err = m.run.StopAndCancel(context.WithoutCancel(ctx))
		}
		m.run = nil
	}
	m.closePool()
	return err
}

func (m *Module) closePool() {
	if m.pool != nil {
		m.pool.Close()
		m.pool = nil
	}
}

func sub(dir string) fs.FS { f, _ := fs.Sub(files, dir); return f }

// Declare lists the module's page, permission and menu entry.
func (m *Module) Declare() kernel.Parts {
	return kernel.Parts{
		Templates:   sub("templates"),
		Locales:     sub("locales"),
		Permissions: []kernel.Permission{{Name: PermManage, Title: "kernel.jobs.perm.manage"}},
		Routes:      m.routes(),
		Menu:        []kernel.MenuItem{{Section: "menu.admin", Title: "kernel.jobs.menu", Path: "/admin/jobs", Perm: PermManage, Order: 910}},
	}
}
