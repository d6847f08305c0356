package suites

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
)

// What a plan does with each item.
const (
	Create    = "create"
	Update    = "update"
	Unchanged = "unchanged"
	Conflict  = "conflict"
)

// Step is the plan for one item. Reason (a locale key) says why an item is in conflict, or
// that an unchanged item was changed by hand and kept so.
type Step struct {
	Suite   string `json:"suite"`
	Section string `json:"section"`
	Key     string `json:"key"`
	Action  string `json:"action"`
	Reason  string `json:"reason,omitempty"`
	Other   string `json:"other,omitempty"` // the suite that owns the item, for that reason
	ID      string `json:"id,omitempty"`
	item    Item
}

// Plan is what applying a suite (and the suites it includes, first) would do.
type Plan struct {
	Suites []*Suite
	Steps  []Step
}

// Count returns how many steps have the action.
func (p *Plan) Count(action string) int {
	n := 0
	for _, s := range p.Steps {
		if s.Action == action {
			n++
		}
	}
	return n
}

// record is what a suite created: one row of suites_items.
type record struct {
	Suite, ID, Applied, State string
}

type rkey struct{ section, key string }

// records loads what suites created in org.
func (m *Module) records(ctx context.Context, q store.Querier, org int64) (map[rkey]record, error) {
	rows, err := q.QueryContext(ctx, `SELECT section, item_key, suite, resource_id, applied_hash, state_hash FROM suites_items WHERE org_id = ?`, org)
	if err != nil {
		return nil, fmt.Errorf("suite records: %w", err)
	}
	defer rows.Close()
	out := map[rkey]record{}
	for rows.Next() {
		var k rkey
		var r record
		if err := rows.Scan(&k.section, &k.key, &r.Suite, &r.ID, &r.Applied, &r.State); err != nil {
			return nil, err
		}
		out[k] = r
	}
	return out, rows.Err()
}

// resolver maps keys to ids and back, from the records and what an apply creates.
type resolver struct {
	ids  map[rkey]string
	keys map[rkey]string // (section, id) → key
}

func newResolver(recs map[rkey]record) *resolver {
	r := &resolver{ids: map[rkey]string{}, keys: map[rkey]string{}}
	for k, rec := range recs {
		r.set(k.section, k.key, rec.ID)
	}
	return r
}

func (r *resolver) set(section, key, id string) {
	r.ids[rkey{section, key}] = id
	r.keys[rkey{section, id}] = key
}

func (r *resolver) ID(section, key string) (string, bool) {
	id, ok := r.ids[rkey{section, key}]
	return id, ok
}

func (r *resolver) Key(section, id string) string { return r.keys[rkey{section, id}] }

