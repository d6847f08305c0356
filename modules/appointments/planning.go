package appointments

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/web"
)

// Agents' planning per meeting point and per agent unit, by day (the list of appointments,
// with check-in) and by week (a grid of days × times with the places taken over the
// capacity, each day linking to its list).
//
// Rights: appointments.planning may be granted on the whole organisation, on units (a role
// scoped to a unit, or to the agent's own units), or on one meeting point (a grant on the
// resource type "place", its ID as resource). A meeting point or a service tied to a unit
// (Place.UnitID, Service.UnitID) belongs to that unit's planning, and to its parent units';
// an agent whose grant is scoped sees the appointments, slots and meeting points of the
// units and meeting points of that scope only, and is refused any other planning or
// meeting point.

// planScope is where an agent may see plannings.
type planScope struct {
	All    bool
	Units  []int64 // sub-units included
	Places []int64 // meeting points granted one by one
}

// none reports whether the scope admits nothing.
func (sc planScope) none() bool { return !sc.All && len(sc.Units) == 0 && len(sc.Places) == 0 }

// allows reports whether something at meeting point place, tied to these units (0: none),
// is in the scope.
func (sc planScope) allows(place, placeUnit, serviceUnit int64) bool {
	return sc.All || slices.Contains(sc.Places, place) ||
		(placeUnit != 0 && slices.Contains(sc.Units, placeUnit)) || (serviceUnit != 0 && slices.Contains(sc.Units, serviceUnit))
}

func (m *Module) planScope(ctx context.Context, ag *kernel.Agent) (planScope, error) {
	if m.auth == nil || ag == nil {
		return planScope{}, nil
	}
	sc, err := m.auth.Scope(ctx, ag, PermPlanning)
	if err != nil {
		return planScope{}, err
	}
	out := planScope{All: sc.All, Units: sc.UnitIDs}
	for _, id := range sc.ResourceIDs {
		// Grants on one meeting point name its ID; anything else names nothing here.
		if n, err := strconv.ParseInt(id, 10, 64); err == nil && n > 0 {
			out.Places = append(out.Places, n)
		}
	}
	return out, nil
}

var errOtherUnit = errs.New(errs.Forbidden, "appointments.error.other_unit")

// units lists the organisation's units in tree order, through the auth module's published
// directory (none without it).
func (m *Module) units(ctx context.Context, org int64) ([]auth.Unit, error) {
	if m.dir == nil {
		return nil, nil
	}
	return m.dir.Units(ctx, org)
}

// withSubUnits returns id and the units below it.
func withSubUnits(all []auth.Unit, id int64) []int64 {
	out := []int64{id}
	for changed := true; changed; {
		changed = false
		for _, u := range all {
			if u.ParentID != 0 && slices.Contains(out, u.ParentID) && !slices.Contains(out, u.ID) {
				out = append(out, u.ID)
				changed = true
			}
		}
	}
	return out
}

// resolve checks the query against the agent's rights and fills its unit filter: the chosen
// unit (with its sub-units), else the agent's scope when it is limited. A unit or a meeting
// point out of the agent's scope is refused.
func (m *Module) resolve(ctx context.Context, ag *kernel.Agent, q *planningQuery) error {
	sc, err := m.planScope(ctx, ag)
	if err != nil {
		return err
	}
	q.scope = sc
	if sc.none() {
		return errOtherUnit
	}
	if q.UnitID != 0 {
		all, err := m.units(ctx, ag.OrgID)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(all, func(u auth.Unit) bool { return u.ID == q.UnitID }) {
			return errs.OnField(errs.NotFound, "unite", "appointments.error.no_unit")
		}
		if !sc.All && !slices.Contains(sc.Units, q.UnitID) {
			return errOtherUnit
		}
		q.Units, q.filtered = withSubUnits(all, q.UnitID), true
	} else if !sc.All {
		q.Units, q.Places, q.filtered = sc.Units, sc.Places, true
	}
	if q.PlaceID != 0 {
		p, err := m.Place(ctx, m.db.Read(), q.PlaceID)
		if err != nil || p.OrgID != ag.OrgID {
			return errs.OnField(errs.NotFound, "lieu", "appointments.error.no_place")
		}
		if !sc.All {
			vis, err := m.visiblePlaces(ctx, ag.OrgID, sc.Units, sc.Places, true)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(vis, func(v Place) bool { return v.ID == p.ID }) {
				return errOtherUnit
			}
		}
	}
	return nil
}

