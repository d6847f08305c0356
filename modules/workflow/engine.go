package workflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	ktoken "parvis.org/parvis/kernel/token"
	"slices"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/i18n"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

// maxChain bounds automatic actions run one after another, so that a badly designed
// workflow (A enters B enters A…) fails loudly instead of looping.
const maxChain = 16

// engine implements Engine.
type engine struct {
	db      *store.DB
	clock   kernel.Clock
	log     *slog.Logger
	auth    kernel.Authorizer
	dir     auth.Directory // nil without the auth module: the notify task then mails addresses only
	audit   kernel.Auditor
	jobs    kernel.Jobs
	mail    kernel.Mailer
	i18n    *i18n.Bundle
	views   *web.Views
	baseURL string
	client  *http.Client

	types  map[string]TaskType
	rtypes map[string]ResourceType
	perms  map[string]bool

	defs sync.Map // "org/key/version" → *Definition: versions never change once stored

	// StateChanged is fired inside the transaction after every transition.
	StateChanged kernel.Hook[StateChanged]
}

var _ Engine = (*engine)(nil)

func (e *engine) now() time.Time { return e.clock.Now().UTC() }

func (e *engine) validator() validator { return validator{types: e.types, perms: e.perms} }

func (e *engine) definition(ctx context.Context, q store.Querier, orgID int64, key string, version int) (*Definition, error) {
	ck := fmt.Sprintf("%d/%s/%d", orgID, key, version)
	if version > 0 {
		if d, ok := e.defs.Load(ck); ok {
			return d.(*Definition), nil
		}
	}
	d, err := loadDefinition(ctx, q, orgID, key, version)
	if err != nil {
		return nil, err
	}
	e.defs.Store(fmt.Sprintf("%d/%s/%d", orgID, key, d.Version), d)
	return d, nil
}

func (e *engine) withDef(ctx context.Context, q store.Querier, st *Status) error {
	d, err := e.definition(ctx, q, st.OrgID, st.Workflow, st.Version)
	if err != nil {
		return err
	}
	st.def = d
	if s := d.StateByKey(st.State); s != nil {
		st.StateTitle, st.PublicLabel, st.Final = s.Title, s.PublicLabel, s.Final
	}
	return nil
}

func (e *engine) load(ctx context.Context, q store.Querier, forUpdate bool, ref Ref) (Status, error) {
	st, err := loadResource(ctx, q, forUpdate, "rtype = ? AND rid = ?", ref.Type, ref.ID)
	if err != nil {
		return st, err
	}
	return st, e.withDef(ctx, q, &st)
}

// OnStateChanged implements Engine.
func (e *engine) OnStateChanged(f func(context.Context, StateChanged) error) { e.StateChanged.On(f) }

// Attach implements Engine.
func (e *engine) Attach(ctx context.Context, tx *store.Tx, res NewResource, key string) (Status, error) {
	if _, ok := e.rtypes[res.Ref.Type]; !ok {
		return Status{}, errs.New(errs.Invalid, "workflow.error.unknown_type", "type", res.Ref.Type)
	}
	if res.Ref.ID == "" || res.OrgID == 0 {
		return Status{}, errs.New(errs.Invalid, "workflow.error.bad_resource")
	}
	def, err := e.definition(ctx, tx, res.OrgID, key, 0)
	if err != nil {
		return Status{}, err
	}
	init := def.Initial()
	if init == nil {
		return Status{}, fmt.Errorf("workflow %s v%d has no initial state", key, def.Version)
	}
	now := e.now()
	lang := i18n.Supported(res.Lang)
	if lang == "" {
		lang = i18n.Default
	}
	st := Status{Ref: res.Ref, OrgID: res.OrgID, Workflow: def.Key, Version: def.Version, State: init.Key,
		UnitID: res.UnitID, CitizenID: res.CitizenID, CitizenEmail: res.CitizenEmail, Lang: lang,
		Title: res.Title, Fields: res.Fields, Since: now, CreatedAt: now, def: def,
		StateTitle: init.Title, PublicLabel: init.PublicLabel, Final: init.Final}
	if st.Fields == nil {
		st.Fields = map[string]any{}
	}
	if u := def.Routing.Route(st.Fields); u != 0 {
		st.UnitID = u
	}
	if err := insertResource(ctx, tx, &st, now); err != nil {
		return st, err
	}
	if err := insertEvent(ctx, tx, st.internalID, Event{At: now, Kind: "attach", To: st.State, Public: true}); err != nil {
		return st, err
	}
	if err := e.emit(ctx, tx, &st, "submitted", map[string]any{"state": st.State, "public_label": st.PublicLabel}); err != nil {
		return st, err
	}
	if err := e.enter(ctx, tx, &st, 0); err != nil {
		return st, err
	}
	return st, nil
}

