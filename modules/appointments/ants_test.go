package appointments

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeANTS is the ANTS coordination API as its specification describes it: GET /status,
// POST and DELETE /appointments, all guarded by x-rdv-opt-auth-token.
type fakeANTS struct {
	mu       sync.Mutex
	status   map[string]string // application id → validated, consumed, unknown…
	appts    map[string][]map[string]string
	down     bool
	calls    []string
	srv      *httptest.Server
	tokenBad int
}

func newFakeANTS(t *testing.T) *fakeANTS {
	f := &fakeANTS{status: map[string]string{}, appts: map[string][]map[string]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.down {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		if r.Header.Get("x-rdv-opt-auth-token") != "coord-secret" {
			f.tokenBad++
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		q := r.URL.Query()
		f.calls = append(f.calls, r.Method+" "+r.URL.Path)
		switch {
		case r.Method == "GET" && r.URL.Path == "/status":
			out := map[string]any{}
			for _, id := range q["application_ids"] {
				st := f.status[id]
				if st == "" {
					st = "unknown"
				}
				out[id] = map[string]any{"status": st, "appointments": orEmpty(f.appts[id])}
			}
			_ = json.NewEncoder(w).Encode(out)
		case r.Method == "POST" && r.URL.Path == "/appointments":
			for _, k := range []string{"application_id", "meeting_point", "meeting_point_id", "appointment_date", "management_url"} {
				if q.Get(k) == "" {
					http.Error(w, "missing "+k, http.StatusBadRequest)
					return
				}
			}
			id := q.Get("application_id")
			f.appts[id] = append(f.appts[id], map[string]string{"meeting_point": q.Get("meeting_point"), "appointment_date": q.Get("appointment_date"), "management_url": q.Get("management_url")})
			_ = json.NewEncoder(w).Encode(map[string]bool{"success": true})
		case r.Method == "DELETE" && r.URL.Path == "/appointments":
			id := q.Get("application_id")
			var keep []map[string]string
			for _, a := range f.appts[id] {
				if a["appointment_date"] != q.Get("appointment_date") {
					keep = append(keep, a)
				}
			}
			f.appts[id] = keep
			_ = json.NewEncoder(w).Encode(map[string]int{"rowcount": 1})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func orEmpty(x []map[string]string) []map[string]string {
	if x == nil {
		return []map[string]string{}
	}
	return x
}

func hub(t *testing.T, base, path, token string) apiResp {
	req, _ := http.NewRequest("GET", base+path, nil)
	if token != "" {
		req.Header.Set("X-HUB-RDV-AUTH-TOKEN", token)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b strings.Builder
	_, _ = fmt.Fprint(&b, "")
	buf := make([]byte, 1<<20)
	n, _ := res.Body.Read(buf)
	for n > 0 {
		b.Write(buf[:n])
		n, _ = res.Body.Read(buf)
	}
	return apiResp{Status: res.StatusCode, Body: []byte(b.String())}
}

func TestANTS(t *testing.T) {
	each(t, func(t *testing.T, f *fixture) {
		coord := newFakeANTS(t)
		if err := f.m.SaveSettings(f.ctx, Settings{OrgID: f.org, AntsAPIURL: coord.srv.URL, AntsAPIToken: "coord-secret"}, "hub-secret-token"); err != nil {
			t.Fatal(err)
		}
		ants := Service{OrgID: f.org, CategoryID: f.svc.CategoryID, Name: "Passeport", AntsReason: "CNI-PASSPORT", WindowDays: 60, HoldMinutes: 10,
			MaxUnits: 3, SlotsPerUnit: 1, MaxUpcoming: 1, NoticeHours: 2}
		var err error
		if ants.ID, err = f.m.SaveService(f.ctx, ants); err != nil {
			t.Fatal(err)
		}
		tpl := Template{PlaceID: f.place.ID, ServiceID: ants.ID, ValidFrom: "2026-01-01", ValidTo: "2026-12-31", SlotMinutes: 20, Capacity: 1}
		tpl.Days[2] = []Range{{"09:00", "10:00"}} // Tuesdays
		if _, err := f.m.SaveTemplate(f.ctx, tpl); err != nil {
			t.Fatal(err)
		}
		// The hub without, or with a wrong, token: 401 and nothing else.
		for _, tok := range []string{"", "wrong"} {
			for _, p := range []string{"/api/ants/getManagedMeetingPoints", "/api/ants/availableTimeSlots?meeting_point_ids=1&start_date=2026-03-01&end_date=2026-03-10", "/api/ants/searchApplicationIds?application_ids=ABCDE12345"} {
				r := hub(t, f.URL, p, tok)
				if r.Status != 401 || strings.Contains(string(r.Body), "Mairie") || len(r.Body) > 80 {
					t.Errorf("%s with token %q: %d %s", p, tok, r.Status, r.Body)
				}
			}
		}
		r := hub(t, f.URL, "/api/ants/getManagedMeetingPoints", "hub-secret-token")
		var mps []map[string]any
		if err := json.Unmarshal(r.Body, &mps); err != nil || r.Status != 200 || len(mps) != 1 {
			t.Fatalf("meeting points: %d %s", r.Status, r.Body)
		}
		id := fmt.Sprint(f.place.ID)
		if mps[0]["id"] != id || mps[0]["city_name"] != "Paris" || mps[0]["zip_code"] != "75011" || mps[0]["public_entry_address"] != "1 place de la Mairie" || mps[0]["latitude"].(float64) != 48.859 {
			t.Errorf("meeting point: %v", mps[0])
		}
		// Repeated meeting_point_ids; documents_number scales the length (3 × 20 min fits one start per hour).
		r = hub(t, f.URL, "/api/ants/availableTimeSlots?meeting_point_ids="+id+"&meeting_point_ids=999&start_date=2026-03-03&end_date=2026-03-10&reason=PASSPORT&documents_number=1", "hub-secret-token")
		var got map[string][]map[string]string
		if err := json.Unmarshal(r.Body, &got); err != nil || r.Status != 200 {
			t.Fatalf("time slots: %d %s", r.Status, r.Body)
		}
		if len(got[id]) != 6 || got[id][0]["datetime"] != "2026-03-03T09:00:00+01:00" || !strings.Contains(got[id][0]["callback_url"], "/rdv/demarche/") || got["999"] == nil || len(got["999"]) != 0 {
			t.Errorf("time slots: %s", r.Body)
		}
		r = hub(t, f.URL, "/api/ants/availableTimeSlots?meeting_point_ids="+id+"&start_date=2026-03-03&end_date=2026-03-03&reason=CNI&documents_number=3", "hub-secret-token")
		_ = json.Unmarshal(r.Body, &got)
		if len(got[id]) != 1 {
			t.Errorf("3 documents: %s", r.Body)
		}
		for _, bad := range []string{"start_date=2026-13-01&end_date=2026-03-10", "start_date=2026-03-10&end_date=2026-03-01", "start_date=2026-03-01&end_date=2026-03-10&reason=VISA", "start_date=2026-03-01&end_date=2026-03-10&documents_number=0"} {
			if r := hub(t, f.URL, "/api/ants/availableTimeSlots?meeting_point_ids="+id+"&"+bad, "hub-secret-token"); r.Status != 400 {
				t.Errorf("%s: %d", bad, r.Status)
			}
		}
		// Booking checks the numbers with the coordination API first.
		s := f.slotAt(t, ants.ID, f.place.ID, "2026-03-03", "09:00")
		d := Details{Name: "Léa", Email: "lea@example.fr", AntsIDs: "abcde12345"}
		if _, err := f.m.Book(f.ctx, HoldRequest{SlotID: s.ID}, d); err == nil || !strings.Contains(err.Error(), "ants_unknown") {
			t.Fatalf("unknown number: %v", err)
		}
		if _, err := f.m.Book(f.ctx, HoldRequest{SlotID: s.ID}, Details{Name: "Léa", Email: "lea@example.fr", AntsIDs: "ABC"}); err == nil || !strings.Contains(err.Error(), "ants_format") {
			t.Fatalf("malformed number: %v", err)
		}
		coord.status["ABCDE12345"] = "validated"
		coord.status["ZZZZZ99999"] = "validated"
		coord.appts["ZZZZZ99999"] = []map[string]string{{"meeting_point": "Ailleurs"}}
		if _, err := f.m.Book(f.ctx, HoldRequest{SlotID: s.ID}, Details{Name: "Max", Email: "max@example.fr", AntsIDs: "ZZZZZ99999"}); err == nil || !strings.Contains(err.Error(), "ants_has_appointment") {
			t.Fatalf("number already booked elsewhere: %v", err)
		}
		a, err := f.m.Book(f.ctx, HoldRequest{SlotID: s.ID}, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.m.afterConfirm(f.ctx, ConfirmedArgs{ID: a.ID, Cancel: a.CancelToken, Manage: a.ManageToken}); err != nil {
			t.Fatal(err)
		}
		if err := f.m.antsSync(f.ctx, AntsArgs{Op: "create", ID: a.ID}); err != nil {
			t.Fatal(err)
		}
		if len(coord.appts["ABCDE12345"]) != 1 || coord.appts["ABCDE12345"][0]["appointment_date"] != "2026-03-03T09:00:00" {
			t.Errorf("declared: %v", coord.appts)
		}
		// searchApplicationIds as the hub calls it.
		r = hub(t, f.URL, "/api/ants/searchApplicationIds?application_ids=ABCDE12345&application_ids=QQQQQ11111", "hub-secret-token")
		var found map[string][]map[string]string
		if err := json.Unmarshal(r.Body, &found); err != nil || len(found["ABCDE12345"]) != 1 || found["QQQQQ11111"] == nil {
			t.Fatalf("search: %d %s", r.Status, r.Body)
		}
		if fa := found["ABCDE12345"][0]; fa["meeting_point"] != "Mairie annexe" || fa["datetime"] != "2026-03-03T09:00:00+01:00" || !strings.Contains(fa["management_url"], "/rdv/retrouver?reference=") || fa["cancel_url"] == "" {
			t.Errorf("found %v", fa)
		}
		if r := hub(t, f.URL, "/api/ants/searchApplicationIds?application_ids=BAD", "hub-secret-token"); r.Status != 400 {
			t.Errorf("malformed application id: %d", r.Status)
		}
		// Cancelling withdraws it from ANTS.
		if _, err := f.m.Cancel(f.ctx, a.CancelToken, ""); err != nil {
			t.Fatal(err)
		}
		if err := f.m.antsSync(f.ctx, AntsArgs{Op: "delete", ID: a.ID}); err != nil {
			t.Fatal(err)
		}
		if len(coord.appts["ABCDE12345"]) != 0 {
			t.Errorf("still declared: %v", coord.appts)
		}
		// Coordination API down: ANTS bookings paused with a clear message, others unaffected.
		coord.down = true
		if _, err := f.m.Book(f.ctx, HoldRequest{SlotID: s.ID}, d); err == nil || !strings.Contains(err.Error(), keyAntsDown) {
			t.Fatalf("ANTS down: %v", err)
		}
		if err := f.m.antsSync(f.ctx, AntsArgs{Op: "create", ID: a.ID}); err == nil {
			t.Error("a declaration to a down API must fail so River retries it")
		}
		body := call(t, f.URL, "POST", "/api/appointments", f.token, map[string]any{"slot_id": s.ID, "name": "Léa", "email": "lea@example.fr", "ants_application_ids": []string{"ABCDE12345"}})
		if body.Status != 503 || body.JSON(t)["code"] != "ants_unavailable" {
			t.Errorf("API while ANTS is down: %d %s", body.Status, body.Body)
		}
		other := f.slotAt(t, f.svc.ID, f.place.ID, "2026-03-03", "09:00")
		if _, err := f.m.Book(f.ctx, HoldRequest{SlotID: other.ID}, Details{Name: "Léa", Email: "lea@example.fr", Answers: map[string]string{"motif": "Renouvellement"}}); err != nil {
			t.Errorf("another service while ANTS is down: %v", err)
		}
		if r := f.Client().Get("/rdv"); r.Status != 200 || !strings.Contains(r.Body, "ANTS") {
			t.Errorf("the services page must say ANTS bookings are paused: %d", r.Status)
		}
	})
}
