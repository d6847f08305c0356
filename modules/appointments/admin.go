package appointments

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
	"parvis.org/parvis/modules/workflow"
)

// planningQuery is what the planning, print and export pages show: one place (or all of
// the agent's organisation), one unit (or all those of the agent's scope), a day or a week.
type planningQuery struct {
	PlaceID  int64
	UnitID   int64
	From, To time.Time
	Week     bool
	Day      string

	// Filled by resolve (planning.go): the agent's scope, and the units whose meeting
	// points and services are shown when filtered, and the meeting points granted alone.
	scope    planScope
	Units    []int64
	Places   []int64
	filtered bool
}

func (m *Module) planningQuery(r *http.Request) (planningQuery, error) {
	q := planningQuery{Day: r.FormValue("jour"), Week: r.FormValue("vue") == "semaine"}
	var err error
	if v := r.FormValue("lieu"); v != "" {
		if q.PlaceID, err = strconv.ParseInt(v, 10, 64); err != nil || q.PlaceID < 0 {
			return q, errs.OnField(errs.Invalid, "lieu", "appointments.error.no_place")
		}
	}
	if v := r.FormValue("unite"); v != "" {
		if q.UnitID, err = strconv.ParseInt(v, 10, 64); err != nil || q.UnitID < 0 {
			return q, errs.OnField(errs.Invalid, "unite", "appointments.error.no_unit")
		}
	}
	if q.Day == "" {
		q.Day = m.now().In(m.loc).Format(dayLayout)
	}
	d, err := time.ParseInLocation(dayLayout, q.Day, m.loc)
	if err != nil {
		return q, errs.OnField(errs.Invalid, "jour", "appointments.error.date")
	}
	q.From, q.To = d, d.AddDate(0, 0, 1)
	if q.Week {
		q.From = d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
		q.To = q.From.AddDate(0, 0, 7)
	}
	return q, nil
}

