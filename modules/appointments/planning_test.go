package appointments

import (
	"fmt"
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/servertest"
)

// unitsFixture ties the fixture's meeting point to unit A and adds a meeting point of unit B
// offering the same service, and a wedding service of unit B offered at A's meeting point
// on Thursdays. Bookings in the week of 2 March 2026: at A, two at 09:00 and one at 10:00 on
// Tuesday, one cancelled on Wednesday at 09:00, a wedding on Thursday at 11:00; at B, one on
// Tuesday at 09:00.
type unitsFixture struct {
	*fixture
	unitA, unitB int64
	placeB       Place
	wedding      Service
	refs         map[string]string // by email
}

func setupUnits(t *testing.T, f *fixture) *unitsFixture {
	t.Helper()
	u := &unitsFixture{fixture: f, refs: map[string]string{}}
	u.unitA = f.NewUnit(f.org, 0, "Mairie du 11e")
	u.unitB = f.NewUnit(f.org, 0, "Mairie du 12e")
	f.place.UnitID = u.unitA
	f.place.Active = true
	if _, err := f.m.SavePlace(f.ctx, f.place); err != nil {
		t.Fatal(err)
	}
	u.placeB = Place{OrgID: f.org, Name: "Mairie du 12e", Address: "130 avenue Daumesnil", ZipCode: "75012", City: "Paris", UnitID: u.unitB}
	var err error
	if u.placeB.ID, err = f.m.SavePlace(f.ctx, u.placeB); err != nil {
		t.Fatal(err)
	}
	tpl := Template{PlaceID: u.placeB.ID, ServiceID: f.svc.ID, ValidFrom: "2026-01-01", ValidTo: "2026-12-31", SlotMinutes: 30, Capacity: 1}
	tpl.Days[time.Tuesday] = []Range{{"09:00", "12:00"}}
	if _, err := f.m.SaveTemplate(f.ctx, tpl); err != nil {
		t.Fatal(err)
	}
	u.wedding = Service{OrgID: f.org, CategoryID: f.svc.CategoryID, Name: "Mariage", NoticeHours: 2, WindowDays: 60, HoldMinutes: 10,
		MaxUpcoming: 1, MaxUnits: 1, SlotsPerUnit: 1, UnitID: u.unitB}
	if u.wedding.ID, err = f.m.SaveService(f.ctx, u.wedding); err != nil {
		t.Fatal(err)
	}
	tpl = Template{PlaceID: f.place.ID, ServiceID: u.wedding.ID, ValidFrom: "2026-01-01", ValidTo: "2026-12-31", SlotMinutes: 60, Capacity: 1}
	tpl.Days[time.Thursday] = []Range{{"11:00", "12:00"}}
	if _, err := f.m.SaveTemplate(f.ctx, tpl); err != nil {
		t.Fatal(err)
	}
	book := func(svc, place int64, day, hm, email string) {
		t.Helper()
		a, err := f.m.Book(f.ctx, HoldRequest{SlotID: f.slotAt(t, svc, place, day, hm).ID}, Details{Name: "Usager " + email, Email: email,
			Answers: map[string]string{"motif": "Renouvellement"}})
		if err != nil {
			t.Fatalf("book %s: %v", email, err)
		}
		u.refs[email] = a.Ref
	}
	book(f.svc.ID, f.place.ID, "2026-03-03", "09:00", "a1@example.fr")
	book(f.svc.ID, f.place.ID, "2026-03-03", "09:00", "a2@example.fr")
	book(f.svc.ID, f.place.ID, "2026-03-03", "10:00", "a3@example.fr")
	book(f.svc.ID, f.place.ID, "2026-03-04", "09:00", "a4@example.fr")
	book(u.wedding.ID, f.place.ID, "2026-03-05", "11:00", "w1@example.fr")
	book(f.svc.ID, u.placeB.ID, "2026-03-03", "09:00", "b1@example.fr")
	a4, err := f.m.apptWhere(f.ctx, f.DB.Read(), `a.ref = ?`, u.refs["a4@example.fr"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.CancelByAgent(f.ctx, f.agent, a4.ID, "Fermeture exceptionnelle"); err != nil {
		t.Fatal(err)
	}
	return u
}

// unitAgent is an agent of one unit whose planning and check-in rights are scoped to it.
func (u *unitsFixture) unitAgent(email string, unit int64) *kernel.Agent {
	return u.NewAgentWith(auth.NewAgent{OrgID: u.org, Email: email, Name: email, Password: servertest.Password, UnitIDs: []int64{unit},
		Grants: []auth.Grant{{Perm: PermPlanning, Scope: auth.ScopeMember}, {Perm: PermManage, Scope: auth.ScopeUnit, UnitID: unit}}})
}

var cellRe = regexp.MustCompile(`data-day="([0-9-]+)" data-time="([0-9:]+|total)">(?:<span class="appt-week__count">(\d+) / (\d+)</span>|<span aria-hidden="true">–</span>)`)

// weekCells reads the week grid of the meeting point placeID: "day time" → "booked/capacity"
// ("-" for no slot).
func weekCells(t *testing.T, body string, placeID int64) map[string]string {
	t.Helper()
	start := strings.Index(body, fmt.Sprintf(`id="semaine-%d"`, placeID))
	if start < 0 {
		t.Fatalf("no week grid for meeting point %d", placeID)
	}
	table := body[start:]
	table = table[:strings.Index(table, "</table>")]
	out := map[string]string{}
	for _, m := range cellRe.FindAllStringSubmatch(table, -1) {
		v := "-"
		if m[3] != "" {
			v = m[3] + "/" + m[4]
		}
		out[m[1]+" "+m[2]] = v
	}
	return out
}

// TestWeekPlanning: the week grid of a meeting point counts the places taken over the
// capacity per time and day (cancellations give their place back), totals each day, links
// each day to its list, and is a table with a caption and headers for screen readers.
func TestWeekPlanning(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		u := setupUnits(t, f)
		c := f.ClientAs(f.agent)
		r := c.Get(fmt.Sprintf("/admin/rdv/planning?vue=semaine&jour=2026-03-04&lieu=%d", f.place.ID))
		if r.Status != 200 {
			t.Fatalf("week planning: %d %s", r.Status, r.Body)
		}
		cells := weekCells(t, r.Body, f.place.ID)
		for k, want := range map[string]string{
			"2026-03-03 09:00": "2/2", "2026-03-03 10:00": "1/2", "2026-03-03 09:15": "0/2", "2026-03-04 09:00": "0/2",
			"2026-03-05 11:00": "1/3", // the wedding (1/1) and the ID cards (0/2) at the same time
			"2026-03-02 09:00": "0/2", "2026-03-07 09:00": "-", "2026-03-08 14:00": "-",
			// 24 ID-card slots of 2 places a day; Thursday adds the wedding's one.
			"2026-03-03 total": "3/48", "2026-03-04 total": "0/48", "2026-03-05 total": "1/49", "2026-03-07 total": "-",
		} {
			if cells[k] != want {
				t.Errorf("cell %s: %q, want %q", k, cells[k], want)
			}
		}
		if len(cells) != 25*7 {
			t.Errorf("%d cells, want 25 rows (24 times and the total) of 7 days", len(cells))
		}
		for _, want := range []string{`<caption class="pv-table__caption">Mairie annexe`, `<th scope="col">Heure</th>`, `<th scope="row">09:00</th>`,
			`<th scope="row">Total</th>`, fmt.Sprintf(`href="/admin/rdv/planning?jour=2026-03-03&amp;lieu=%d"`, f.place.ID),
			"semaine du 2 mars 2026 au 8 mars 2026", `href="/admin/rdv/planning/imprimer?jour=2026-03-04&amp;lieu=`} {
			if !strings.Contains(r.Body, want) {
				t.Errorf("week page lacks %s", want)
			}
		}
		if strings.Contains(r.Body, fmt.Sprintf(`id="semaine-%d"`, u.placeB.ID)) {
			t.Error("another meeting point's grid is shown for a chosen one")
		}
		// The day the week links to lists its appointments.
		r = c.Get(fmt.Sprintf("/admin/rdv/planning?jour=2026-03-03&lieu=%d", f.place.ID))
		if r.Status != 200 || !strings.Contains(r.Body, "a1@example.fr") || !strings.Contains(r.Body, "a3@example.fr") || strings.Contains(r.Body, "b1@example.fr") {
			t.Errorf("the day's list: %d", r.Status)
		}
		// Printed: the same grid, without links.
		r = c.Get(fmt.Sprintf("/admin/rdv/planning/imprimer?vue=semaine&jour=2026-03-04&lieu=%d", f.place.ID))
		if r.Status != 200 || weekCells(t, r.Body, f.place.ID)["2026-03-03 09:00"] != "2/2" || strings.Contains(r.Body, "/admin/rdv/planning?jour=") {
			t.Errorf("printed week: %d", r.Status)
		}
		// Every meeting point of the organisation when none is chosen.
		r = c.Get("/admin/rdv/planning?vue=semaine&jour=2026-03-03")
		if got := weekCells(t, r.Body, u.placeB.ID); got["2026-03-03 09:00"] != "1/1" || got["2026-03-03 total"] != "1/6" {
			t.Errorf("meeting point B: %v", got)
		}
		// Bad filters: a clear refusal, not a 500.
		for _, p := range []string{"/admin/rdv/planning?vue=semaine&jour=demain", "/admin/rdv/planning?vue=semaine&lieu=abc", "/admin/rdv/planning?unite=999999",
			"/admin/rdv/planning?vue=semaine&lieu=999999"} {
			if r := c.Get(p); r.Status != 400 && r.Status != 404 {
				t.Errorf("GET %s: %d", p, r.Status)
			}
		}
		checkAccounting(t, f)
	})
}

