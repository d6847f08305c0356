package forms

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/modules/workflow"
)

// The module's operations, used by the pages, the API, the examples and the tests.

// SaveForm validates def and stores it as the form's draft version: a new form, a new version
// after a frozen one, or an edit of the current draft. Audited, in tx.
func (m *Module) SaveForm(ctx context.Context, tx *store.Tx, orgID int64, def *Definition) (Form, error) {
	if err := def.ValidateDraft(); err != nil {
		return Form{}, err
	}
	now := m.now()
	doc, err := json.Marshal(def)
	if err != nil {
		return Form{}, err
	}
	f, err := getForm(ctx, tx, orgID, def.Key)
	switch {
	case errs.CodeOf(err) == errs.NotFound:
		if err := tx.QueryRowContext(ctx, `INSERT INTO forms_forms (org_id, key, title, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			orgID, def.Key, def.Title, now, now).Scan(&f.ID); err != nil {
			return f, fmt.Errorf("forms: create: %w", err)
		}
		f.OrgID, f.Key = orgID, def.Key
		_, err = tx.ExecContext(ctx, `INSERT INTO forms_versions (form_id, version, doc, created_at) VALUES (?, 1, ?, ?)`, f.ID, string(doc), now)
	case err != nil:
		return f, err
	default:
		var cur Version
		if cur, err = getVersion(ctx, tx, f.ID, 0); err != nil {
			return f, err
		}
		if cur.Frozen {
			_, err = tx.ExecContext(ctx, `INSERT INTO forms_versions (form_id, version, doc, created_at) VALUES (?, ?, ?, ?)`, f.ID, cur.Version+1, string(doc), now)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE forms_versions SET doc = ? WHERE form_id = ? AND version = ?`, string(doc), f.ID, cur.Version)
		}
		if err == nil {
			_, err = tx.ExecContext(ctx, `UPDATE forms_forms SET title = ?, updated_at = ? WHERE id = ?`, def.Title, now, f.ID)
		}
	}
	if err != nil {
		return f, fmt.Errorf("forms: save: %w", err)
	}
	f.Title = def.Title
	return f, m.audit.Record(ctx, tx, kernel.AuditEntry{Action: "forms.save", ResourceType: "form", ResourceID: def.Key, After: def})
}

// simpleWorkflow is used by forms that name no workflow of their own.
const simpleWorkflow = "forms-simple"

// Publish freezes the form's latest version and makes it the one citizens fill.
func (m *Module) Publish(ctx context.Context, orgID int64, key string) (int, error) {
	var version int
	err := m.db.InTx(ctx, func(tx *store.Tx) error {
		f, err := getForm(ctx, tx, orgID, key)
		if err != nil {
			return err
		}
		v, err := getVersion(ctx, tx, f.ID, 0)
		if err != nil {
			return err
		}
		if err := v.Def.Validate(); err != nil {
			return err
		}
		var other int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM forms_forms WHERE key = ? AND published > 0 AND org_id <> ?`, key, orgID).Scan(&other); err != nil {
			return err
		}
		if other > 0 {
			return errs.OnField(errs.Conflict, "key", "forms.error.key_taken")
		}
		if err := m.ensureWorkflow(ctx, tx, orgID, v.Def.Workflow); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE forms_versions SET frozen = TRUE WHERE form_id = ? AND version = ?`, f.ID, v.Version); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE forms_forms SET published = ?, closed_at = NULL, updated_at = ? WHERE id = ?`, v.Version, m.now(), f.ID); err != nil {
			return err
		}
		version = v.Version
		return m.audit.Record(ctx, tx, kernel.AuditEntry{Action: "forms.publish", ResourceType: "form", ResourceID: key, After: map[string]any{"version": v.Version}})
	})
	return version, err
}

// Close stops a published form from taking responses (the retention clock starts).
func (m *Module) Close(ctx context.Context, orgID int64, key string) error {
	return m.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE forms_forms SET closed_at = ?, updated_at = ? WHERE org_id = ? AND key = ?`, m.now(), m.now(), orgID, key)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errs.New(errs.NotFound, "forms.error.form_not_found")
		}
		return m.audit.Record(ctx, tx, kernel.AuditEntry{Action: "forms.close", ResourceType: "form", ResourceID: key})
	})
}

