// Package appointments is the module "appointments": booking of town-hall services (ID
// documents, weddings, social services) with strict capacity, holds, reminders, agent
// planning and the national ANTS interoperability API.
//
// Capacity lives in the database: slots are materialised in appt_slots (generated ahead from
// weekly templates, day rules and closing days, by a periodic sweep and on demand), and a
// place is taken by a conditional UPDATE … SET booked = booked + 1 WHERE booked < capacity
// inside the booking transaction (IMMEDIATE on SQLite). No in-process lock is involved, so
// any number of nodes may share one PostgreSQL database. A place is given back by the
// conditional status change of its appointment (held → expired, confirmed → cancelled), so
// it is freed exactly once whoever tries.
//
// Flow: service → place → day → time (a hold of a few minutes) → questions → recap →
// confirmation. A confirmed appointment with notified_at NULL is, in the same transaction,
// the outbox of the notifier (notify.go): mail with the .ics and the capability links,
// reminder job (unique per appointment), ANTS declaration, workflow attachment.
package appointments

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/citizen"
	"parvis.org/parvis/kernel/config"
	"parvis.org/parvis/kernel/i18n"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
	"parvis.org/parvis/modules/workflow"
)

func init() { kernel.Register(&Module{}) }

//go:embed migrations templates locales mail
var files embed.FS

// ID is the module ID and the prefix of its locale keys.
const ID = "appointments"

// Permissions.
const (
	PermPlanning = "appointments.planning.view"
	PermManage   = "appointments.manage"
	PermOverbook = "appointments.overbook"
	PermSettings = "appointments.settings"
	// PermAPI lets partner software (an API token) book on behalf of citizens.
	PermAPI = "appointments.api"
)

// Module is the appointments module.
type Module struct {
	// SMS replaces the gateway built from the settings (tests).
	SMS SMS
	// SweepEvery is how often holds are expired and slots generated (default 1 min).
	SweepEvery time.Duration

	env    *kernel.Env
	dir    auth.Directory // units, for the planning's filters (nil without kernel/auth)
	db     *store.DB
	log    *slog.Logger
	clock  kernel.Clock
	loc    *time.Location
	cfg    *config.Config
	views  *web.Views
	i18n   *i18n.Bundle
	jobs   kernel.Jobs
	mail   kernel.Mailer
	audit  kernel.Auditor
	auth   kernel.Authorizer
	wf     workflow.Engine
	guests citizen.Guests
	client *http.Client
	limit  *web.RateLimiter
	cache  caches
	// tokenKey derives the capability tokens (notify.go); kick wakes the notifier.
	tokenKey []byte
	kick     chan struct{}
	notify   notifier
	booking  booking

	stop chan struct{}
	wg   sync.WaitGroup
}

var (
	_ kernel.Module      = (*Module)(nil)
	_ kernel.Provisioner = (*Module)(nil)
	_ kernel.Validator   = (*Module)(nil)
	_ kernel.Declarer    = (*Module)(nil)
	_ kernel.Starter     = (*Module)(nil)
	_ kernel.Stopper     = (*Module)(nil)
)

// Info implements kernel.Module.
func (*Module) Info() kernel.Info {
	return kernel.Info{ID: ID, Version: "1.0.0", Title: "appointments.title", New: func() kernel.Module { return &Module{} }}
}

// Provision keeps the kernel's services and adds the job workers.
func (m *Module) Provision(_ context.Context, env *kernel.Env) error {
	m.env, m.db, m.log, m.clock, m.cfg, m.views, m.i18n = env, env.DB, env.Log, env.Clock, env.Config, env.Views, env.I18n
	m.jobs, m.mail, m.audit, m.auth = env.Jobs, env.Mail, env.Audit, env.Auth
	if m.clock == nil {
		m.clock = kernel.SystemClock{}
	}
	m.loc = time.UTC
	if env.Config != nil && env.Config.Location != nil {
		m.loc = env.Config.Location
	}
	m.client = &http.Client{Timeout: 10 * time.Second}
	m.initTokenKey()
	m.kick = make(chan struct{}, 1)
	// Booking POSTs per client address: a burst of 20, then one every 3 s.
	m.limit = web.NewRateLimiter(3*time.Second, 20)
	m.limit.OnLimit = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.views.Render(w, r, web.Page{Name: "appointments/message.html", Title: "appointments.error.too_many", Status: http.StatusTooManyRequests,
			Data: map[string]any{"Message": "appointments.error.too_many"}})
	})
	if env.Workers != nil {
		m.addWorkers(env.Workers)
	}
	return nil
}

// Validate fetches the services of other modules.
func (m *Module) Validate() error {
	var ok bool
	if m.jobs == nil || m.mail == nil {
		return errors.New("appointments needs the kernel's jobs and mail")
	}
	if m.wf, ok = kernel.Service[workflow.Engine](m.env); !ok {
		return errors.New("appointments needs the workflow module")
	}
	m.guests, _ = kernel.Service[citizen.Guests](m.env)
	m.dir, _ = kernel.Service[auth.Directory](m.env)
	return nil
}

func (m *Module) now() time.Time { return m.clock.Now().UTC() }

func sub(dir string) fs.FS { f, _ := fs.Sub(files, dir); return f }