// TestPlanningPerUnit: the unit filter shows the meeting points and services of a unit; an
// agent whose rights are scoped to unit A sees A's planning (meeting points of A, and what
// A's services do elsewhere) and is refused B's: the unit, its meeting point, its
// appointments, check-in and exports.
func TestPlanningPerUnit(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		u := setupUnits(t, f)
		c := f.ClientAs(f.agent)
		// An agent of the whole organisation filters by unit.
		r := c.Get(fmt.Sprintf("/admin/rdv/planning?vue=semaine&jour=2026-03-03&unite=%d", u.unitB))
		if r.Status != 200 {
			t.Fatalf("unit B's week: %d", r.Status)
		}
		if got := weekCells(t, r.Body, u.placeB.ID); got["2026-03-03 09:00"] != "1/1" {
			t.Errorf("unit B, meeting point B: %v", got)
		}
		// A's meeting point offers B's wedding: shown with the wedding's slots only.
		if got := weekCells(t, r.Body, f.place.ID); got["2026-03-05 11:00"] != "1/1" || got["2026-03-05 total"] != "1/1" || len(got) != 2*7 {
			t.Errorf("unit B at meeting point A: %v", got)
		}
		r = c.Get(fmt.Sprintf("/admin/rdv/planning?jour=2026-03-05&unite=%d", u.unitA))
		if !strings.Contains(r.Body, "w1@example.fr") {
			t.Error("unit A's day lacks the wedding at its meeting point")
		}
		r = c.Get(fmt.Sprintf("/admin/rdv/planning?jour=2026-03-03&unite=%d", u.unitA))
		if r.Status != 200 || !strings.Contains(r.Body, "a1@example.fr") || strings.Contains(r.Body, "b1@example.fr") {
			t.Errorf("unit A's day: %d", r.Status)
		}
		if !strings.Contains(r.Body, `<option value="`+fmt.Sprint(u.unitB)+`"`) || !strings.Contains(r.Body, "Toutes les unités") {
			t.Error("the unit filter does not offer every unit")
		}

		// An agent of unit A.
		ag := u.unitAgent("agent-a@ville.test", u.unitA)
		ca := f.ClientAs(ag)
		r = ca.Get("/admin/rdv/planning?jour=2026-03-03")
		if r.Status != 200 || !strings.Contains(r.Body, "a1@example.fr") || strings.Contains(r.Body, "b1@example.fr") {
			t.Errorf("unit A agent's day: %d", r.Status)
		}
		if strings.Contains(r.Body, "Mairie du 12e</option>") || strings.Contains(r.Body, `<option value="`+fmt.Sprint(u.unitB)+`"`) {
			t.Error("unit A's agent is offered unit B or its meeting point")
		}
		r = ca.Get("/admin/rdv/planning?vue=semaine&jour=2026-03-03")
		if r.Status != 200 || strings.Contains(r.Body, fmt.Sprintf(`id="semaine-%d"`, u.placeB.ID)) {
			t.Errorf("unit A agent's week shows B's meeting point: %d", r.Status)
		}
		if got := weekCells(t, r.Body, f.place.ID); got["2026-03-03 09:00"] != "2/2" {
			t.Errorf("unit A agent's week: %v", got)
		}
		for _, p := range []string{
			fmt.Sprintf("/admin/rdv/planning?unite=%d", u.unitB),
			fmt.Sprintf("/admin/rdv/planning?vue=semaine&unite=%d", u.unitB),
			fmt.Sprintf("/admin/rdv/planning?lieu=%d", u.placeB.ID),
			fmt.Sprintf("/admin/rdv/planning/imprimer?jour=2026-03-03&lieu=%d", u.placeB.ID),
			fmt.Sprintf("/admin/rdv/export.csv?jour=2026-03-03&unite=%d", u.unitB),
		} {
			if r := ca.Get(p); r.Status != 403 || strings.Contains(r.Body, "b1@example.fr") {
				t.Errorf("unit A agent, GET %s: %d, want 403", p, r.Status)
			} else if !strings.Contains(r.Body, html.EscapeString(f.m.i18n.T("fr", "appointments.error.other_unit"))) {
				t.Errorf("GET %s: the refusal is not explained", p)
			}
		}
		if r := ca.Get("/admin/rdv/export.csv?jour=2026-03-03"); r.Status != 200 || !strings.Contains(r.Body, "a1@example.fr") || strings.Contains(r.Body, "b1@example.fr") {
			t.Errorf("unit A agent's export: %d %s", r.Status, r.Body)
		}
		if r := ca.Get("/admin/rdv/rendez-vous/" + u.refs["b1@example.fr"]); r.Status != 404 {
			t.Errorf("unit A agent opens B's appointment: %d", r.Status)
		}
		if r := ca.Get("/admin/rdv/rendez-vous/" + u.refs["a1@example.fr"]); r.Status != 200 {
			t.Errorf("unit A agent opens A's appointment: %d", r.Status)
		}
		if r := ca.Post("/admin/rdv/rendez-vous/"+u.refs["b1@example.fr"]+"/etat", url.Values{"action": {"arrive"}}); r.Status != 404 {
			t.Errorf("unit A agent checks B's citizen in: %d", r.Status)
		}
		if a, _ := f.m.apptWhere(f.ctx, f.DB.Read(), `a.ref = ?`, u.refs["b1@example.fr"]); a.State != "booked" {
			t.Errorf("B's appointment state %q after a refused check-in", a.State)
		}
		if r := ca.Post("/admin/rdv/capacite", url.Values{"lieu": {fmt.Sprint(u.placeB.ID)}, "service": {fmt.Sprint(f.svc.ID)}, "jour": {"2026-03-10"}, "capacite": {"5"}}); r.Status != 403 {
			t.Errorf("unit A agent changes B's capacity: %d", r.Status)
		}
		// The agent of unit B sees the wedding at A's meeting point, not A's ID cards there.
		cb := f.ClientAs(u.unitAgent("agent-b@ville.test", u.unitB))
		r = cb.Get("/admin/rdv/planning?jour=2026-03-05")
		if r.Status != 200 || !strings.Contains(r.Body, "w1@example.fr") {
			t.Errorf("unit B agent's Thursday: %d", r.Status)
		}
		if r = cb.Get(fmt.Sprintf("/admin/rdv/planning?jour=2026-03-03&lieu=%d", f.place.ID)); r.Status != 200 || strings.Contains(r.Body, "a1@example.fr") {
			t.Errorf("unit B agent at A's meeting point: %d", r.Status)
		}
		// An agent in no unit with a unit-scoped right sees no planning.
		nobody := f.NewAgentWith(auth.NewAgent{OrgID: f.org, Email: "sans-unite@ville.test", Password: servertest.Password,
			Grants: []auth.Grant{{Perm: PermPlanning, Scope: auth.ScopeMember}}})
		if r := f.ClientAs(nobody).Get("/admin/rdv/planning?jour=2026-03-03"); r.Status != 403 || strings.Contains(r.Body, "a1@example.fr") {
			t.Errorf("agent of no unit: %d", r.Status)
		}
	})
}