// Run implements Engine.
func (e *engine) Run(ctx context.Context, actor *kernel.Agent, ref Ref, action string, in Input) (Status, error) {
	var st Status
	err := e.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		st, err = e.RunTx(ctx, tx, actor, ref, action, in)
		return err
	})
	return st, err
}

// RunTx implements Engine.
func (e *engine) RunTx(ctx context.Context, tx *store.Tx, actor *kernel.Agent, ref Ref, action string, in Input) (Status, error) {
	st, err := e.load(ctx, tx, true, ref)
	if err != nil {
		return st, err
	}
	a := st.def.ActionByKey(action)
	if a == nil {
		return st, errs.New(errs.NotFound, "workflow.error.action_not_found")
	}
	if a.Auto() {
		return st, errs.New(errs.Conflict, "workflow.error.auto_action")
	}
	if !a.AppliesIn(st.State) {
		return st, errs.New(errs.Conflict, "workflow.error.not_in_state")
	}
	if !e.allowed(ctx, actor, &st, a) {
		return st, errs.New(errs.Forbidden, "workflow.error.forbidden")
	}
	return st, e.perform(ctx, tx, &st, a, actor, in, 0)
}

// allowed checks the action's permission on the resource, then its unit restriction.
func (e *engine) allowed(ctx context.Context, actor *kernel.Agent, st *Status, a *Action) bool {
	if actor == nil || e.auth == nil || actor.OrgID != st.OrgID {
		return false
	}
	res := &kernel.Resource{Type: "workflow." + st.Ref.Type, ID: st.Ref.ID, UnitID: st.UnitID, OrgID: st.OrgID}
	if !e.auth.Can(ctx, actor, a.Perm(), res) {
		return false
	}
	if len(a.Units) == 0 {
		return true
	}
	units, err := e.auth.UnitsOf(ctx, actor)
	if err != nil {
		e.log.Error("units of agent", "agent", actor.ID, "err", err)
		return false
	}
	for _, u := range units {
		if slices.Contains(a.Units, u) {
			return true
		}
	}
	return false
}

// AvailableActions implements Engine.
func (e *engine) AvailableActions(ctx context.Context, actor *kernel.Agent, ref Ref) ([]Action, error) {
	st, err := e.load(ctx, e.db.Read(), false, ref)
	if err != nil {
		return nil, err
	}
	var out []Action
	for i := range st.def.Actions {
		a := &st.def.Actions[i]
		if !a.Auto() && a.AppliesIn(st.State) && e.allowed(ctx, actor, &st, a) {
			out = append(out, *a)
		}
	}
	return out, nil
}

// State implements Engine.
func (e *engine) State(ctx context.Context, ref Ref) (Status, error) {
	return e.load(ctx, e.db.Read(), false, ref)
}

// History implements Engine.
func (e *engine) History(ctx context.Context, ref Ref, public bool) ([]Event, error) {
	st, err := e.load(ctx, e.db.Read(), false, ref)
	if err != nil {
		return nil, err
	}
	evs, err := listEvents(ctx, e.db.Read(), st.internalID, public)
	if err != nil {
		return nil, err
	}
	for i := range evs {
		if s := st.def.StateByKey(evs[i].To); s != nil {
			evs[i].PublicLabel = s.PublicLabel
		}
		if public {
			// The citizen never sees who, inside the administration, did what.
			evs[i].ActorID, evs[i].ActorName = 0, ""
		}
	}
	return evs, nil
}