// unitClause is the SQL filter of rows joined with appt_places p and appt_services s: the
// query's units and meeting points.
func (q planningQuery) unitClause() (string, []any) {
	if !q.filtered {
		return "", nil
	}
	var terms []string
	var args []any
	in := func(col string, ids []int64) {
		if len(ids) == 0 {
			return
		}
		terms = append(terms, col+` IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")+`)`)
		for _, id := range ids {
			args = append(args, id)
		}
	}
	in("p.unit_id", q.Units)
	in("s.unit_id", q.Units)
	in("p.id", q.Places)
	if len(terms) == 0 {
		return ` AND 1 = 0`, nil
	}
	return ` AND (` + strings.Join(terms, " OR ") + `)`, args
}

// visiblePlaces lists the active meeting points tied to units (or offering a service tied
// to them), and those named in places; all of the organisation's when filtered is false.
func (m *Module) visiblePlaces(ctx context.Context, org int64, units, places []int64, filtered bool) ([]Place, error) {
	granted := places
	all, err := m.Places(ctx, org, 0)
	if err != nil || !filtered {
		return all, err
	}
	rows, err := m.db.Read().QueryContext(ctx, `SELECT DISTINCT o.place_id, s.unit_id FROM appt_offers o JOIN appt_services s ON s.id = o.service_id
		WHERE s.org_id = ? AND s.unit_id <> 0`, org)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	offered := map[int64]bool{}
	for rows.Next() {
		var pid, unit int64
		if err := rows.Scan(&pid, &unit); err != nil {
			return nil, err
		}
		if slices.Contains(units, unit) {
			offered[pid] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []Place
	for _, p := range all {
		if (p.UnitID != 0 && slices.Contains(units, p.UnitID)) || offered[p.ID] || slices.Contains(granted, p.ID) {
			out = append(out, p)
		}
	}
	return out, nil
}

// --- week grid

type weekDay struct {
	Day, Label, Long, Href string
}

type weekCell struct {
	Day, Time                 string
	Booked, Capacity, Blocked int
	Has                       bool
}

// Full reports whether no place is left in the cell.
func (c weekCell) Full() bool { return c.Has && c.Booked >= c.Capacity }

type weekRow struct {
	Time  string
	Cells []weekCell
}

type weekGrid struct {
	Place  Place
	Days   []weekDay
	Rows   []weekRow
	Totals []weekCell
}

var weekdayKeys = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// weekGrids computes, for each meeting point, the week's slots by time and day: places
// taken (holds in progress included: they take a place until they expire) over capacity,
// summed over the services of the planning's units.
func (m *Module) weekGrids(ctx context.Context, org int64, q planningQuery, places []Place, lang string) ([]weekGrid, error) {
	last := q.To.AddDate(0, 0, -1).Format(dayLayout)
	// Slots are made on demand: make the week's (from today on) for the offers shown.
	rows, err := m.db.Read().QueryContext(ctx, `SELECT o.place_id, o.service_id, p.unit_id, s.unit_id FROM appt_offers o
		JOIN appt_places p ON p.id = o.place_id JOIN appt_services s ON s.id = o.service_id WHERE p.org_id = ? AND s.active = 1`, org)
	if err != nil {
		return nil, err
	}
	type offer struct{ place, service int64 }
	var offers []offer
	for rows.Next() {
		var o offer
		var pu, su int64
		if err := rows.Scan(&o.place, &o.service, &pu, &su); err != nil {
			rows.Close()
			return nil, err
		}
		if !q.filtered || slices.Contains(q.Units, pu) || slices.Contains(q.Units, su) || slices.Contains(q.Places, o.place) {
			offers = append(offers, o)
		}
	}
	rows.Close()
	shown := map[int64]bool{}
	for _, p := range places {
		shown[p.ID] = true
	}
	if last >= m.now().In(m.loc).Format(dayLayout) {
		for _, o := range offers {
			if shown[o.place] {
				if err := m.Ensure(ctx, o.place, o.service, last); err != nil && errs.CodeOf(err) != errs.NotFound {
					return nil, err
				}
			}
		}
	}
	clause, args := q.unitClause()
	rows, err = m.db.Read().QueryContext(ctx, `SELECT sl.place_id, sl.day, sl.starts_at, sl.capacity, sl.booked, sl.blocked
		FROM appt_slots sl JOIN appt_places p ON p.id = sl.place_id JOIN appt_services s ON s.id = sl.service_id
		WHERE p.org_id = ? AND sl.day >= ? AND sl.day <= ? AND (? = 0 OR sl.place_id = ?)`+clause+` ORDER BY sl.start_s`,
		append([]any{org, q.From.Format(dayLayout), last, q.PlaceID, q.PlaceID}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type key struct {
		place      int64
		day, clock string
	}
	cells := map[key]*weekCell{}
	times := map[int64][]string{}
	for rows.Next() {
		var pid int64
		var day string
		var at time.Time
		var capacity, booked, blocked int
		if err := rows.Scan(&pid, &day, &at, &capacity, &booked, &blocked); err != nil {
			return nil, err
		}
		clock := at.In(m.loc).Format("15:04")
		k := key{pid, day, clock}
		c := cells[k]
		if c == nil {
			c = &weekCell{Day: day, Time: clock, Has: true}
			cells[k] = c
			if !slices.Contains(times[pid], clock) {
				times[pid] = append(times[pid], clock)
			}
		}
		c.Booked += booked
		c.Capacity += capacity
		if blocked != 0 {
			c.Blocked++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []weekGrid
	for _, p := range places {
		g := weekGrid{Place: p}
		base := url.Values{"lieu": {strconv.FormatInt(p.ID, 10)}}
		if q.UnitID != 0 {
			base.Set("unite", strconv.FormatInt(q.UnitID, 10))
		}
		for d := q.From; d.Before(q.To); d = d.AddDate(0, 0, 1) {
			day := d.Format(dayLayout)
			base.Set("jour", day)
			g.Days = append(g.Days, weekDay{Day: day, Label: m.i18n.T(lang, "appointments.day."+weekdayKeys[d.Weekday()]) + " " + d.Format("02/01"),
				Long: web.FormatDate(lang, d), Href: "/admin/rdv/planning?" + base.Encode()})
			g.Totals = append(g.Totals, weekCell{Day: day})
		}
		ts := times[p.ID]
		slices.Sort(ts)
		for _, clock := range ts {
			row := weekRow{Time: clock}
			for i, wd := range g.Days {
				c := weekCell{Day: wd.Day, Time: clock}
				if x := cells[key{p.ID, wd.Day, clock}]; x != nil {
					c = *x
					t := &g.Totals[i]
					t.Has, t.Booked, t.Capacity, t.Blocked = true, t.Booked+c.Booked, t.Capacity+c.Capacity, t.Blocked+c.Blocked
				}
				row.Cells = append(row.Cells, c)
			}
			g.Rows = append(g.Rows, row)
		}
		out = append(out, g)
	}
	return out, nil
}

// planningFilters are the choices of the planning's filters: meeting points and units in
// the agent's scope.
func (m *Module) planningFilters(ctx context.Context, ag *kernel.Agent, q planningQuery, lang string) (places []Place, placeOpts, unitOpts []map[string]string, err error) {
	places, err = m.visiblePlaces(ctx, ag.OrgID, q.scope.Units, q.scope.Places, !q.scope.All)
	if err != nil {
		return nil, nil, nil, err
	}
	placeOpts = []map[string]string{{"Value": "0", "Label": m.i18n.T(lang, "appointments.planning.all_places")}}
	for _, p := range places {
		placeOpts = append(placeOpts, map[string]string{"Value": strconv.FormatInt(p.ID, 10), "Label": p.Name})
	}
	all, err := m.units(ctx, ag.OrgID)
	if err != nil {
		return nil, nil, nil, err
	}
	allKey := "appointments.planning.all_units"
	if !q.scope.All {
		allKey = "appointments.planning.my_units"
	}
	for _, u := range all {
		if q.scope.All || slices.Contains(q.scope.Units, u.ID) {
			if unitOpts == nil {
				unitOpts = []map[string]string{{"Value": "0", "Label": m.i18n.T(lang, allKey)}}
			}
			unitOpts = append(unitOpts, map[string]string{"Value": strconv.FormatInt(u.ID, 10), "Label": strings.Repeat("– ", u.Depth) + u.Name})
		}
	}
	return places, placeOpts, unitOpts, nil
}

// planningLinks are the addresses around the page: the other view, the previous and next
// day or week, print and exports, all with the same filters.
func planningLinks(q planningQuery) map[string]string {
	v := url.Values{"jour": {q.Day}}
	if q.PlaceID != 0 {
		v.Set("lieu", strconv.FormatInt(q.PlaceID, 10))
	}
	if q.UnitID != 0 {
		v.Set("unite", strconv.FormatInt(q.UnitID, 10))
	}
	with := func(k, val string) string {
		c := url.Values{}
		for a, b := range v {
			c[a] = b
		}
		if val == "" {
			c.Del(k)
		} else {
			c.Set(k, val)
		}
		return c.Encode()
	}
	day, _ := time.Parse(dayLayout, q.Day)
	step := 1
	view := ""
	if q.Week {
		step, view = 7, "semaine"
		v.Set("vue", view)
	}
	prev := with("jour", day.AddDate(0, 0, -step).Format(dayLayout))
	next := with("jour", day.AddDate(0, 0, step).Format(dayLayout))
	other := with("vue", "semaine")
	if q.Week {
		other = with("vue", "")
	}
	q0 := v.Encode()
	return map[string]string{"Query": q0, "Prev": "/admin/rdv/planning?" + prev, "Next": "/admin/rdv/planning?" + next,
		"Other": "/admin/rdv/planning?" + other, "Here": "/admin/rdv/planning?" + q0, "Print": "/admin/rdv/planning/imprimer?" + q0,
		"CSV": "/admin/rdv/export.csv?" + q0, "XLSX": "/admin/rdv/export.xlsx?" + q0}
}

// planningForm is the filters' form values.
func planningForm(q planningQuery) *web.Form {
	v := url.Values{"jour": {q.Day}, "lieu": {strconv.FormatInt(q.PlaceID, 10)}, "unite": {strconv.FormatInt(q.UnitID, 10)}, "vue": {"jour"}}
	if q.Week {
		v.Set("vue", "semaine")
	}
	return web.NewForm(v)
}

// apptInScope reports whether the agent may see an appointment in the planning.
func (m *Module) apptInScope(ctx context.Context, ag *kernel.Agent, a *Appointment) bool {
	sc, err := m.planScope(ctx, ag)
	if err != nil {
		return false
	}
	if sc.All {
		return true
	}
	var pu, su int64
	if err := m.db.Read().QueryRowContext(ctx, `SELECT p.unit_id, s.unit_id FROM appt_places p, appt_services s WHERE p.id = ? AND s.id = ?`,
		a.PlaceID, a.ServiceID).Scan(&pu, &su); err != nil {
		return false
	}
	return sc.allows(a.PlaceID, pu, su)
}

// adminWeek is the week view's handler part (planningData fills the rest).
func (m *Module) renderPlanning(w http.ResponseWriter, r *http.Request, print bool) {
	data, q, err := m.planningData(r)
	if err != nil {
		m.adminFail(w, r, err)
		return
	}
	page := web.Page{Name: "appointments/planning.html", Layout: "backoffice", Title: "appointments.planning.title", Form: planningForm(q), Data: data}
	if print {
		page.Name, page.Layout, page.Form = "appointments/print.html", "bare", nil
	}
	m.views.Render(w, r, page)
}