// TestStatisticsPerUnit: the statistics follow the planning's unit rights: an agent of unit
// A sees A's meeting point (with B's wedding held there) but not B's meeting point, is
// refused unit B's figures, and an agent of the whole organisation filters by unit.
func TestStatisticsPerUnit(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		u := setupUnits(t, f)
		idCardA, idCardB, weddingA := "Carte d&#39;identité – Mairie annexe", "Carte d&#39;identité – Mairie du 12e", "Mariage – Mairie annexe"
		has := func(body string) string {
			var got []string
			for _, r := range []string{idCardA, idCardB, weddingA} {
				if strings.Contains(body, r) {
					got = append(got, r)
				}
			}
			return strings.Join(got, " | ")
		}
		c := f.ClientAs(f.agent)
		r := c.Get("/admin/rdv/statistiques?mois=2026-03")
		if r.Status != 200 || has(r.Body) != idCardA+" | "+idCardB+" | "+weddingA {
			t.Fatalf("whole organisation: %d, rows %q", r.Status, has(r.Body))
		}
		r = c.Get(fmt.Sprintf("/admin/rdv/statistiques?mois=2026-03&unite=%d", u.unitB))
		if r.Status != 200 || has(r.Body) != idCardB+" | "+weddingA {
			t.Errorf("filtered on unit B: %d, rows %q", r.Status, has(r.Body))
		}
		ca := f.ClientAs(u.unitAgent("agent-a@ville.test", u.unitA))
		r = ca.Get("/admin/rdv/statistiques?mois=2026-03")
		if r.Status != 200 || has(r.Body) != idCardA+" | "+weddingA {
			t.Errorf("unit A's agent: %d, rows %q", r.Status, has(r.Body))
		}
		if r := ca.Get(fmt.Sprintf("/admin/rdv/statistiques?mois=2026-03&unite=%d", u.unitB)); r.Status != 403 {
			t.Errorf("unit A's agent asking for unit B: %d", r.Status)
		}
		if r := ca.Get("/admin/rdv/statistiques?mois=2026-03&unite=x"); r.Status != 400 {
			t.Errorf("malformed unit: %d", r.Status)
		}
		if r := ca.Get("/admin/rdv/statistiques?mois=mars"); r.Status != 400 {
			t.Errorf("malformed month: %d", r.Status)
		}
	})
}