// perform runs action a on st as actor: its tasks, then the transition, then whatever
// entering the new state triggers. Everything happens in tx: an error undoes it all.
func (e *engine) perform(ctx context.Context, tx *store.Tx, st *Status, a *Action, actor *kernel.Agent, in Input, depth int) error {
	if depth > maxChain {
		return fmt.Errorf("workflow %s: more than %d automatic actions in a row (loop?) at %s", st.Workflow, maxChain, a.Key)
	}
	now := e.now()
	base := Event{At: now, Action: a.Key}
	if actor != nil {
		base.ActorID, base.ActorName = actor.ID, actor.Name
	}
	if in.Comment != "" {
		ev := base
		ev.Kind, ev.Message = "comment", in.Comment
		if err := insertEvent(ctx, tx, st.internalID, ev); err != nil {
			return err
		}
	}
	oldSeq := st.seq
	tc := &TaskContext{Tx: tx, Status: st, Definition: st.def, Action: a, Actor: actor, Input: in, Now: now,
		Mail: e.mail, Jobs: e.jobs, e: e}
	for i, t := range a.Tasks {
		tt, ok := e.types[t.Type]
		if !ok {
			return fmt.Errorf("action %s task %d: unknown task type %q", a.Key, i, t.Type)
		}
		tc.Config = t.Config
		res, err := tt.Run(ctx, tc)
		if err != nil {
			return errs.Wrap(err, "action %s, task %d (%s)", a.Key, i+1, t.Type)
		}
		ev := base
		ev.Kind, ev.Task, ev.Message, ev.Public = "task", t.Type, res.Message, res.Public
		if err := insertEvent(ctx, tx, st.internalID, ev); err != nil {
			return err
		}
	}
	from := st.State
	st.State = a.To
	st.seq++
	st.Since = now
	if s := st.def.StateByKey(a.To); s != nil {
		st.StateTitle, st.PublicLabel, st.Final = s.Title, s.PublicLabel, s.Final
	}
	if err := saveResource(ctx, tx, st, oldSeq, now); err != nil {
		return err
	}
	ev := base
	ev.Kind, ev.From, ev.To, ev.Public = "transition", from, a.To, true
	if err := insertEvent(ctx, tx, st.internalID, ev); err != nil {
		return err
	}
	if err := e.StateChanged.Fire(ctx, StateChanged{Tx: tx, Ref: st.Ref, From: from, To: a.To, Action: a.Key, Status: *st}); err != nil {
		return err
	}
	if err := e.emit(ctx, tx, st, "state_changed", map[string]any{"from": from, "to": a.To, "action": a.Key,
		"public_label": st.PublicLabel}); err != nil {
		return err
	}
	return e.enter(ctx, tx, st, depth)
}

// enter arms the delayed actions of st's state and runs the first on-enter or conditional
// automatic action that applies.
func (e *engine) enter(ctx context.Context, tx *store.Tx, st *Status, depth int) error {
	for i := range st.def.Actions {
		a := &st.def.Actions[i]
		if a.Auto() && a.Trigger == OnDelay && a.AppliesIn(st.State) {
			if err := e.arm(ctx, tx, st, a); err != nil {
				return err
			}
		}
	}
	return e.automatic(ctx, tx, st, depth)
}

func (e *engine) automatic(ctx context.Context, tx *store.Tx, st *Status, depth int) error {
	for i := range st.def.Actions {
		a := &st.def.Actions[i]
		if !a.Auto() || !a.AppliesIn(st.State) {
			continue
		}
		if a.Trigger == OnEnter || (a.Trigger == OnCondition && a.Condition.Holds(st.Fields)) {
			return e.perform(ctx, tx, st, a, nil, Input{}, depth+1)
		}
	}
	return nil
}

// SetFields implements Engine.
func (e *engine) SetFields(ctx context.Context, tx *store.Tx, ref Ref, fields map[string]any) error {
	st, err := e.load(ctx, tx, true, ref)
	if err != nil {
		return err
	}
	for k, v := range fields {
		st.Fields[k] = v
	}
	if err := saveResource(ctx, tx, &st, st.seq, e.now()); err != nil {
		return err
	}
	return e.automatic(ctx, tx, &st, 0)
}

func (e *engine) describe(ctx context.Context, st *Status) (Description, error) {
	rt, ok := e.rtypes[st.Ref.Type]
	if !ok || rt.Provider == nil {
		return Description{Title: st.Title, CitizenEmail: st.CitizenEmail, Lang: st.Lang}, nil
	}
	d, err := rt.Provider.Describe(ctx, st.Ref.ID)
	if err != nil {
		return d, fmt.Errorf("describe %s: %w", st.Ref, err)
	}
	if d.CitizenEmail == "" {
		d.CitizenEmail = st.CitizenEmail
	}
	if d.Lang == "" {
		d.Lang = st.Lang
	}
	if d.Title == "" {
		d.Title = st.Title
	}
	return d, nil
}

// Definition implements Engine.
func (e *engine) Definition(ctx context.Context, orgID int64, key string) (*Definition, error) {
	return e.definition(ctx, e.db.Read(), orgID, key, 0)
}