func (m *Module) ensureWorkflow(ctx context.Context, tx *store.Tx, orgID int64, key string) error {
	if key == "" {
		key = simpleWorkflow
	}
	_, err := m.wf.Definition(ctx, orgID, key)
	if errs.CodeOf(err) != errs.NotFound {
		return err
	}
	if key != simpleWorkflow {
		return errs.OnField(errs.Invalid, "workflow", "forms.error.workflow_missing", "key", key)
	}
	_, err = m.wf.SaveDefinition(ctx, tx, orgID, &workflow.Definition{Key: simpleWorkflow, Title: "Demande simple",
		States: []workflow.State{
			{Key: "received", Title: "Reçue", PublicLabel: "Demande reçue", Initial: true},
			{Key: "done", Title: "Traitée", PublicLabel: "Demande traitée", Final: true},
			{Key: "refused", Title: "Refusée", PublicLabel: "Demande refusée", Final: true},
		},
		Actions: []workflow.Action{
			{Key: "done", Title: "Traiter", From: []string{"received"}, To: "done"},
			{Key: "refuse", Title: "Refuser", From: []string{"received"}, To: "refused"},
		}})
	return err
}

// openProblem says why a form takes no submission now ("" when it does).
func (m *Module) openProblem(f Form, d *Definition, now time.Time) string {
	switch {
	case f.Published == 0:
		return "forms.error.not_published"
	case f.ClosedAt != nil && !f.ClosedAt.After(now):
		return "forms.error.closed"
	case d.Settings.ClosesAt != nil && !d.Settings.ClosesAt.After(now):
		return "forms.error.closed"
	case d.Settings.OpensAt != nil && d.Settings.OpensAt.After(now):
		return "forms.error.not_open"
	}
	return ""
}

// Submission is a validated submission, ready to store.
type Submission struct {
	Form      Form
	Def       *Definition
	Answers   Answers
	CitizenID int64
	Email     string // where the receipt goes
	Lang      string
	SubmitKey string // idempotency: a draft's token hash or an API key
	DraftID   int64
}

// Submit stores a response, attaches it to its workflow and queues the receipt, all in one
// transaction: nothing of it exists unless all of it does. A second submission with the same
// SubmitKey returns the first response (Conflict code "forms.error.already_submitted").
func (m *Module) Submit(ctx context.Context, s Submission) (Response, error) {
	// A unique violation means a concurrent twin took the same reference (drawn before the
	// transaction) or the same SubmitKey: trying again draws a new reference, or returns the
	// twin's response through the SubmitKey check.
	for attempt := 0; ; attempt++ {
		resp, err := m.submitOnce(ctx, s)
		if err != nil && store.IsUniqueViolation(err) && attempt < 3 {
			continue
		}
		return resp, err
	}
}