// planning lists the confirmed (and cancelled, for the record) appointments of the query in
// the agent's organisation, within the query's units (see resolve).
func (m *Module) planning(ctx context.Context, org int64, q planningQuery) ([]*Appointment, error) {
	clause, args := q.unitClause()
	rows, err := m.db.Read().QueryContext(ctx, `SELECT `+apptCols+apptFrom+`WHERE a.org_id = ? AND a.status IN ('confirmed', 'cancelled')
		AND a.starts_at >= ? AND a.starts_at < ? AND (? = 0 OR a.place_id = ?)`+clause+`
		ORDER BY a.starts_at, a.id LIMIT 5000`, append([]any{org, q.From.UTC(), q.To.UTC(), q.PlaceID, q.PlaceID}, args...)...)
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

func (m *Module) planningData(r *http.Request) (map[string]any, planningQuery, error) {
	ctx, lang := r.Context(), m.lang(r)
	ag := kernel.AgentFrom(ctx)
	q, err := m.planningQuery(r)
	if err != nil {
		return nil, q, err
	}
	if err := m.resolve(ctx, ag, &q); err != nil {
		return nil, q, err
	}
	places, placeOpts, unitOpts, err := m.planningFilters(ctx, ag, q, lang)
	if err != nil {
		return nil, q, err
	}
	data := map[string]any{"Places": placeOpts, "Units": unitOpts, "Query": q, "DayLabel": web.FormatDate(lang, q.From),
		"Links": planningLinks(q), "Views": []map[string]string{{"Value": "jour", "Label": m.i18n.T(lang, "appointments.planning.view_day")},
			{"Value": "semaine", "Label": m.i18n.T(lang, "appointments.planning.view_week")}}}
	if q.Week {
		data["WeekLabel"] = m.i18n.T(lang, "appointments.planning.week_of", "from", web.FormatDate(lang, q.From), "to", web.FormatDate(lang, q.To.AddDate(0, 0, -1)))
		shown := places
		if q.filtered || q.PlaceID != 0 {
			// The meeting points of the chosen unit (or the agent's), or the one chosen.
			if shown, err = m.visiblePlaces(ctx, ag.OrgID, q.Units, q.Places, q.filtered); err != nil {
				return nil, q, err
			}
			if q.PlaceID != 0 {
				shown = slices.DeleteFunc(shown, func(p Place) bool { return p.ID != q.PlaceID })
			}
		}
		grids, err := m.weekGrids(ctx, ag.OrgID, q, shown, lang)
		if err != nil {
			return nil, q, err
		}
		data["Grids"] = grids
		return data, q, nil
	}
	list, err := m.planning(ctx, ag.OrgID, q)
	if err != nil {
		return nil, q, err
	}
	type row struct {
		A          *Appointment
		Time, Date string
	}
	var rows []row
	for _, a := range list {
		t := a.Start.In(m.loc)
		rows = append(rows, row{A: a, Time: t.Format("15:04"), Date: web.FormatDate(lang, t)})
	}
	data["Rows"] = rows
	return data, q, nil
}

func (m *Module) adminPlanning(w http.ResponseWriter, r *http.Request) { m.renderPlanning(w, r, false) }

func (m *Module) adminPrint(w http.ResponseWriter, r *http.Request) { m.renderPlanning(w, r, true) }

func (m *Module) adminFail(w http.ResponseWriter, r *http.Request, err error) {
	if e, ok := errs.As(err); ok {
		m.views.Render(w, r, web.Page{Name: "appointments/message.html", Layout: "backoffice", Title: "appointments.title", Status: web.StatusOf(err),
			Data: map[string]any{"Message": m.i18n.T(m.lang(r), e.Key, e.Args...)}})
		return
	}
	m.log.Error("appointments admin", "path", r.URL.Path, "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

func (m *Module) exportRows(r *http.Request) ([][]string, error) {
	ag := kernel.AgentFrom(r.Context())
	q, err := m.planningQuery(r)
	if err != nil {
		return nil, err
	}
	if r.FormValue("vue") == "" {
		q.Week = true
	}
	if err := m.resolve(r.Context(), ag, &q); err != nil {
		return nil, err
	}
	list, err := m.planning(r.Context(), ag.OrgID, q)
	if err != nil {
		return nil, err
	}
	l := m.lang(r)
	out := [][]string{{m.i18n.T(l, "appointments.field.reference"), m.i18n.T(l, "appointments.field.when"), m.i18n.T(l, "appointments.field.service"),
		m.i18n.T(l, "appointments.field.place"), m.i18n.T(l, "appointments.field.name"), m.i18n.T(l, "appointments.field.email"),
		m.i18n.T(l, "appointments.field.phone"), m.i18n.T(l, "appointments.field.status"), m.i18n.T(l, "appointments.field.state")}}
	for _, a := range list {
		out = append(out, []string{a.Ref, a.Start.In(m.loc).Format("2006-01-02 15:04"), a.ServiceName, a.PlaceName, safeCell(a.Name),
			safeCell(a.Email), safeCell(a.Phone), a.Status, a.State})
	}
	return out, nil
}

// safeCell defuses spreadsheet formulas typed by citizens.
func safeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (m *Module) adminCSV(w http.ResponseWriter, r *http.Request) {
	rows, err := m.exportRows(r)
	if err != nil {
		m.adminFail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="rendez-vous.csv"`)
	cw := csv.NewWriter(w)
	cw.Comma = ';' // what French spreadsheets expect
	_ = cw.WriteAll(rows)
}

func (m *Module) adminXLSX(w http.ResponseWriter, r *http.Request) {
	rows, err := m.exportRows(r)
	if err != nil {
		m.adminFail(w, r, err)
		return
	}
	f := excelize.NewFile()
	defer f.Close()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		m.adminFail(w, r, err)
		return
	}
	for i, row := range rows {
		cells := make([]any, len(row))
		for k, c := range row {
			cells[k] = c
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := sw.SetRow(cell, cells); err != nil {
			m.adminFail(w, r, err)
			return
		}
	}
	if err := sw.Flush(); err != nil {
		m.adminFail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
	w.Header().Set("Content-Disposition", `attachment; filename="rendez-vous.xlsx"`)
	_ = f.Write(w)
}

// Stats are the figures of a period per service and place.
type Stats struct {
	Service, Place          string
	Capacity, Booked        int
	Confirmed, Cancelled    int
	NoShow, Done            int
	FillRate, NoShowRate    float64
	CancelRate, LeadTimeDay float64
}

// Statistics computes fill rate, cancellations, no-show rate and lead time (days between
// booking and appointment) per service and place over [from, to), within the units of q
// (resolved by resolve: the agent's scope, or the unit chosen; the zero query: everything).
func (m *Module) Statistics(ctx context.Context, org int64, from, to time.Time, q planningQuery) ([]Stats, error) {
	clause, uargs := q.unitClause()
	rows, err := m.db.Read().QueryContext(ctx, `SELECT s.name, p.name, SUM(sl.capacity), SUM(sl.booked)
		FROM appt_slots sl JOIN appt_services s ON s.id = sl.service_id JOIN appt_places p ON p.id = sl.place_id
		WHERE p.org_id = ? AND sl.starts_at >= ? AND sl.starts_at < ?`+clause+` GROUP BY s.name, p.name ORDER BY s.name, p.name`,
		append([]any{org, from.UTC(), to.UTC()}, uargs...)...)
	if err != nil {
		return nil, err
	}
	idx := map[string]*Stats{}
	var out []*Stats
	for rows.Next() {
		st := &Stats{}
		if err := rows.Scan(&st.Service, &st.Place, &st.Capacity, &st.Booked); err != nil {
			rows.Close()
			return nil, err
		}
		idx[st.Service+"\x00"+st.Place] = st
		out = append(out, st)
	}
	rows.Close()
	rows, err = m.db.Read().QueryContext(ctx, `SELECT s.name, p.name, a.status, a.state, a.created_at, a.starts_at`+apptFrom+`
		WHERE a.org_id = ? AND a.starts_at >= ? AND a.starts_at < ? AND a.status IN ('confirmed', 'cancelled')`+clause,
		append([]any{org, from.UTC(), to.UTC()}, uargs...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	lead := map[*Stats]float64{}
	for rows.Next() {
		var sn, pn, status, state string
		var created, start time.Time
		if err := rows.Scan(&sn, &pn, &status, &state, &created, &start); err != nil {
			return nil, err
		}
		st := idx[sn+"\x00"+pn]
		if st == nil {
			st = &Stats{Service: sn, Place: pn}
			idx[sn+"\x00"+pn] = st
			out = append(out, st)
		}
		if status == StatusCancelled {
			st.Cancelled++
			continue
		}
		st.Confirmed++
		lead[st] += start.Sub(created).Hours() / 24
		switch state {
		case "no_show":
			st.NoShow++
		case "done", "arrived":
			st.Done++
		}
	}
	res := make([]Stats, 0, len(out))
	for _, st := range out {
		if st.Capacity > 0 {
			st.FillRate = float64(st.Booked) / float64(st.Capacity)
		}
		if st.NoShow+st.Done > 0 {
			st.NoShowRate = float64(st.NoShow) / float64(st.NoShow+st.Done)
		}
		if st.Confirmed+st.Cancelled > 0 {
			st.CancelRate = float64(st.Cancelled) / float64(st.Confirmed+st.Cancelled)
		}
		if st.Confirmed > 0 {
			st.LeadTimeDay = lead[st] / float64(st.Confirmed)
		}
		res = append(res, *st)
	}
	return res, rows.Err()
}

func (m *Module) adminStats(w http.ResponseWriter, r *http.Request) {
	ag := kernel.AgentFrom(r.Context())
	now := m.now().In(m.loc)
	from := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, m.loc)
	if v := r.FormValue("mois"); v != "" {
		t, err := time.ParseInLocation("2006-01", v, m.loc)
		if err != nil {
			m.adminFail(w, r, errs.OnField(errs.Invalid, "mois", "appointments.error.date"))
			return
		}
		from = t
	}
	// The same unit rights and filter as the planning: an agent whose planning right is
	// scoped to units sees only their meeting points and services.
	q := planningQuery{}
	if v := r.FormValue("unite"); v != "" {
		var err error
		if q.UnitID, err = strconv.ParseInt(v, 10, 64); err != nil || q.UnitID < 0 {
			m.adminFail(w, r, errs.OnField(errs.Invalid, "unite", "appointments.error.no_unit"))
			return
		}
	}
	if err := m.resolve(r.Context(), ag, &q); err != nil {
		m.adminFail(w, r, err)
		return
	}
	st, err := m.Statistics(r.Context(), ag.OrgID, from, from.AddDate(0, 1, 0), q)
	if err != nil {
		m.adminFail(w, r, err)
		return
	}
	_, _, unitOpts, err := m.planningFilters(r.Context(), ag, q, m.lang(r))
	if err != nil {
		m.adminFail(w, r, err)
		return
	}
	var rows [][]any
	pct := func(f float64) string { return fmt.Sprintf("%.0f %%", f*100) }
	for _, s := range st {
		rows = append(rows, []any{s.Service + " – " + s.Place, pct(s.FillRate), s.Confirmed, s.Cancelled, pct(s.NoShowRate), fmt.Sprintf("%.1f", s.LeadTimeDay)})
	}
	m.views.Render(w, r, web.Page{Name: "appointments/stats.html", Layout: "backoffice", Title: "appointments.stats.title",
		Data: map[string]any{"Rows": rows, "Month": from.Format("2006-01"), "Units": unitOpts}})
}

func (m *Module) agentAppt(w http.ResponseWriter, r *http.Request) (*Appointment, bool) {
	ag := kernel.AgentFrom(r.Context())
	a, err := m.apptWhere(r.Context(), m.db.Read(), `a.ref = ? AND a.org_id = ?`, r.PathValue("ref"), ag.OrgID)
	if err != nil || !m.apptInScope(r.Context(), ag, a) {
		// Another unit's appointment is as unknown as another town's.
		m.adminFail(w, r, errs.New(errs.NotFound, "appointments.error.no_appointment"))
		return nil, false
	}
	return a, true
}

func (m *Module) adminAppointment(w http.ResponseWriter, r *http.Request) {
	a, ok := m.agentAppt(w, r)
	if !ok {
		return
	}
	ag := kernel.AgentFrom(r.Context())
	var actions []workflow.Action
	if m.wf != nil {
		actions, _ = m.wf.AvailableActions(r.Context(), ag, workflow.Ref{Type: resourceType, ID: a.Ref})
	}
	t := a.Start.In(m.loc)
	m.views.Render(w, r, web.Page{Name: "appointments/appointment.html", Layout: "backoffice", Title: "appointments.appointment.title",
		Data: map[string]any{"Appt": a, "When": web.FormatDate(m.lang(r), t) + " " + t.Format("15:04"), "Actions": actions,
			"Answers": m.answerLinesOf(r.Context(), a, m.lang(r)), "Ants": strings.Join(a.AntsIDs, ", ")}})
}

// CheckIn runs a check-in action (arrive, no_show, done) through the workflow engine and
// mirrors the resulting state on the appointment.
func (m *Module) CheckIn(ctx context.Context, agent *kernel.Agent, ref, action string) error {
	a, err := m.apptWhere(ctx, m.db.Read(), `a.ref = ? AND a.org_id = ?`, ref, agent.OrgID)
	if err != nil {
		return err
	}
	if !m.apptInScope(ctx, agent, a) {
		return errs.New(errs.NotFound, "appointments.error.no_appointment")
	}
	if a.Status != StatusConfirmed {
		return errs.New(errs.Conflict, "appointments.error.already_cancelled")
	}
	svc, err := m.Service(ctx, m.db.Read(), a.ServiceID)
	if err != nil {
		return err
	}
	place, err := m.Place(ctx, m.db.Read(), a.PlaceID)
	if err != nil {
		return err
	}
	return m.inTx(ctx, func(tx *store.Tx) error {
		if err := m.syncWorkflow(ctx, tx, a, &svc, &place); err != nil {
			return err
		}
		st, err := m.wf.RunTx(ctx, tx, agent, workflow.Ref{Type: resourceType, ID: a.Ref}, action, workflow.Input{})
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE appt_appointments SET state = ? WHERE id = ?`, st.State, a.ID)
		return err
	})
}

func (m *Module) adminCheckIn(w http.ResponseWriter, r *http.Request) {
	f, err := web.ParseForm(r)
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if err := m.CheckIn(r.Context(), kernel.AgentFrom(r.Context()), r.PathValue("ref"), f.Get("action")); err != nil {
		m.adminFail(w, r, err)
		return
	}
	back := f.Get("back")
	if !strings.HasPrefix(back, "/admin/rdv/") {
		back = "/admin/rdv/rendez-vous/" + r.PathValue("ref")
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (m *Module) adminCancel(w http.ResponseWriter, r *http.Request) {
	a, ok := m.agentAppt(w, r)
	if !ok {
		return
	}
	f, err := web.ParseForm(r)
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if _, err := m.CancelByAgent(r.Context(), kernel.AgentFrom(r.Context()), a.ID, f.Get("message")); err != nil {
		m.adminFail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/rdv/rendez-vous/"+a.Ref, http.StatusSeeOther)
}

// BlockSlot blocks (or unblocks) a slot: nobody may book it, appointments already in it stay.
func (m *Module) BlockSlot(ctx context.Context, agent *kernel.Agent, slotID int64, blocked bool) error {
	sc, err := m.planScope(ctx, agent)
	if err != nil {
		return err
	}
	if !sc.All {
		var place, pu, su int64
		if err := m.db.Read().QueryRowContext(ctx, `SELECT p.id, p.unit_id, s.unit_id FROM appt_slots sl JOIN appt_places p ON p.id = sl.place_id
			JOIN appt_services s ON s.id = sl.service_id WHERE sl.id = ? AND p.org_id = ?`, slotID, agent.OrgID).Scan(&place, &pu, &su); err != nil || !sc.allows(place, pu, su) {
			return errs.New(errs.NotFound, "appointments.error.no_slot")
		}
	}
	return m.db.InTx(ctx, func(tx *store.Tx) error {
		tx.AfterCommit(m.slotsChanged)
		res, err := tx.ExecContext(ctx, `UPDATE appt_slots SET blocked = ? WHERE id = ? AND place_id IN (SELECT id FROM appt_places WHERE org_id = ?)`,
			b2i(blocked), slotID, agent.OrgID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errs.New(errs.NotFound, "appointments.error.no_slot")
		}
		return m.audit.Record(ctx, tx, kernel.AuditEntry{Action: "appointments.block", ResourceType: "appointment_slot",
			ResourceID: strconv.FormatInt(slotID, 10), After: map[string]any{"blocked": blocked}})
	})
}

func (m *Module) adminBlock(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r, "id")
	if !ok {
		m.adminFail(w, r, errs.New(errs.NotFound, "appointments.error.no_slot"))
		return
	}
	if err := m.BlockSlot(r.Context(), kernel.AgentFrom(r.Context()), id, r.FormValue("bloquer") != "0"); err != nil {
		m.adminFail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/rdv/planning", http.StatusSeeOther)
}

// CapacityError refuses lowering a day's capacity below what is booked, naming the
// appointments in the way.
type CapacityError struct{ InTheWay []*Appointment }

func (e *CapacityError) Error() string { return "capacity below booked" }
func (e *CapacityError) Unwrap() error {
	return errs.OnField(errs.Conflict, "capacity", "appointments.error.capacity_below_booked", "n", len(e.InTheWay))
}

// SetDayCapacity changes the capacity of every slot of one day for a service at a place,
// refusing to go below the places already taken in any of them.
func (m *Module) SetDayCapacity(ctx context.Context, agent *kernel.Agent, placeID, serviceID int64, day string, capacity int) error {
	if _, err := time.Parse(dayLayout, day); err != nil {
		return errs.OnField(errs.Invalid, "day", "appointments.error.date")
	}
	if capacity < 1 || capacity > 10000 {
		return errs.OnField(errs.Invalid, "capacity", "appointments.error.capacity")
	}
	if err := m.Ensure(ctx, placeID, serviceID, day); err != nil {
		return err
	}
	err := m.db.InTx(ctx, func(tx *store.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+apptCols+apptFrom+`WHERE a.status IN ('held', 'confirmed') AND a.id IN
			(SELECT appointment_id FROM appt_appointment_slots WHERE slot_id IN
			 (SELECT id FROM appt_slots WHERE place_id = ? AND service_id = ? AND day = ? AND booked > ?)) ORDER BY a.starts_at`, placeID, serviceID, day, capacity)
		if err != nil {
			return err
		}
		var inWay []*Appointment
		for rows.Next() {
			a, err := scanAppt(rows)
			if err != nil {
				rows.Close()
				return err
			}
			inWay = append(inWay, a)
		}
		rows.Close()
		if len(inWay) > 0 {
			return &CapacityError{InTheWay: inWay}
		}
		tx.AfterCommit(m.slotsChanged)
		if _, err := tx.ExecContext(ctx, `UPDATE appt_slots SET capacity = ? WHERE place_id = ? AND service_id = ? AND day = ?`, capacity, placeID, serviceID, day); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO appt_days (place_id, service_id, day, capacity) VALUES (?, ?, ?, ?)
			ON CONFLICT (place_id, service_id, day) DO UPDATE SET capacity = excluded.capacity`, placeID, serviceID, day, capacity); err != nil {
			return err
		}
		return m.audit.Record(ctx, tx, kernel.AuditEntry{Action: "appointments.capacity", ResourceType: "appointment_day",
			ResourceID: fmt.Sprintf("%d/%d/%s", placeID, serviceID, day), After: map[string]any{"capacity": capacity}})
	})
	return err
}

func (m *Module) adminCapacity(w http.ResponseWriter, r *http.Request) {
	f, err := web.ParseForm(r)
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	place, _ := strconv.ParseInt(f.Get("lieu"), 10, 64)
	svc, _ := strconv.ParseInt(f.Get("service"), 10, 64)
	capacity, _ := strconv.Atoi(f.Get("capacite"))
	ag := kernel.AgentFrom(r.Context())
	p, err := m.Place(r.Context(), m.db.Read(), place)
	if err != nil || p.OrgID != ag.OrgID {
		m.adminFail(w, r, errs.New(errs.NotFound, "appointments.error.no_place"))
		return
	}
	if sv, err := m.Service(r.Context(), m.db.Read(), svc); err != nil || sv.OrgID != ag.OrgID {
		m.adminFail(w, r, errs.New(errs.NotFound, "appointments.error.no_service"))
		return
	} else if sc, err := m.planScope(r.Context(), ag); err != nil || !sc.allows(p.ID, p.UnitID, sv.UnitID) {
		m.adminFail(w, r, errOtherUnit)
		return
	}
	err = m.SetDayCapacity(r.Context(), ag, place, svc, f.Get("jour"), capacity)
	if ce, ok := err.(*CapacityError); ok {
		var rows []map[string]string
		for _, a := range ce.InTheWay {
			rows = append(rows, map[string]string{"Ref": a.Ref, "When": a.Start.In(m.loc).Format("15:04"), "Name": a.Name})
		}
		m.views.Render(w, r, web.Page{Name: "appointments/capacity.html", Layout: "backoffice", Title: "appointments.capacity.title",
			Status: http.StatusConflict, Data: map[string]any{"InTheWay": rows, "Capacity": capacity}})
		return
	}
	if err != nil {
		m.adminFail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/rdv/planning?jour="+url.QueryEscape(f.Get("jour"))+"&lieu="+f.Get("lieu"), http.StatusSeeOther)
}

// BookOnBehalf books for a citizen at an agent's desk or on the phone; overbooking needs
// appointments.overbook and is audited.
func (m *Module) BookOnBehalf(ctx context.Context, agent *kernel.Agent, slotID int64, unitsN int, d Details, overbook bool) (*Appointment, error) {
	if overbook && !m.auth.Can(ctx, agent, PermOverbook, nil) {
		return nil, errs.New(errs.Forbidden, "appointments.error.overbook")
	}
	s, err := m.Slot(ctx, m.db.Read(), slotID)
	if err != nil {
		return nil, err
	}
	if p, err := m.Place(ctx, m.db.Read(), s.PlaceID); err != nil || p.OrgID != agent.OrgID {
		return nil, errs.New(errs.NotFound, "appointments.error.no_slot")
	}
	d.AgentID = agent.ID
	a, err := m.Book(ctx, HoldRequest{SlotID: slotID, Units: unitsN, Overbook: overbook}, d)
	if err != nil {
		return nil, err
	}
	err = m.db.InTx(ctx, func(tx *store.Tx) error {
		return m.audit.Record(ctx, tx, kernel.AuditEntry{Action: "appointments.book_on_behalf", ResourceType: "appointment", ResourceID: a.Ref,
			After: map[string]any{"slot": slotID, "overbook": overbook, "email": a.Email}})
	})
	return a, err
}

func (m *Module) adminBook(w http.ResponseWriter, r *http.Request) {
	f, err := web.ParseForm(r)
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	slot, _ := strconv.ParseInt(f.Get("creneau"), 10, 64)
	n, _ := strconv.Atoi(f.Get("personnes"))
	a, err := m.BookOnBehalf(r.Context(), kernel.AgentFrom(r.Context()), slot, n,
		Details{Name: f.Get("name"), Email: f.Get("email"), Phone: f.Get("phone"), AntsIDs: f.Get("ants_ids")}, f.Get("surreservation") == "1")
	if err != nil {
		m.adminFail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/rdv/rendez-vous/"+a.Ref, http.StatusSeeOther)
}

func (m *Module) adminSettings(w http.ResponseWriter, r *http.Request) {
	ag := kernel.AgentFrom(r.Context())
	svcs, err := m.Services(r.Context(), ag.OrgID, false)
	if err != nil {
		m.adminFail(w, r, err)
		return
	}
	places, err := m.Places(r.Context(), ag.OrgID, 0)
	if err != nil {
		m.adminFail(w, r, err)
		return
	}
	tpls, err := m.allTemplates(r.Context(), ag.OrgID)
	if err != nil {
		m.adminFail(w, r, err)
		return
	}
	st, _ := m.Settings(r.Context(), m.db.Read(), ag.OrgID)
	year := m.now().In(m.loc).Year()
	m.views.Render(w, r, web.Page{Name: "appointments/settings.html", Layout: "backoffice", Title: "appointments.settings.title",
		Form: web.NewForm(url.Values{}), Data: map[string]any{"Services": svcs, "Places": places, "Templates": tpls,
			"Holidays": Holidays(year, st.AlsaceMoselle), "Year": year}})
}

func (m *Module) adminClosing(w http.ResponseWriter, r *http.Request) {
	f, err := web.ParseForm(r)
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	ag := kernel.AgentFrom(r.Context())
	place, _ := strconv.ParseInt(f.Get("lieu"), 10, 64)
	if err := m.AddClosing(r.Context(), ag.OrgID, place, f.Get("jour"), f.Get("motif")); err != nil {
		m.adminFail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/rdv/reglages", http.StatusSeeOther)
}