// TestPlanningPerMeetingPoint: appointments.planning granted on one meeting point (a
// resource grant of type "place") shows that meeting point's planning, week, export and
// statistics, lets its citizens be checked in, and refuses everything else.
func TestPlanningPerMeetingPoint(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		u := setupUnits(t, f)
		ag := f.NewAgentWith(auth.NewAgent{OrgID: f.org, Email: "accueil-12@ville.test", Password: servertest.Password,
			Grants: []auth.Grant{{Perm: PermPlanning, Scope: auth.ScopeResource, ResourceType: "place", ResourceID: fmt.Sprint(u.placeB.ID)},
				{Perm: PermManage, Scope: auth.ScopeAll}}})
		c := f.ClientAs(ag)
		r := c.Get("/admin/rdv/planning?jour=2026-03-03")
		if r.Status != 200 || !strings.Contains(r.Body, "b1@example.fr") || strings.Contains(r.Body, "a1@example.fr") {
			t.Fatalf("meeting point B's day: %d (B's citizen shown: %v, A's: %v)", r.Status, strings.Contains(r.Body, "b1@example.fr"), strings.Contains(r.Body, "a1@example.fr"))
		}
		if strings.Contains(r.Body, ">Mairie annexe</option>") {
			t.Error("the meeting point filter offers A's meeting point")
		}
		r = c.Get("/admin/rdv/planning?vue=semaine&jour=2026-03-03")
		if r.Status != 200 || strings.Contains(r.Body, fmt.Sprintf(`id="semaine-%d"`, f.place.ID)) {
			t.Errorf("week: %d, or A's meeting point shown", r.Status)
		}
		if got := weekCells(t, r.Body, u.placeB.ID); got["2026-03-03 09:00"] != "1/1" {
			t.Errorf("meeting point B's week: %v", got)
		}
		if r := c.Get("/admin/rdv/export.csv?jour=2026-03-03"); r.Status != 200 || !strings.Contains(r.Body, "b1@example.fr") || strings.Contains(r.Body, "a1@example.fr") {
			t.Errorf("export: %d %s", r.Status, r.Body)
		}
		if r := c.Get("/admin/rdv/statistiques?mois=2026-03"); r.Status != 200 || !strings.Contains(r.Body, "Mairie du 12e") || strings.Contains(r.Body, "Mairie annexe") {
			t.Errorf("statistics: %d", r.Status)
		}
		for _, p := range []string{
			fmt.Sprintf("/admin/rdv/planning?lieu=%d", f.place.ID),
			fmt.Sprintf("/admin/rdv/planning?unite=%d", u.unitB),
			fmt.Sprintf("/admin/rdv/statistiques?unite=%d", u.unitA),
		} {
			if r := c.Get(p); r.Status != 403 {
				t.Errorf("GET %s: %d, want 403", p, r.Status)
			}
		}
		if r := c.Get("/admin/rdv/rendez-vous/" + u.refs["a1@example.fr"]); r.Status != 404 {
			t.Errorf("opens A's appointment: %d", r.Status)
		}
		if r := c.Post("/admin/rdv/rendez-vous/"+u.refs["b1@example.fr"]+"/etat", url.Values{"action": {"arrive"}}); r.Status >= 400 {
			t.Errorf("checks B's citizen in: %d", r.Status)
		}
		if a, _ := f.m.apptWhere(f.ctx, f.DB.Read(), `a.ref = ?`, u.refs["b1@example.fr"]); a.State != "arrived" {
			t.Errorf("B's appointment state %q after check-in", a.State)
		}
		if r := c.Post("/admin/rdv/rendez-vous/"+u.refs["a1@example.fr"]+"/etat", url.Values{"action": {"arrive"}}); r.Status != 404 {
			t.Errorf("checks A's citizen in: %d", r.Status)
		}
	})
}