// installed returns the version of a suite applied in org, "" when none.
func (m *Module) installed(ctx context.Context, q store.Querier, org int64, name string) (string, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT version FROM suites_applied WHERE org_id = ? AND name = ?`, org, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// compareVersions compares "1.2.0"-style versions numerically.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < 3; i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// expand returns s with the suites it includes, included ones first, each once.
func (m *Module) expand(ctx context.Context, org int64, s *Suite, seen map[string]bool) ([]*Suite, error) {
	if seen[s.Name] {
		return nil, nil
	}
	seen[s.Name] = true
	var out []*Suite
	for _, name := range s.Include {
		inc, err := m.Find(ctx, org, name)
		if err != nil {
			return nil, err
		}
		sub, err := m.expand(ctx, org, inc, seen)
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
	}
	return append(out, s), nil
}

// Plan says what applying s in org would do, changing nothing.
func (m *Module) Plan(ctx context.Context, org int64, s *Suite) (*Plan, error) {
	suites, err := m.expand(ctx, org, s, map[string]bool{})
	if err != nil {
		return nil, err
	}
	recs, err := m.records(ctx, m.db.Read(), org)
	if err != nil {
		return nil, err
	}
	reg := m.registry()
	res := newResolver(recs)
	plan := &Plan{Suites: suites}
	idents := map[string]map[string]bool{} // section → identities of existing resources
	// will tells whether a key will resolve once the items before it are applied.
	will := map[rkey]bool{}
	for k := range recs {
		will[k] = true
	}
	for _, su := range suites {
		if v, err := m.installed(ctx, m.db.Read(), org, su.Name); err != nil {
			return nil, err
		} else if v != "" && compareVersions(su.Version, v) < 0 {
			ps := &problems{file: su.File, ast: su.file}
			ps.add("$.version", "suites.error.older", "version", su.Version, "installed", v)
			return nil, ps.err()
		}
		items, err := reg.ordered(su)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			sec := reg.sections[it.Section]
			st := Step{Suite: su.Name, Section: it.Section, Key: it.Key, item: it}
			blocked := false
			for _, ref := range sec.Refs(it) {
				if !will[rkey{ref.Section, ref.Key}] {
					blocked = true
				}
			}
			rec, ok := recs[rkey{it.Section, it.Key}]
			want := hashOf(it.Data)
			switch {
			case blocked:
				st.Action, st.Reason = Conflict, "suites.reason.blocked"
			case !ok:
				if idents[it.Section] == nil {
					list, err := sec.List(ctx, org)
					if err != nil {
						return nil, fmt.Errorf("listing %s: %w", it.Section, err)
					}
					idents[it.Section] = map[string]bool{}
					for _, r := range list {
						if r.Ident != "" {
							idents[it.Section][r.Ident] = true
						}
					}
				}
				if id := sec.Ident(ctx, org, it, res); id != "" && idents[it.Section][id] {
					st.Action, st.Reason = Conflict, "suites.reason.exists"
				} else {
					st.Action = Create
				}
			default:
				st.ID = rec.ID
				cur, err := sec.Read(ctx, org, rec.ID, res)
				switch {
				case errs.CodeOf(err) == errs.NotFound || errors.Is(err, store.ErrNotFound):
					st.Action, st.Reason = Conflict, "suites.reason.deleted"
				case err != nil:
					return nil, fmt.Errorf("reading %s %s: %w", it.Section, it.Key, err)
				case want == rec.Applied:
					st.Action = Unchanged
					if hashOf(cur) != rec.State {
						st.Reason = "suites.reason.kept"
					}
				case rec.Suite != su.Name:
					st.Action, st.Reason, st.Other = Conflict, "suites.reason.other_suite", rec.Suite
				case hashOf(cur) != rec.State:
					st.Action, st.Reason = Conflict, "suites.reason.changed"
				default:
					st.Action = Update
				}
			}
			if st.Action == Create || st.Action == Update || st.Action == Unchanged {
				will[rkey{it.Section, it.Key}] = true
			}
			plan.Steps = append(plan.Steps, st)
		}
	}
	return plan, nil
}

// Verifier is implemented by sections that can check items against the live instance
// before anything is written (the workflow engine's own validation, say).
type Verifier interface {
	Verify(ctx context.Context, org int64, items []Item, r Resolver) []Problem
}

// Apply applies s (and what it includes) in org: creates and updates what the plan says,
// records each item, never touches conflicts. With dry, it only plans.
func (m *Module) Apply(ctx context.Context, org int64, s *Suite, dry bool) (*Plan, error) {
	unlock, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	plan, err := m.Plan(ctx, org, s)
	if err != nil || dry {
		return plan, err
	}
	reg := m.registry()
	recs, err := m.records(ctx, m.db.Read(), org)
	if err != nil {
		return nil, err
	}
	res := newResolver(recs)
	// Checks against the instance, before the first write.
	for _, su := range plan.Suites {
		ps := &problems{file: su.File, ast: su.file}
		for _, key := range reg.sectionKeys() {
			if v, ok := reg.sections[key].(Verifier); ok && len(su.Items[key]) > 0 {
				for _, p := range v.Verify(ctx, org, su.Items[key], res) {
					ps.add(p.Path, p.Key, p.Args...)
				}
			}
		}
		if err := ps.err(); err != nil {
			return nil, err
		}
	}
	for i := range plan.Steps {
		st := &plan.Steps[i]
		if st.Action != Create && st.Action != Update {
			continue
		}
		sec := reg.sections[st.Section]
		var before map[string]any
		if st.Action == Update {
			before, _ = sec.Read(ctx, org, st.ID, res)
		}
		id, err := sec.Write(ctx, org, st.ID, st.item, res)
		if err != nil {
			return plan, fmt.Errorf("%s: %s %s (%s): %w", st.Suite, st.Action, st.Section, st.Key, err)
		}
		st.ID = id
		res.set(st.Section, st.Key, id)
		after, err := sec.Read(ctx, org, id, res)
		if err != nil {
			return plan, fmt.Errorf("%s: reading back %s %s: %w", st.Suite, st.Section, st.Key, err)
		}
		err = m.db.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO suites_items (org_id, section, item_key, suite, resource_id, applied_hash, state_hash, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (org_id, section, item_key) DO UPDATE SET suite = excluded.suite, resource_id = excluded.resource_id,
				applied_hash = excluded.applied_hash, state_hash = excluded.state_hash, updated_at = excluded.updated_at`,
				org, st.Section, st.Key, st.Suite, id, hashOf(st.item.Data), hashOf(after), m.now())
			if err != nil {
				return fmt.Errorf("recording %s %s: %w", st.Section, st.Key, err)
			}
			e := kernel.AuditEntry{Action: "suites.item." + st.Action, ResourceType: st.Section, ResourceID: id, After: after}
			if before != nil {
				e.Before = before
			}
			return m.audit(ctx, tx, e)
		})
		if err != nil {
			return plan, err
		}
	}
	for _, su := range plan.Suites {
		err := m.db.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO suites_applied (org_id, name, version, title, document, applied_at) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (org_id, name) DO UPDATE SET version = excluded.version, title = excluded.title, document = excluded.document, applied_at = excluded.applied_at`,
				org, su.Name, su.Version, su.Title, string(su.Source), m.now())
			if err != nil {
				return err
			}
			return m.audit(ctx, tx, kernel.AuditEntry{Action: "suites.apply", ResourceType: "suite", ResourceID: su.Name,
				After: map[string]any{"version": su.Version, "created": plan.Count(Create), "updated": plan.Count(Update), "conflicts": plan.Count(Conflict)}})
		})
		if err != nil {
			return plan, fmt.Errorf("recording suite %s: %w", su.Name, err)
		}
	}
	return plan, nil
}

// lock serialises applies across nodes on PostgreSQL (two nodes started with --suite at
// once); on SQLite the single writer and one process per file make it unneeded.
func (m *Module) lock(ctx context.Context) (func(), error) {
	if m.db.Dialect != store.Postgres {
		return func() {}, nil
	}
	conn, err := m.db.W.Conn(ctx)
	if err != nil {
		return nil, err
	}
	const key = 0x5061727669735375 // "ParvisSu"
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", int64(key)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("suite lock: %w", err)
	}
	return func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(key))
		conn.Close()
	}, nil
}

func (m *Module) audit(ctx context.Context, tx *store.Tx, e kernel.AuditEntry) error {
	if m.env.Audit == nil {
		return nil
	}
	return m.env.Audit.Record(ctx, tx, e)
}
