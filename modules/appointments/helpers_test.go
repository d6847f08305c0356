package appointments

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"parvis.org/parvis/kernel"
	_ "parvis.org/parvis/kernel/builtin"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture: a town with one service (ID cards, 15-minute slots, capacity 2, Monday to Friday
// 9–12 and 14–17) at one place, on Monday 2 March 2026 at 08:00 in Paris.
type fixture struct {
	*servertest.Server
	m       *Module
	clock   *testClock
	org     int64
	svc     Service
	place   Place
	agent   *kernel.Agent
	token   string // API token holding appointments.api
	ctx     context.Context
	antsSvc Service
}

var start = time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)

func moduleOf(s *servertest.Server) *Module {
	for _, in := range s.Modules {
		if m, ok := in.Module.(*Module); ok {
			return m
		}
	}
	return nil
}

func setup(t testing.TB, d store.Dialect) *fixture {
	t.Helper()
	clk := &testClock{t: start}
	s := servertest.New(t, d, servertest.Options{Clock: clk, Env: []string{"PARVIS_TIMEZONE=Europe/Paris"}})
	return fixtureOn(t, s, clk, true)
}

func fixtureOn(t testing.TB, s *servertest.Server, clk *testClock, create bool) *fixture {
	t.Helper()
	f := &fixture{Server: s, m: moduleOf(s), clock: clk, org: s.DefaultOrg(), ctx: context.Background()}
	if f.m == nil {
		t.Fatal("appointments module not built")
	}
	if !create {
		return f
	}
	f.agent = s.NewAgent(f.org, "agent@ville.test", PermPlanning, PermManage, PermAPI, PermSettings)
	f.token = s.APIToken(f.agent, PermAPI, PermManage, PermPlanning)
	cat, err := f.m.CreateCategory(f.ctx, Category{OrgID: f.org, Name: "Titres d'identité"})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = Service{OrgID: f.org, CategoryID: cat, Name: "Carte d'identité", Bring: "Photo, justificatif de domicile", NoticeHours: 2,
		WindowDays: 60, HoldMinutes: 10, MaxUpcoming: 1, ReminderHours: 24, MaxUnits: 3, SlotsPerUnit: 1,
		Questions: []Question{{Key: "motif", Label: "Motif", Kind: "choice", Choices: []string{"Première demande", "Renouvellement"}, Required: true}}}
	if f.svc.ID, err = f.m.SaveService(f.ctx, f.svc); err != nil {
		t.Fatal(err)
	}
	f.svc, _ = f.m.Service(f.ctx, f.m.db.Read(), f.svc.ID)
	f.place = Place{OrgID: f.org, Name: "Mairie annexe", Address: "1 place de la Mairie", ZipCode: "75011", City: "Paris",
		Latitude: 48.859, Longitude: 2.38, Access: "Métro Voltaire", Accessibility: "Accès de plain-pied", Website: "https://ville.test"}
	if f.place.ID, err = f.m.SavePlace(f.ctx, f.place); err != nil {
		t.Fatal(err)
	}
	tpl := Template{PlaceID: f.place.ID, ServiceID: f.svc.ID, ValidFrom: "2026-01-01", ValidTo: "2026-12-31", SlotMinutes: 15, Capacity: 2}
	for d := time.Monday; d <= time.Friday; d++ {
		tpl.Days[d] = []Range{{"09:00", "12:00"}, {"14:00", "17:00"}}
	}
	if _, err := f.m.SaveTemplate(f.ctx, tpl); err != nil {
		t.Fatal(err)
	}
	return f
}

// slotAt returns the slot starting at local day/time (Paris).
func (f *fixture) slotAt(t testing.TB, svc, place int64, day, hm string) Slot {
	t.Helper()
	at, err := time.ParseInLocation("2006-01-02 15:04", day+" "+hm, f.m.loc)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := f.m.Slots(f.ctx, SlotQuery{ServiceID: svc, PlaceID: place, From: at, To: at.Add(time.Minute)})
	if err != nil || len(ss) != 1 {
		t.Fatalf("slot %s %s: %v %v", day, hm, ss, err)
	}
	return ss[0]
}

type apiResp struct {
	Status int
	Body   []byte
}

func (r apiResp) JSON(t testing.TB) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("not JSON (%d): %s", r.Status, r.Body)
	}
	return v
}

var httpClient = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

// call sends a JSON request without cookies, as API clients do.
func call(t testing.TB, base, method, path, bearer string, body any) apiResp {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Error(err)
		return apiResp{}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return apiResp{Status: -1, Body: []byte(err.Error())}
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return apiResp{Status: res.StatusCode, Body: b}
}

func (f *fixture) count(t testing.TB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := f.DB.Read().QueryRowContext(f.ctx, q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

type mailRow struct{ To, Subject, Text, HTML string }

func (f *fixture) mails(t testing.TB, template string) []mailRow {
	t.Helper()
	rows, err := f.DB.Read().QueryContext(f.ctx, `SELECT recipients, subject, text_body, html_body FROM mail_messages WHERE template = ? ORDER BY id`, template)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []mailRow
	for rows.Next() {
		var m mailRow
		if err := rows.Scan(&m.To, &m.Subject, &m.Text, &m.HTML); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}