func (m *Module) submitOnce(ctx context.Context, s Submission) (Response, error) {
	var resp Response
	var files []string
	// The reference is drawn before the write transaction, which on SQLite holds the only
	// writer and on PostgreSQL the form's row lock. The receipt (a PDF, milliseconds of CPU)
	// is not made here at all: a job queued in the transaction renders and mails it.
	ref, err := newRef(ctx, m.db.Read())
	if err != nil {
		return resp, err
	}
	now := m.now()
	lang := s.Lang
	if lang == "" {
		lang = "fr"
	}
	err = m.db.InTx(ctx, func(tx *store.Tx) error {
		if s.SubmitKey != "" {
			if r, err := scanResponse(tx.QueryRowContext(ctx, `SELECT `+respCols+` FROM forms_responses WHERE submit_key = ?`, s.SubmitKey)); err == nil {
				resp = r
				return errs.New(errs.Conflict, "forms.error.already_submitted")
			}
		}
		lock := `SELECT id FROM forms_forms WHERE id = ?`
		if tx.Dialect == store.Postgres {
			lock += ` FOR UPDATE` // serialises the maximum count per form
		}
		var id int64
		if err := tx.QueryRowContext(ctx, lock, s.Form.ID).Scan(&id); err != nil {
			return notFound(err, "forms.error.form_not_found")
		}
		if key := m.openProblem(s.Form, s.Def, m.now()); key != "" {
			return errs.New(errs.Conflict, key)
		}
		if max := s.Def.Settings.MaxResponses; max > 0 {
			n, err := countResponses(ctx, tx, s.Form.ID)
			if err != nil {
				return err
			}
			if n >= max {
				return errs.New(errs.Conflict, "forms.error.full")
			}
		}
		var owner any
		if s.Def.Settings.OnePerCitizen {
			switch {
			case s.CitizenID != 0:
				owner = fmt.Sprintf("c:%d", s.CitizenID)
			case s.Email != "":
				owner = "e:" + strings.ToLower(s.Email)
			default:
				return errs.New(errs.Forbidden, "forms.error.sign_in_needed")
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM forms_responses WHERE form_id = ? AND owner_key = ?`, s.Form.ID, owner).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return errs.New(errs.Conflict, "forms.error.one_per_citizen")
			}
		}
		answers, err := json.Marshal(s.Answers)
		if err != nil {
			return err
		}
		var cid, skey any
		if s.CitizenID != 0 {
			cid = s.CitizenID
		}
		if s.SubmitKey != "" {
			skey = s.SubmitKey
		}
		search := s.Def.SearchText(ref, s.Answers)
		resp = Response{OrgID: s.Form.OrgID, FormID: s.Form.ID, Version: s.Def.Version, Ref: ref, CitizenID: s.CitizenID,
			Email: s.Email, Lang: lang, Answers: s.Answers, CreatedAt: now}
		if err := tx.QueryRowContext(ctx, `INSERT INTO forms_responses (org_id, form_id, version, ref, submit_key, owner_key, citizen_id, email, lang, answers, search, created_at, updated_at)
 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, resp.OrgID, resp.FormID, resp.Version, ref, skey, owner, cid, s.Email, lang,
			string(answers), search, now, now).Scan(&resp.ID); err != nil {
			return fmt.Errorf("forms: insert response: %w", err)
		}
		if err := m.indexSearch(ctx, tx, resp.ID, search); err != nil {
			return err
		}
		if s.DraftID != 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE forms_files SET response_id = ?, draft_id = NULL WHERE draft_id = ?`, resp.ID, s.DraftID); err != nil {
				return err
			}
			// Files removed from the answers while filling are deleted after commit.
			rows, err := tx.QueryContext(ctx, `SELECT id FROM forms_files WHERE response_id = ?`, resp.ID)
			if err != nil {
				return err
			}
			kept := map[string]bool{}
			for _, f := range fileRefs(s.Def, s.Answers) {
				kept[f.ID] = true
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				if !kept[id] {
					files = append(files, id)
				}
			}
			rows.Close()
			for _, id := range files {
				if _, err := tx.ExecContext(ctx, `DELETE FROM forms_files WHERE id = ?`, id); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM forms_drafts WHERE id = ?`, s.DraftID); err != nil {
				return err
			}
		}
		wfKey := s.Def.Workflow
		if wfKey == "" {
			wfKey = simpleWorkflow
		}
		st, err := m.wf.Attach(ctx, tx, workflow.NewResource{Ref: workflow.Ref{Type: ResourceType, ID: ref}, OrgID: resp.OrgID,
			Title: m.titleOf(s.Def, ref, s.Answers), CitizenID: s.CitizenID, CitizenEmail: s.Email, Lang: lang,
			Fields: Fields(s.Def, s.Answers)}, wfKey)
		if err != nil {
			return fmt.Errorf("forms: attach %s: %w", ref, err)
		}
		resp.State, resp.PublicLabel, resp.UnitID = st.State, st.PublicLabel, st.UnitID
		var closed any // a workflow whose automatic actions close the request at once
		if st.Final {
			closed = now
		}
		if _, err := tx.ExecContext(ctx, `UPDATE forms_responses SET state = ?, public_label = ?, unit_id = ?, closed_at = ? WHERE id = ?`,
			st.State, st.PublicLabel, st.UnitID, closed, resp.ID); err != nil {
			return err
		}
		return m.queueReceipt(ctx, tx, resp)
	})
	if err != nil {
		return resp, err
	}
	for _, id := range files {
		_ = os.Remove(m.filePath(id))
	}
	for _, h := range m.hooks {
		h(resp)
	}
	return resp, nil
}

func (m *Module) indexSearch(ctx context.Context, tx *store.Tx, id int64, text string) error {
	if tx.Dialect != store.SQLite {
		return nil // PostgreSQL indexes the column itself (GIN on to_tsvector)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO forms_search (rowid, search) VALUES (?, ?)`, id, text)
	return err
}

func (m *Module) titleOf(d *Definition, ref string, a Answers) string {
	if k := d.Settings.TitleQuestion; k != "" {
		if loc, ok := d.Question(k); ok && a[k] != nil {
			return d.Title + " – " + Display(loc.Q, a[k], "oui", "non")
		}
	}
	return d.Title + " – " + ref
}

// Fields is the flat bag the workflow's conditions, routing rules and templates read: one
// entry per answer, and "<key>_<part>" for addresses and points ("adresse_postcode").
func Fields(d *Definition, a Answers) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		switch x := v.(type) {
		case map[string]any:
			for p, pv := range x {
				out[k+"_"+p] = pv
			}
		case []string:
			out[k] = x
		case []FileRef:
			out[k] = len(x)
		case []map[string]any:
			out[k] = len(x)
		default:
			out[k] = v
		}
	}
	return out
}

func fileRefs(d *Definition, a Answers) []FileRef {
	var out []FileRef
	for _, v := range a {
		if l, ok := v.([]FileRef); ok {
			out = append(out, l...)
		}
	}
	return out
}

func (m *Module) filePath(id string) string { return filepath.Join(m.dir, id[:2], id) }

