package forms

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	ktoken "parvis.org/parvis/kernel/token"
	"strings"
	"time"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
)

// Query functions of the module's tables.

// Form is a form's row: its key and which version citizens fill.
type Form struct {
	ID        int64
	OrgID     int64
	Key       string
	Title     string
	Published int // 0: not published
	ClosedAt  *time.Time
	UpdatedAt time.Time
}

// Version is one version of a form.
type Version struct {
	Version   int
	Frozen    bool
	CreatedAt time.Time
	Def       *Definition
}

func notFound(err error, key string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return &errs.Error{Code: errs.NotFound, Key: key, Err: store.ErrNotFound}
	}
	return err
}

const formCols = `id, org_id, key, title, published, closed_at, updated_at`

func scanForm(sc interface{ Scan(...any) error }) (Form, error) {
	var f Form
	var closed sql.NullTime
	err := sc.Scan(&f.ID, &f.OrgID, &f.Key, &f.Title, &f.Published, &closed, &f.UpdatedAt)
	if closed.Valid {
		t := closed.Time.UTC()
		f.ClosedAt = &t
	}
	return f, err
}

func getForm(ctx context.Context, q store.Querier, orgID int64, key string) (Form, error) {
	f, err := scanForm(q.QueryRowContext(ctx, `SELECT `+formCols+` FROM forms_forms WHERE org_id = ? AND key = ?`, orgID, key))
	return f, notFound(err, "forms.error.form_not_found")
}

// publicForm finds a published form by key (keys of published forms are unique across
// organisations, so that public addresses are).
func publicForm(ctx context.Context, q store.Querier, key string) (Form, error) {
	f, err := scanForm(q.QueryRowContext(ctx, `SELECT `+formCols+` FROM forms_forms WHERE key = ? AND published > 0 ORDER BY id LIMIT 1`, key))
	return f, notFound(err, "forms.error.form_not_found")
}

func formByID(ctx context.Context, q store.Querier, id int64) (Form, error) {
	f, err := scanForm(q.QueryRowContext(ctx, `SELECT `+formCols+` FROM forms_forms WHERE id = ?`, id))
	return f, notFound(err, "forms.error.form_not_found")
}

