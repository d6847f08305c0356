package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/web"
)

func (m *Module) routes() []kernel.Route {
	return []kernel.Route{
		{Area: kernel.BackOffice, Method: "GET", Pattern: "/admin/jobs", Perm: PermManage, Handler: http.HandlerFunc(m.list), Name: "kernel.jobs.list"},
		{Area: kernel.BackOffice, Method: "POST", Pattern: "/admin/jobs/{id}/retry", Perm: PermManage, Handler: http.HandlerFunc(m.retry), Name: "kernel.jobs.retry"},
	}
}

// States shown on the page, in order, with their locale keys.
var states = []struct {
	State rivertype.JobState
	Key   string
}{
	{rivertype.JobStateAvailable, "kernel.jobs.state.available"},
	{rivertype.JobStateScheduled, "kernel.jobs.state.scheduled"},
	{rivertype.JobStateRunning, "kernel.jobs.state.running"},
	{rivertype.JobStateRetryable, "kernel.jobs.state.retryable"},
	{rivertype.JobStateDiscarded, "kernel.jobs.state.discarded"},
	{rivertype.JobStateCancelled, "kernel.jobs.state.cancelled"},
	{rivertype.JobStateCompleted, "kernel.jobs.state.completed"},
}

// Job is one row of the jobs page.
type Job struct {
	ID          int64
	Kind        string
	State       string
	StateKey    string
	Attempt     int
	MaxAttempts int
	LastError   string
	ScheduledAt time.Time
	CreatedAt   time.Time
	CanRetry    bool
}

// StateCount is one state's count, and whether it is the one being listed.
type StateCount struct {
	State   string
	Key     string
	Count   int
	Current bool
}

type listData struct {
	Counts []StateCount
	State  string
	Jobs   []Job
}

// org returns the organisation whose jobs the agent may see; 0 means all (superadmins).
func org(ctx context.Context) int64 {
	a := kernel.AgentFrom(ctx)
	if a == nil || a.Superadmin {
		return 0
	}
	return a.OrgID
}

func orgFilter(p *river.JobListParams, orgID int64) *river.JobListParams {
	if orgID == 0 {
		return p
	}
	// ->> with a plain key works alike on SQLite (3.38+) and PostgreSQL; org_id is a string.
	return p.Where("metadata ->> 'org_id' = @org_id", river.NamedArgs{"org_id": strconv.FormatInt(orgID, 10)})
}

// Counts returns the number of jobs per state visible to orgID (0: all).
func (m *Module) Counts(ctx context.Context, orgID int64) (map[string]int, error) {
	q := "SELECT state, COUNT(*) FROM river_job"
	var args []any
	if orgID != 0 {
		q += " WHERE metadata ->> 'org_id' = ?"
		args = append(args, strconv.FormatInt(orgID, 10))
	}
	rows, err := m.db.Read().QueryContext(ctx, q+" GROUP BY state", args...)
	if err != nil {
		return nil, fmt.Errorf("jobs: counts: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}

// List returns up to limit jobs in state (newest first) visible to orgID.
func (m *Module) List(ctx context.Context, state rivertype.JobState, orgID int64, limit int) ([]Job, error) {
	p := river.NewJobListParams().States(state).First(limit).OrderBy(river.JobListOrderByID, river.SortOrderDesc)
	res, err := m.ins.JobList(ctx, orgFilter(p, orgID))
	if err != nil {
		return nil, fmt.Errorf("jobs: list: %w", err)
	}
	out := make([]Job, 0, len(res.Jobs))
	for _, j := range res.Jobs {
		out = append(out, toJob(j))
	}
	return out, nil
}

func toJob(j *rivertype.JobRow) Job {
	out := Job{ID: j.ID, Kind: j.Kind, State: string(j.State), Attempt: j.Attempt, MaxAttempts: j.MaxAttempts,
		ScheduledAt: j.ScheduledAt, CreatedAt: j.CreatedAt,
		CanRetry: j.State == rivertype.JobStateDiscarded || j.State == rivertype.JobStateRetryable || j.State == rivertype.JobStateCancelled}
	for _, s := range states {
		if s.State == j.State {
			out.StateKey = s.Key
		}
	}
	if n := len(j.Errors); n > 0 {
		out.LastError = j.Errors[n-1].Error
	}
	return out
}

// Retry makes a failed, retryable or cancelled job run again now. orgID (0: any) must own it.
func (m *Module) Retry(ctx context.Context, id, orgID int64) error {
	p := river.NewJobListParams().IDs(id).First(1)
	res, err := m.ins.JobList(ctx, orgFilter(p, orgID))
	if err != nil {
		return fmt.Errorf("jobs: retry: %w", err)
	}
	if len(res.Jobs) == 0 {
		return ErrNoJob
	}
	if _, err := m.ins.JobRetry(ctx, id); err != nil {
		if errors.Is(err, river.ErrNotFound) {
			return ErrNoJob
		}
		return fmt.Errorf("jobs: retry: %w", err)
	}
	return nil
}

// ErrNoJob is returned when a job does not exist or is not visible to the agent.
var ErrNoJob = errors.New("jobs: no such job")

func (m *Module) list(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	orgID := org(ctx)
	counts, err := m.Counts(ctx, orgID)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	state := r.URL.Query().Get("state")
	d := listData{State: state}
	known := false
	for _, s := range states {
		known = known || string(s.State) == state
	}
	if !known {
		// By default, what needs attention first: failures, then retries.
		state = string(rivertype.JobStateDiscarded)
		if counts[state] == 0 && counts[string(rivertype.JobStateRetryable)] > 0 {
			state = string(rivertype.JobStateRetryable)
		}
		d.State = state
	}
	for _, s := range states {
		d.Counts = append(d.Counts, StateCount{State: string(s.State), Key: s.Key, Count: counts[string(s.State)], Current: string(s.State) == state})
	}
	if d.Jobs, err = m.List(ctx, rivertype.JobState(state), orgID, 100); err != nil {
		m.fail(w, r, err)
		return
	}
	flash := ""
	if r.URL.Query().Get("retried") != "" {
		flash = "kernel.jobs.retried"
	}
	m.views.Render(w, r, web.Page{Name: "kernel.jobs/jobs.html", Layout: "backoffice", Title: "kernel.jobs.title", Flash: flash, Data: d})
}

func (m *Module) retry(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		m.status(w, r, http.StatusNotFound, "kernel.jobs.not_found")
		return
	}
	if err := m.Retry(r.Context(), id, org(r.Context())); err != nil {
		if errors.Is(err, ErrNoJob) {
			m.status(w, r, http.StatusNotFound, "kernel.jobs.not_found")
			return
		}
		m.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/jobs?state=available&retried=1", http.StatusSeeOther)
}

func (m *Module) fail(w http.ResponseWriter, r *http.Request, err error) {
	m.log.ErrorContext(r.Context(), "jobs page", "err", err)
	m.status(w, r, http.StatusInternalServerError, "kernel.error.internal")
}

func (m *Module) status(w http.ResponseWriter, r *http.Request, status int, key string) {
	m.views.Render(w, r, web.Page{Name: "kernel/error.html", Layout: "backoffice", Status: status, Title: "kernel.error.title",
		Data: struct{ Message, Back string }{m.views.I18n.T(m.lang(r), key), "/admin/jobs"}})
}

func (m *Module) lang(r *http.Request) string {
	if m.views.Lang != nil {
		return m.views.Lang(r)
	}
	return "fr"
}