// stateChanged keeps the response's copy of its state and unit, for the list's filters.
func (m *Module) stateChanged(ctx context.Context, ev workflow.StateChanged) error {
	if ev.Ref.Type != ResourceType {
		return nil
	}
	// closed_at starts the request's retention clock when it reaches a final state.
	var closed any
	if ev.Status.Final {
		closed = m.now()
	}
	_, err := ev.Tx.ExecContext(ctx, `UPDATE forms_responses SET state = ?, public_label = ?, unit_id = ?, closed_at = ?, updated_at = ? WHERE ref = ?`,
		ev.Status.State, ev.Status.PublicLabel, ev.Status.UnitID, closed, m.now(), ev.Ref.ID)
	return err
}

// Describe implements workflow.ResourceProvider.
func (m *Module) Describe(ctx context.Context, id string) (workflow.Description, error) {
	r, def, err := m.loadResponse(ctx, m.db.Read(), id)
	if err != nil {
		return workflow.Description{}, err
	}
	lang := r.Lang
	ans := map[string]any{}
	for _, l := range def.Lines(r.Answers, m.t(lang, "forms.yes"), m.t(lang, "forms.no")) {
		ans[l.Key] = l.Value
	}
	return workflow.Description{Title: m.titleOf(def, r.Ref, r.Answers), Answers: ans, CitizenEmail: r.Email, Lang: lang,
		PublicURL: "/compte/demandes/" + r.Ref, AdminURL: "/admin/reponses/" + r.Ref}, nil
}

// CorrectionURL implements workflow.Corrector.
func (m *Module) CorrectionURL(ref workflow.Ref, token string) string {
	return "/compte/demandes/" + ref.ID + "/corriger/" + token
}

// loadResponse reads a response with the definition of its version.
func (m *Module) loadResponse(ctx context.Context, q store.Querier, ref string) (Response, *Definition, error) {
	r, err := responseByRef(ctx, q, ref)
	if err != nil {
		return r, nil, err
	}
	v, err := getVersion(ctx, q, r.FormID, r.Version)
	if err != nil {
		return r, nil, err
	}
	if r.Answers, err = v.Def.DecodeAnswers([]byte(r.raw)); err != nil {
		return r, nil, err
	}
	return r, v.Def, nil
}

// Entries implements kernel.CatalogueSource: the organisation's published, open forms.
func (m *Module) Entries(ctx context.Context, orgID int64) ([]kernel.CatalogueEntry, error) {
	fs, err := listForms(ctx, m.db.Read(), orgID, true)
	if err != nil {
		return nil, err
	}
	var out []kernel.CatalogueEntry
	for _, f := range fs {
		d, err := m.publishedDef(ctx, f)
		if err != nil {
			return nil, err
		}
		if m.openProblem(f, d, m.now()) != "" {
			continue
		}
		out = append(out, kernel.CatalogueEntry{Key: "forms." + f.Key, Title: d.Title, Summary: d.Settings.Summary,
			Path: "/demarches/" + f.Key, Keywords: strings.Fields(Fold(d.Title))})
	}
	return out, nil
}

// citizenData is the module's citizen.DataProvider.
type citizenData struct{ m *Module }

// Export implements citizen.DataProvider: the citizen's responses and their messages.
func (d citizenData) Export(ctx context.Context, citizenID int64) (any, error) {
	rows, err := d.m.db.Read().QueryContext(ctx, `SELECT ref FROM forms_responses WHERE citizen_id = ? ORDER BY id`, citizenID)
	if err != nil {
		return nil, err
	}
	var refs []string
	for rows.Next() {
		var ref string
		if err := rows.Scan(&ref); err != nil {
			rows.Close()
			return nil, err
		}
		refs = append(refs, ref)
	}
	rows.Close()
	if len(refs) == 0 {
		return nil, nil
	}
	var out []map[string]any
	for _, ref := range refs {
		r, def, err := d.m.loadResponse(ctx, d.m.db.Read(), ref)
		if err != nil {
			return nil, err
		}
		msgs, _ := listMessages(ctx, d.m.db.Read(), r.ID)
		out = append(out, map[string]any{"reference": r.Ref, "form": def.Title, "submitted_at": r.CreatedAt,
			"state": r.PublicLabel, "answers": r.Answers, "messages": msgs})
	}
	return out, nil
}

// Delete implements citizen.DataProvider: the account goes, its responses are anonymised
// (agents may still need the request itself) and its drafts deleted.
func (d citizenData) Delete(ctx context.Context, tx *store.Tx, citizenID int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM forms_drafts WHERE citizen_id = ?`, citizenID); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE forms_responses SET citizen_id = NULL, owner_key = NULL WHERE citizen_id = ?`, citizenID)
	return err
}

func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

func bundleJSON(b *Bundle) ([]byte, error) { return json.Marshal(b) }