func listForms(ctx context.Context, q store.Querier, orgID int64, publishedOnly bool) ([]Form, error) {
	query := `SELECT ` + formCols + ` FROM forms_forms WHERE org_id = ?`
	if publishedOnly {
		query += ` AND published > 0`
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY title, id`, orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Form
	for rows.Next() {
		f, err := scanForm(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

func getVersion(ctx context.Context, q store.Querier, formID int64, version int) (Version, error) {
	query := `SELECT version, frozen, created_at, doc FROM forms_versions WHERE form_id = ?`
	args := []any{formID}
	if version > 0 {
		query += ` AND version = ?`
		args = append(args, version)
	} else {
		query += ` ORDER BY version DESC LIMIT 1`
	}
	var v Version
	var doc string
	if err := q.QueryRowContext(ctx, query, args...).Scan(&v.Version, &v.Frozen, &v.CreatedAt, &doc); err != nil {
		return v, notFound(err, "forms.error.form_not_found")
	}
	v.Def = new(Definition)
	if err := json.Unmarshal([]byte(doc), v.Def); err != nil {
		return v, errorf("version %d of form %d: %w", v.Version, formID, err)
	}
	v.Def.Version = v.Version
	return v, nil
}

func listVersions(ctx context.Context, q store.Querier, formID int64) ([]Version, error) {
	rows, err := q.QueryContext(ctx, `SELECT version, frozen, created_at FROM forms_versions WHERE form_id = ? ORDER BY version DESC`, formID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		var v Version
		if err := rows.Scan(&v.Version, &v.Frozen, &v.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// --- drafts

// Draft is a submission being filled.
type Draft struct {
	ID        int64
	FormID    int64
	Version   int
	CitizenID int64
	Email     string
	Answers   Answers
	Done      []string // keys of the steps validated
	ExpiresAt time.Time
	token     string // the raw token, known only when just created
}

func newToken() string { return ktoken.Hex(16) }

func hashToken(t string) string { return ktoken.Hash("forms\x00" + t) }

func scanDraft(sc interface{ Scan(...any) error }, d *Definition) (*Draft, error) {
	var dr Draft
	var cid sql.NullInt64
	var answers, done string
	if err := sc.Scan(&dr.ID, &dr.FormID, &dr.Version, &cid, &dr.Email, &answers, &done, &dr.ExpiresAt); err != nil {
		return nil, err
	}
	dr.CitizenID = cid.Int64
	var err error
	if d != nil {
		dr.Answers, err = d.DecodeAnswers([]byte(answers))
	} else {
		err = json.Unmarshal([]byte(answers), &dr.Answers)
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(done), &dr.Done); err != nil {
		return nil, errorf("draft %d: %w", dr.ID, err)
	}
	return &dr, nil
}

const draftCols = `id, form_id, version, citizen_id, email, answers, done, expires_at`

func draftByToken(ctx context.Context, q store.Querier, formID int64, token string) (int64, int, error) {
	var id int64
	var version int
	err := q.QueryRowContext(ctx, `SELECT id, version FROM forms_drafts WHERE token_hash = ? AND form_id = ?`, hashToken(token), formID).Scan(&id, &version)
	return id, version, notFound(err, "forms.error.draft_not_found")
}

func loadDraft(ctx context.Context, q store.Querier, id int64, d *Definition) (*Draft, error) {
	dr, err := scanDraft(q.QueryRowContext(ctx, `SELECT `+draftCols+` FROM forms_drafts WHERE id = ?`, id), d)
	return dr, notFound(err, "forms.error.draft_not_found")
}

func insertDraft(ctx context.Context, tx *store.Tx, dr *Draft, now time.Time) error {
	dr.token = newToken()
	var cid any
	if dr.CitizenID != 0 {
		cid = dr.CitizenID
	}
	return tx.QueryRowContext(ctx, `INSERT INTO forms_drafts (token_hash, form_id, version, citizen_id, email, answers, done, created_at, updated_at, expires_at)
 VALUES (?, ?, ?, ?, ?, '{}', '[]', ?, ?, ?) RETURNING id`, hashToken(dr.token), dr.FormID, dr.Version, cid, dr.Email, now, now, dr.ExpiresAt).Scan(&dr.ID)
}

func saveDraft(ctx context.Context, q store.Querier, dr *Draft, now time.Time) error {
	a, err := json.Marshal(dr.Answers)
	if err != nil {
		return err
	}
	done, _ := json.Marshal(dr.Done)
	var cid any
	if dr.CitizenID != 0 {
		cid = dr.CitizenID
	}
	_, err = q.ExecContext(ctx, `UPDATE forms_drafts SET answers = ?, done = ?, citizen_id = ?, email = ?, updated_at = ?, expires_at = ? WHERE id = ?`,
		string(a), string(done), cid, dr.Email, now, dr.ExpiresAt, dr.ID)
	return err
}

// retoken gives a draft a new token (for a resume link) and returns it.
func retoken(ctx context.Context, q store.Querier, id int64) (string, error) {
	t := newToken()
	_, err := q.ExecContext(ctx, `UPDATE forms_drafts SET token_hash = ? WHERE id = ?`, hashToken(t), id)
	return t, err
}

// --- responses

// Response is a submitted response.
type Response struct {
	ID          int64
	OrgID       int64
	FormID      int64
	Version     int
	Ref         string
	CitizenID   int64
	Email       string
	Lang        string
	UnitID      int64
	State       string
	PublicLabel string
	Answers     Answers
	Anonymised  bool
	CreatedAt   time.Time
	UpdatedAt   time.Time // the last change: submission, state, correction
	raw         string
}

const respCols = `id, org_id, form_id, version, ref, citizen_id, email, lang, unit_id, state, public_label, answers, anonymised, created_at, updated_at`

func scanResponse(sc interface{ Scan(...any) error }) (Response, error) {
	var r Response
	var cid sql.NullInt64
	err := sc.Scan(&r.ID, &r.OrgID, &r.FormID, &r.Version, &r.Ref, &cid, &r.Email, &r.Lang, &r.UnitID, &r.State, &r.PublicLabel, &r.raw, &r.Anonymised, &r.CreatedAt, &r.UpdatedAt)
	r.CitizenID = cid.Int64
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	return r, err
}

func responseByRef(ctx context.Context, q store.Querier, ref string) (Response, error) {
	r, err := scanResponse(q.QueryRowContext(ctx, `SELECT `+respCols+` FROM forms_responses WHERE ref = ?`, strings.ToUpper(ref)))
	return r, notFound(err, "forms.error.response_not_found")
}

// refAlphabet has no 0/O, 1/I/L: references are read aloud on the phone.
const refAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

// newRef draws 8 characters (about 40 bits) until one is unused.
func newRef(ctx context.Context, q store.Querier) (string, error) {
	for range 10 {
		// Rejection sampling: bytes past the last whole multiple of the alphabet's size are
		// drawn again, so every character is equally likely (31^8 ≈ 2^39 references).
		out := make([]byte, 0, 8)
		limit := byte(256 - 256%len(refAlphabet))
		var b [16]byte
		for len(out) < 8 {
			_, _ = rand.Read(b[:])
			for _, x := range b {
				if x < limit && len(out) < 8 {
					out = append(out, refAlphabet[int(x)%len(refAlphabet)])
				}
			}
		}
		var n int
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM forms_responses WHERE ref = ?`, string(out)).Scan(&n); err != nil {
			return "", err
		}
		if n == 0 {
			return string(out), nil
		}
	}
	return "", errorf("no free reference after 10 draws")
}

func countResponses(ctx context.Context, q store.Querier, formID int64) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM forms_responses WHERE form_id = ?`, formID).Scan(&n)
	return n, err
}

// --- messages

// Message is one message of a response's thread.
type Message struct {
	FromAgent bool
	Author    string
	Body      string
	At        time.Time
}

func listMessages(ctx context.Context, q store.Querier, responseID int64) ([]Message, error) {
	rows, err := q.QueryContext(ctx, `SELECT from_agent, author, body, created_at FROM forms_messages WHERE response_id = ? ORDER BY id`, responseID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		var msg Message
		if err := rows.Scan(&msg.FromAgent, &msg.Author, &msg.Body, &msg.At); err != nil {
			return nil, err
		}
		out = append(out, msg)
	}
	return out, rows.Err()
}

func insertMessage(ctx context.Context, tx *store.Tx, responseID int64, msg Message) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO forms_messages (response_id, from_agent, author, body, created_at) VALUES (?, ?, ?, ?, ?)`,
		responseID, msg.FromAgent, msg.Author, msg.Body, msg.At)
	return err
}