// Definitions implements Engine.
func (e *engine) Definitions(ctx context.Context, orgID int64) ([]*Definition, error) {
	keys, err := latestVersions(ctx, e.db.Read(), orgID)
	if err != nil {
		return nil, err
	}
	out := make([]*Definition, 0, len(keys))
	for _, k := range keys {
		d, err := e.Definition(ctx, orgID, k)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// SaveDefinition implements Engine.
func (e *engine) SaveDefinition(ctx context.Context, tx *store.Tx, orgID int64, def *Definition) (int, error) {
	if err := e.validator().Validate(def); err != nil {
		return 0, err
	}
	var before *Definition
	if prev, err := loadDefinition(ctx, tx, orgID, def.Key, 0); err == nil {
		before = prev
	} else if errs.CodeOf(err) != errs.NotFound {
		return 0, err
	}
	v, err := insertDefinition(ctx, tx, orgID, def, e.now())
	if err != nil {
		return 0, err
	}
	def.OrgID = orgID
	if e.audit != nil {
		var b any
		if before != nil {
			b = before
		}
		if err := e.audit.Record(ctx, tx, kernel.AuditEntry{Action: "workflow.save", ResourceType: "workflow",
			ResourceID: def.Key, Before: b, After: def}); err != nil {
			return 0, err
		}
	}
	return v, nil
}

// Export implements Engine.
func (e *engine) Export(ctx context.Context, orgID int64, key, format string) ([]byte, error) {
	d, err := e.Definition(ctx, orgID, key)
	if err != nil {
		return nil, err
	}
	return d.Marshal(format)
}

// Import implements Engine.
func (e *engine) Import(ctx context.Context, tx *store.Tx, orgID int64, data []byte, format string) (*Definition, error) {
	d, err := ParseDefinition(data, format)
	if err != nil {
		return nil, err
	}
	if _, err := e.SaveDefinition(ctx, tx, orgID, d); err != nil {
		return nil, err
	}
	return d, nil
}

// Forget implements Engine.
func (e *engine) Forget(ctx context.Context, tx *store.Tx, ref Ref, purge bool) error {
	st, err := loadResource(ctx, tx, true, "rtype = ? AND rid = ?", ref.Type, ref.ID)
	if errs.CodeOf(err) == errs.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	id := st.internalID
	for _, q := range []string{`DELETE FROM workflow_deliveries WHERE resource_id = ?`, `DELETE FROM workflow_files WHERE resource_id = ?`,
		`DELETE FROM workflow_corrections WHERE resource_id = ?`} {
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return fmt.Errorf("forget %s: %w", ref, err)
		}
	}
	if purge {
		// The history and timers go with the row (ON DELETE CASCADE).
		_, err = tx.ExecContext(ctx, `DELETE FROM workflow_resources WHERE id = ?`, id)
	} else {
		if _, err = tx.ExecContext(ctx, `UPDATE workflow_history SET message = '' WHERE resource_id = ?`, id); err == nil {
			_, err = tx.ExecContext(ctx, `UPDATE workflow_resources SET fields = '{}', title = ?, citizen_id = 0, citizen_email = '',
 updated_at = ? WHERE id = ?`, ref.ID, e.now(), id)
		}
	}
	if err != nil {
		return fmt.Errorf("forget %s: %w", ref, err)
	}
	return nil
}

// Files implements Engine.
func (e *engine) Files(ctx context.Context, ref Ref) ([]File, error) {
	st, err := loadResource(ctx, e.db.Read(), false, "rtype = ? AND rid = ?", ref.Type, ref.ID)
	if err != nil {
		return nil, err
	}
	rows, err := e.db.Read().QueryContext(ctx, `SELECT id, name, content_type, created_at FROM workflow_files
 WHERE resource_id = ? ORDER BY id`, st.internalID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []File
	for rows.Next() {
		var f File
		if err := rows.Scan(&f.ID, &f.Name, &f.ContentType, &f.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// File implements Engine.
func (e *engine) File(ctx context.Context, ref Ref, id int64) (File, error) {
	var f File
	err := e.db.Read().QueryRowContext(ctx, `SELECT f.id, f.name, f.content_type, f.data, f.created_at FROM workflow_files f
 JOIN workflow_resources r ON r.id = f.resource_id WHERE r.rtype = ? AND r.rid = ? AND f.id = ?`, ref.Type, ref.ID, id).
		Scan(&f.ID, &f.Name, &f.ContentType, &f.Data, &f.CreatedAt)
	return f, notFound(err, "workflow.error.file_not_found")
}

func (e *engine) addFile(ctx context.Context, tx *store.Tx, st *Status, name, ctype string, data []byte) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO workflow_files (resource_id, name, content_type, data, created_at)
 VALUES (?, ?, ?, ?, ?) RETURNING id`, st.internalID, name, ctype, data, e.now()).Scan(&id)
	return id, err
}

// newHexToken returns a random 128-bit value in hex.
func newHexToken() string { return ktoken.Hex(16) }

// enqueue inserts a job when the job system is there (it always is in a full server).
func (e *engine) enqueue(ctx context.Context, tx *store.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	if e.jobs == nil {
		return errors.New("workflow: no job system (kernel.jobs) in this binary")
	}
	return e.jobs.Enqueue(ctx, tx, args, opts)
}