// Declare lists what the module brings.
func (m *Module) Declare() kernel.Parts {
	return kernel.Parts{
		Migrations: sub("migrations"),
		Templates:  sub("templates"),
		Locales:    sub("locales"),
		Mail:       sub("mail"),
		Permissions: []kernel.Permission{
			{Name: PermPlanning, ResourceType: "place", Title: "appointments.perm.planning"}, // may be granted on one meeting point
			{Name: PermManage, Title: "appointments.perm.manage"},
			{Name: PermOverbook, Title: "appointments.perm.overbook"},
			{Name: PermSettings, Title: "appointments.perm.settings"},
			{Name: PermAPI, Title: "appointments.perm.api"},
		},
		Routes: m.routes(),
		Menu: []kernel.MenuItem{
			{Section: "kernel.menu.services", Title: "appointments.menu.planning", Path: "/admin/rdv/planning", Perm: PermPlanning, Order: 320},
			{Section: "kernel.menu.services", Title: "appointments.menu.stats", Path: "/admin/rdv/statistiques", Perm: PermPlanning, Order: 321},
			{Section: "kernel.menu.admin", Title: "appointments.menu.settings", Path: "/admin/rdv/reglages", Perm: PermSettings, Order: 620},
		},
		Extensions: []kernel.Extension{
			{Point: kernel.PointCitizenSpace, Value: kernel.SpaceLink{Title: "appointments.mine.title", Path: "/compte/rendez-vous", Order: 20}},
			{Point: workflow.PointResourceType, Value: workflow.ResourceType{Name: resourceType, Title: "appointments.resource", Provider: m}},
			{Point: kernel.PointCatalogue, Value: kernel.CatalogueEntry{Key: "appointments", Title: "appointments.title",
				Summary: "appointments.summary", Path: "/rdv", Keywords: []string{"rendez-vous", "passeport", "carte d'identité", "mariage"}}},
			{Point: kernel.PointCitizenData, Value: citizenData{m}},
			{Point: kernel.PointResources, Value: kernel.ResourceSource(placeResources{m})},
		},
	}
}

// Describe implements workflow.ResourceProvider.
func (m *Module) Describe(ctx context.Context, ref string) (workflow.Description, error) {
	a, err := m.apptWhere(ctx, m.db.Read(), `a.ref = ?`, ref)
	if err != nil {
		return workflow.Description{}, err
	}
	return workflow.Description{Title: a.ServiceName + " – " + a.Name, CitizenEmail: a.Email, Lang: a.Lang,
		Answers:  map[string]any{"date": a.Start.In(m.loc).Format("02/01/2006 15:04"), "place": a.PlaceName, "service": a.ServiceName},
		AdminURL: "/admin/rdv/rendez-vous/" + ref}, nil
}

// Start runs the sweep: expired holds give their places back, slots are generated ahead.
// It is idempotent (conditional updates, INSERT … ON CONFLICT DO NOTHING), so every node
// may run it.
func (m *Module) Start(ctx context.Context) error {
	every := m.SweepEvery
	if every <= 0 {
		every = time.Minute
	}
	m.stop = make(chan struct{})
	m.wg.Add(2)
	go m.runNotifier(min(every, 5*time.Second))
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			m.Sweep(context.Background())
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Sweep expires holds and generates slots ahead.
func (m *Module) Sweep(ctx context.Context) {
	if n, err := m.ExpireHolds(ctx); err != nil {
		m.log.Error("expire holds", "err", err)
	} else if n > 0 {
		m.log.Info("holds expired", "count", n)
	}
	if err := m.GenerateAll(ctx); err != nil {
		m.log.Error("generate slots", "err", err)
	}
}

// Stop ends the sweep and the notifier.
func (m *Module) Stop(context.Context) error {
	if m.stop != nil {
		close(m.stop)
		m.wg.Wait()
		m.stop = nil
	}
	return nil
}

// citizenData is the module's share of a citizen's personal data.
type citizenData struct{ m *Module }

func (c citizenData) Export(ctx context.Context, id int64) (any, error) {
	list, err := c.m.ByCitizen(ctx, id, "")
	if err != nil || len(list) == 0 {
		return nil, err
	}
	return list, nil
}

func (c citizenData) Delete(ctx context.Context, tx *store.Tx, id int64) error {
	// Past and future appointments are anonymised: agents keep their planning, not the person.
	_, err := tx.ExecContext(ctx, `UPDATE appt_appointments SET email = '', phone = '', name = '', answers = '{}', ants_ids = '', citizen_id = 0
		WHERE citizen_id = ?`, id)
	return err
}

// ByCitizen lists a citizen's appointments (by account, or by email when id is 0).
func (m *Module) ByCitizen(ctx context.Context, id int64, email string) ([]*Appointment, error) {
	rows, err := m.db.Read().QueryContext(ctx, `SELECT `+apptCols+apptFrom+`WHERE a.status IN ('confirmed', 'cancelled')
		AND ((a.citizen_id = ? AND ? <> 0) OR (a.email = ? AND ? <> '')) ORDER BY a.starts_at DESC LIMIT 200`, id, id, email, email)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Appointment
	for rows.Next() {
		a, err := scanAppt(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
