package forms

import (
	"archive/zip"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"parvis.org/parvis/kernel"
)

// Exports stream: rows are read one at a time from the database and written at once, so an
// export of a million responses never holds them in memory.

// eachRow calls f for every response of the list's filter (no paging), in creation order.
func (m *Module) eachRow(ctx context.Context, a *kernel.Agent, formID int64, flt filter, f func(Response) error) error {
	where, args, err := m.where(ctx, a, formID, flt, m.db.Dialect)
	if err != nil {
		return err
	}
	rows, err := m.db.Read().QueryContext(ctx, `SELECT `+prefixed(respCols)+` FROM forms_responses r WHERE `+where+` ORDER BY r.created_at, r.id`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		resp, err := scanResponse(rows)
		if err != nil {
			return err
		}
		if err := f(resp); err != nil {
			return err
		}
	}
	return rows.Err()
}

// exportColumns are every top-level question but explanatory blocks.
func exportColumns(d *Definition) []Question {
	var out []Question
	for _, st := range d.Steps {
		for _, sec := range st.Sections {
			for _, q := range sec.Questions {
				if q.Type != TInfo {
					if sec.Repeat != nil {
						q.Key = sec.Key
						q.Label = sectionTitle(&sec)
						q.Type = "repeat"
						if len(out) > 0 && out[len(out)-1].Key == sec.Key {
							continue
						}
					}
					out = append(out, q)
				}
			}
		}
	}
	return out
}

func (m *Module) exportSetup(w http.ResponseWriter, r *http.Request) (*kernel.Agent, Form, *Definition, filter, []string, bool) {
	a := kernel.AgentFrom(r.Context())
	f, v, err := m.formVersion(r.Context(), a.OrgID, r.PathValue("key"))
	if err != nil {
		m.fail(w, r, err)
		return nil, f, nil, filter{}, nil, false
	}
	flt, err := readFilter(r)
	if err != nil {
		m.fail(w, r, err)
		return nil, f, nil, flt, nil, false
	}
	lang := m.lang(r)
	head := []string{m.t(lang, "forms.col.ref"), m.t(lang, "forms.col.date"), m.t(lang, "forms.col.state"), m.t(lang, "forms.col.unit")}
	for _, q := range exportColumns(v.Def) {
		head = append(head, q.Label)
	}
	return a, f, v.Def, flt, head, true
}

// cells writes a response as export cells; answers are read with the version they were
// filled in.
func (m *Module) cells(ctx context.Context, defs map[int]*Definition, formID int64, resp Response, lang string, cols []Question) []string {
	def := defs[resp.Version]
	if def == nil {
		if v, err := getVersion(ctx, m.db.Read(), formID, resp.Version); err == nil {
			def, defs[resp.Version] = v.Def, v.Def
		}
	}
	out := []string{resp.Ref, resp.CreatedAt.Format("2006-01-02 15:04:05"), resp.State, fmt.Sprint(resp.UnitID)}
	if def == nil {
		return out
	}
	ans, _ := def.DecodeAnswers([]byte(resp.raw))
	for _, c := range cols {
		if c.Type == "repeat" {
			out = append(out, fmt.Sprint(len(maps(toAny(ans[c.Key])))))
			continue
		}
		q := &c
		if loc, ok := def.Question(c.Key); ok {
			q = loc.Q
		}
		out = append(out, safeCell(Display(q, ans[c.Key], m.t(lang, "forms.yes"), m.t(lang, "forms.no"))))
	}
	return out
}

// safeCell defuses spreadsheet formulas in citizens' answers (CSV injection).
func safeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (m *Module) exportCSV(w http.ResponseWriter, r *http.Request) {
	a, f, def, flt, head, ok := m.exportSetup(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.csv"`, f.Key))
	_, _ = io.WriteString(w, "\ufeff") // spreadsheets then read UTF-8
	cw := csv.NewWriter(w)
	cw.Comma = ';'
	_ = cw.Write(head)
	cols, defs, lang := exportColumns(def), map[int]*Definition{}, m.lang(r)
	n := 0
	err := m.eachRow(r.Context(), a, f.ID, flt, func(resp Response) error {
		if err := cw.Write(m.cells(r.Context(), defs, f.ID, resp, lang, cols)); err != nil {
			return err
		}
		if n++; n%500 == 0 {
			cw.Flush()
		}
		return cw.Error()
	})
	cw.Flush()
	if err != nil {
		m.log.ErrorContext(r.Context(), "forms: csv export", "err", err)
	}
}

func (m *Module) exportXLSX(w http.ResponseWriter, r *http.Request) {
	a, f, def, flt, head, ok := m.exportSetup(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.xlsx"`, f.Key))
	x, err := newXLSX(w)
	if err == nil {
		err = x.Row(head)
	}
	cols, defs, lang := exportColumns(def), map[int]*Definition{}, m.lang(r)
	if err == nil {
		err = m.eachRow(r.Context(), a, f.ID, flt, func(resp Response) error {
			return x.Row(m.cells(r.Context(), defs, f.ID, resp, lang, cols))
		})
	}
	if err == nil {
		err = x.Close()
	}
	if err != nil {
		// The answer has begun: the client sees a broken file, the log says why.
		m.log.ErrorContext(r.Context(), "forms: xlsx export", "err", err)
	}
}

func (m *Module) exportZIP(w http.ResponseWriter, r *http.Request) {
	a, f, _, flt, _, ok := m.exportSetup(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-fichiers.zip"`, f.Key))
	zw := zip.NewWriter(w)
	err := m.eachRow(r.Context(), a, f.ID, flt, func(resp Response) error {
		rows, err := m.db.Read().QueryContext(r.Context(), `SELECT id, name FROM forms_files WHERE response_id = ? ORDER BY created_at, id`, resp.ID)
		if err != nil {
			return err
		}
		type fe struct{ id, name string }
		var list []fe
		for rows.Next() {
			var x fe
			if err := rows.Scan(&x.id, &x.name); err != nil {
				rows.Close()
				return err
			}
			list = append(list, x)
		}
		rows.Close()
		for i, x := range list {
			fw, err := zw.Create(fmt.Sprintf("%s/%d-%s", resp.Ref, i+1, x.name))
			if err != nil {
				return err
			}
			src, err := os.Open(m.filePath(x.id))
			if err != nil {
				continue // a file lost on disk does not stop the export
			}
			_, err = io.Copy(fw, src)
			src.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		m.log.ErrorContext(r.Context(), "forms: zip export", "err", err)
	}
}
