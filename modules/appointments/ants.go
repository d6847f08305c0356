package appointments

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/web"
)

// ANTS interoperability: the editor API that the national hub calls (three GET endpoints
// guarded by X-HUB-RDV-AUTH-TOKEN, whose hash identifies the organisation), and a client of
// the coordination API (status of pre-application numbers before booking, declaration and
// withdrawal of appointments after, through retried jobs).

const antsHubHeader = "X-HUB-RDV-AUTH-TOKEN"

// hubOrg returns the organisation whose hub token the request carries, or 0.
func (m *Module) hubOrg(r *http.Request) int64 {
	tok := r.Header.Get(antsHubHeader)
	if tok == "" || len(tok) > 512 {
		return 0
	}
	h := hashToken(tok)
	var org int64
	var stored string
	if err := m.db.Read().QueryRowContext(r.Context(), `SELECT org_id, ants_hub_token_hash FROM appt_settings WHERE ants_hub_token_hash = ?`, h).Scan(&org, &stored); err != nil {
		return 0
	}
	if subtle.ConstantTimeCompare([]byte(stored), []byte(h)) != 1 {
		return 0
	}
	return org
}

func (m *Module) hubAuth(next func(w http.ResponseWriter, r *http.Request, org int64)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		org := m.hubOrg(r)
		if org == 0 {
			// Nothing else revealed: same answer for a missing, wrong or unknown token.
			web.WriteJSONError(w, http.StatusUnauthorized, "unauthorized", "unauthorized", "")
			return
		}
		next(w, r, org)
	}
}

type antsMeetingPoint struct {
	ID                 string  `json:"id"`
	Name               string  `json:"name"`
	Longitude          float64 `json:"longitude"`
	Latitude           float64 `json:"latitude"`
	PublicEntryAddress string  `json:"public_entry_address"`
	ZipCode            string  `json:"zip_code"`
	CityName           string  `json:"city_name"`
	Website            string  `json:"website"`
	CityLogo           string  `json:"city_logo"`
}

// antsPlaces lists the places offering an ANTS service.
func (m *Module) antsPlaces(ctx context.Context, org int64) ([]Place, error) {
	rows, err := m.db.Read().QueryContext(ctx, `SELECT `+placeCols+` FROM appt_places WHERE org_id = ? AND active = 1 AND id IN
		(SELECT o.place_id FROM appt_offers o JOIN appt_services s ON s.id = o.service_id WHERE s.ants_reason <> '' AND s.active = 1) ORDER BY id`, org)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Place
	for rows.Next() {
		p, err := scanPlace(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (m *Module) hubMeetingPoints(w http.ResponseWriter, r *http.Request, org int64) {
	ps, err := m.antsPlaces(r.Context(), org)
	if err != nil {
		m.apiFail(w, r, err)
		return
	}
	out := make([]antsMeetingPoint, 0, len(ps))
	for _, p := range ps {
		out = append(out, antsMeetingPoint{ID: strconv.FormatInt(p.ID, 10), Name: p.Name, Longitude: p.Longitude, Latitude: p.Latitude,
			PublicEntryAddress: p.Address, ZipCode: p.ZipCode, CityName: p.City, Website: p.Website, CityLogo: p.Logo})
	}
	web.WriteJSON(w, http.StatusOK, out)
}

type antsSlot struct {
	Datetime    string `json:"datetime"`
	CallbackURL string `json:"callback_url"`
}

func badParam(w http.ResponseWriter, field, msg string) {
	web.WriteJSONError(w, http.StatusBadRequest, "invalid_input", msg, field)
}

func (m *Module) hubTimeSlots(w http.ResponseWriter, r *http.Request, org int64) {
	q := r.URL.Query()
	ctx := r.Context()
	start, err1 := time.ParseInLocation(dayLayout, q.Get("start_date"), m.loc)
	end, err2 := time.ParseInLocation(dayLayout, q.Get("end_date"), m.loc)
	switch {
	case err1 != nil:
		badParam(w, "start_date", "start_date must be a date YYYY-MM-DD")
		return
	case err2 != nil || end.Before(start):
		badParam(w, "end_date", "end_date must be a date YYYY-MM-DD, not before start_date")
		return
	case end.Sub(start) > 366*24*time.Hour:
		badParam(w, "end_date", "the period may not exceed one year")
		return
	}
	reason := q.Get("reason")
	if reason == "" {
		reason = "CNI-PASSPORT"
	}
	if reason != "CNI" && reason != "PASSPORT" && reason != "CNI-PASSPORT" {
		badParam(w, "reason", "reason must be CNI, PASSPORT or CNI-PASSPORT")
		return
	}
	docs := 1
	if s := q.Get("documents_number"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 20 {
			badParam(w, "documents_number", "documents_number must be a whole number from 1 to 20")
			return
		}
		docs = n
	}
	ids := q["meeting_point_ids"]
	if len(ids) == 0 {
		badParam(w, "meeting_point_ids", "meeting_point_ids is required (repeat the parameter for several)")
		return
	}
	if len(ids) > 200 {
		badParam(w, "meeting_point_ids", "at most 200 meeting points at once")
		return
	}
	places := map[int64]bool{}
	var pids []any
	for _, s := range ids {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			badParam(w, "meeting_point_ids", "meeting_point_ids must be numbers")
			return
		}
		if !places[id] {
			places[id] = true
			pids = append(pids, id)
		}
	}
	// The hub asks the same periods again and again: answers are cached a few seconds
	// (cache.go), keyed by organisation and the query as sent.
	body, err := m.cachedAnswer("hub|"+strconv.FormatInt(org, 10)+"|"+r.URL.RawQuery, func() ([]byte, error) {
		return m.hubSlots(ctx, org, ids, pids, start, end, reason, docs)
	})
	if err != nil {
		m.apiFail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

// hubSlots computes availableTimeSlots: one query for the offers, one for the free slots of
// every requested meeting point, and the JSON written by hand (tens of thousands of entries).
func (m *Module) hubSlots(ctx context.Context, org int64, ids []string, pids []any, start, end time.Time, reason string, docs int) ([]byte, error) {
	args := append([]any{org, reason}, pids...)
	rows, err := m.db.Read().QueryContext(ctx, `SELECT o.place_id, o.generated_until, s.id, s.slots_per_unit, s.max_units, s.notice_hours, s.window_days
		FROM appt_offers o JOIN appt_services s ON s.id = o.service_id JOIN appt_places p ON p.id = o.place_id
		WHERE p.org_id = ? AND p.active = 1 AND s.active = 1 AND (s.ants_reason = ? OR s.ants_reason = 'CNI-PASSPORT')
		AND o.place_id IN (`+placeholders(len(pids))+`)`, args...)
	if err != nil {
		return nil, err
	}
	type offer struct {
		place, svc                                 int64
		until                                      string
		perUnit, maxUnits, noticeHours, windowDays int
		from, to                                   int64
	}
	var offers []offer
	for rows.Next() {
		var o offer
		if err := rows.Scan(&o.place, &o.until, &o.svc, &o.perUnit, &o.maxUnits, &o.noticeHours, &o.windowDays); err != nil {
			rows.Close()
			return nil, err
		}
		offers = append(offers, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	now := m.now()
	minFrom, maxTo := int64(1<<62), int64(0)
	var svcs, places []any
	seenSvc, seenPlace := map[int64]bool{}, map[int64]bool{}
	kept := offers[:0]
	for _, o := range offers {
		if docs > o.maxUnits {
			continue // this service cannot take that many documents at once
		}
		from, to := start, end.AddDate(0, 0, 1)
		if earliest := now.Add(time.Duration(o.noticeHours) * time.Hour); from.Before(earliest) {
			from = earliest
		}
		if latest := now.AddDate(0, 0, o.windowDays); to.After(latest) {
			to = latest
		}
		if !from.Before(to) {
			continue
		}
		if last := to.In(m.loc).Format(dayLayout); o.until < last {
			if err := m.Ensure(ctx, o.place, o.svc, last); err != nil {
				return nil, err
			}
		}
		o.from, o.to = from.Unix(), to.Unix()
		minFrom, maxTo = min(minFrom, o.from), max(maxTo, o.to)
		if !seenSvc[o.svc] {
			seenSvc[o.svc] = true
			svcs = append(svcs, o.svc)
		}
		if !seenPlace[o.place] {
			seenPlace[o.place] = true
			places = append(places, o.place)
		}
		kept = append(kept, o)
	}
	// Free starts per place: only integers travel and are scanned (no timestamp text).
	type freeStart struct{ id, svc, place, at, end int64 }
	found := map[int64][]freeStart{}
	if len(kept) > 0 {
		args := append(append(places, svcs...), minFrom, maxTo)
		rows, err := m.db.Read().QueryContext(ctx, `SELECT id, service_id, place_id, start_s, end_s FROM appt_slots
			WHERE place_id IN (`+placeholders(len(places))+`) AND service_id IN (`+placeholders(len(svcs))+`)
			AND start_s >= ? AND start_s < ? AND booked < capacity AND blocked = 0 ORDER BY place_id, service_id, start_s`, args...)
		if err != nil {
			return nil, err
		}
		byOffer := map[[2]int64][]freeStart{}
		for rows.Next() {
			var s freeStart
			if err := rows.Scan(&s.id, &s.svc, &s.place, &s.at, &s.end); err != nil {
				rows.Close()
				return nil, err
			}
			k := [2]int64{s.place, s.svc}
			byOffer[k] = append(byOffer[k], s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for _, o := range kept {
			free := byOffer[[2]int64{o.place, o.svc}]
			need := o.perUnit * docs
			for i, s := range free {
				if s.at < o.from || s.at >= o.to {
					continue
				}
				// need free slots following each other without a gap (a full one is a gap).
				ok := i+need <= len(free)
				for k := i + 1; ok && k < i+need; k++ {
					ok = free[k].at == free[k-1].end
				}
				if ok {
					found[o.place] = append(found[o.place], s)
				}
			}
		}
	}
	n := 0
	for _, f := range found {
		n += len(f)
	}
	// The base URL is the only part that may need escaping; the rest is digits and dates.
	pre, _ := json.Marshal(m.baseURL() + "/rdv/demarche/")
	pre = pre[:len(pre)-1]
	b := make([]byte, 0, 64+len(ids)*16+n*(110+len(pre)))
	b = append(b, '{')
	done := map[string]bool{}
	for _, key := range ids {
		if done[key] {
			continue
		}
		done[key] = true
		if len(done) > 1 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, key)
		b = append(b, ":["...)
		id, _ := strconv.ParseInt(key, 10, 64)
		for i, s := range found[id] {
			if i > 0 {
				b = append(b, ',')
			}
			at := time.Unix(s.at, 0).In(m.loc)
			b = append(b, `{"datetime":"`...)
			b = at.AppendFormat(b, time.RFC3339)
			b = append(b, `","callback_url":`...)
			b = append(b, pre...)
			b = strconv.AppendInt(b, s.svc, 10)
			b = append(b, '/')
			b = strconv.AppendInt(b, s.place, 10)
			b = append(b, '/')
			b = at.AppendFormat(b, dayLayout)
			b = append(b, "?creneau="...)
			b = strconv.AppendInt(b, s.id, 10)
			b = append(b, "&personnes="...)
			b = strconv.AppendInt(b, int64(docs), 10)
			b = append(b, `"}`...)
		}
		b = append(b, ']')
	}
	b = append(b, '}', '\n')
	return b, nil
}

type antsFound struct {
	MeetingPoint  string `json:"meeting_point"`
	Datetime      string `json:"datetime"`
	ManagementURL string `json:"management_url"`
	CancelURL     string `json:"cancel_url"`
}

// findURL is where a citizen (sent by ANTS) finds their appointment again: capability links
// never leave Parvis, so this page mails fresh ones to the address of the booking.
func (m *Module) findURL(a *Appointment) string {
	return m.baseURL() + "/rdv/retrouver?reference=" + url.QueryEscape(a.Ref)
}

func (m *Module) hubSearch(w http.ResponseWriter, r *http.Request, org int64) {
	raw := r.URL.Query()["application_ids"]
	if len(raw) == 0 {
		badParam(w, "application_ids", "application_ids is required (repeat the parameter for several)")
		return
	}
	out := map[string][]antsFound{}
	for _, s := range raw {
		ids, bad := ParseAntsIDs(s)
		if len(bad) > 0 {
			badParam(w, "application_ids", "an application number is 10 letters or digits")
			return
		}
		for _, id := range ids {
			out[id] = []antsFound{}
			rows, err := m.db.Read().QueryContext(r.Context(), `SELECT `+apptCols+apptFrom+`WHERE a.org_id = ? AND a.status = 'confirmed'
				AND a.starts_at > ? AND a.id IN (SELECT appointment_id FROM appt_persons WHERE kind = 'ants' AND value = ? AND active = 1)
				ORDER BY a.starts_at`, org, m.now(), id)
			if err != nil {
				m.apiFail(w, r, err)
				return
			}
			for rows.Next() {
				a, err := scanAppt(rows)
				if err != nil {
					rows.Close()
					m.apiFail(w, r, err)
					return
				}
				out[id] = append(out[id], antsFound{MeetingPoint: a.PlaceName, Datetime: a.Start.In(m.loc).Format(time.RFC3339),
					ManagementURL: m.findURL(a), CancelURL: m.findURL(a) + "&annuler=1"})
			}
			rows.Close()
		}
	}
	web.WriteJSON(w, http.StatusOK, out)
}

// --- coordination API client ---

type antsStatus struct {
	Status       string            `json:"status"`
	Appointments []json.RawMessage `json:"appointments"`
}

func (m *Module) antsDo(ctx context.Context, st Settings, method, path string, q url.Values) (*http.Response, []byte, error) {
	u := strings.TrimSuffix(st.AntsAPIURL, "/") + path + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("x-rdv-opt-auth-token", st.AntsAPIToken)
	req.Header.Set("Accept", "application/json")
	res, err := m.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return res, b, err
}

// antsPrecheck asks the coordination API about the numbers before booking. While the API
// is down, ANTS services are paused (a clear message); other services are unaffected.
func (m *Module) antsPrecheck(ctx context.Context, svc *Service, raw string) error {
	if svc.AntsReason == "" {
		return nil
	}
	st, err := m.Settings(ctx, m.db.Read(), svc.OrgID)
	if err != nil {
		return err
	}
	if st.AntsAPIURL == "" {
		return nil
	}
	now := m.now()
	if now.Before(st.AntsDownUntil) {
		return errs.New(errs.Unavailable, keyAntsDown)
	}
	ids, _ := ParseAntsIDs(raw)
	q := url.Values{"application_ids": ids}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, body, err := m.antsDo(cctx, st, http.MethodGet, "/status", q)
	if err != nil || res.StatusCode >= 500 || res.StatusCode == http.StatusUnauthorized {
		m.log.Warn("ANTS coordination API unavailable: pausing ANTS bookings", "err", err)
		m.markAntsDown(ctx, svc.OrgID, now.Add(2*time.Minute))
		return errs.New(errs.Unavailable, keyAntsDown)
	}
	if res.StatusCode != http.StatusOK {
		return errs.OnField(errs.Invalid, "ants_ids", "appointments.error.ants_format", "id", strings.Join(ids, " "))
	}
	var got map[string]antsStatus
	if err := json.Unmarshal(body, &got); err != nil {
		m.markAntsDown(ctx, svc.OrgID, now.Add(2*time.Minute))
		return errs.New(errs.Unavailable, keyAntsDown)
	}
	for _, id := range ids {
		s, ok := got[id]
		switch {
		case !ok || s.Status == "unknown":
			return errs.OnField(errs.Conflict, "ants_ids", rulePrefix+"ants_unknown", "id", id)
		case s.Status == "consumed":
			return errs.OnField(errs.Conflict, "ants_ids", rulePrefix+"ants_consumed", "id", id)
		case s.Status != "validated":
			return errs.OnField(errs.Conflict, "ants_ids", rulePrefix+"ants_not_validated", "id", id)
		case len(s.Appointments) > 0:
			return errs.OnField(errs.Conflict, "ants_ids", rulePrefix+"ants_has_appointment", "id", id)
		}
	}
	return nil
}

func (m *Module) markAntsDown(ctx context.Context, org int64, until time.Time) {
	err := m.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO appt_settings (org_id, ants_down_until) VALUES (?, ?)
			ON CONFLICT (org_id) DO UPDATE SET ants_down_until = excluded.ants_down_until`, org, until)
		return err
	})
	if err != nil {
		m.log.Error("mark ANTS down", "err", err)
	}
}

// AntsPaused reports whether ANTS bookings are paused for the organisation.
func (m *Module) AntsPaused(ctx context.Context, org int64) bool {
	st, err := m.Settings(ctx, m.db.Read(), org)
	return err == nil && m.now().Before(st.AntsDownUntil)
}

// antsSync declares or withdraws an appointment; an error makes River retry.
func (m *Module) antsSync(ctx context.Context, args AntsArgs) error {
	a, err := m.Appointment(ctx, args.ID)
	if err != nil {
		return err
	}
	st, err := m.Settings(ctx, m.db.Read(), a.OrgID)
	if err != nil || st.AntsAPIURL == "" {
		return err
	}
	method := http.MethodPost
	if args.Op == "delete" {
		method = http.MethodDelete
	}
	for _, id := range a.AntsIDs {
		q := url.Values{"application_id": {id}, "meeting_point": {a.PlaceName}, "meeting_point_id": {strconv.FormatInt(a.PlaceID, 10)},
			"appointment_date": {a.Start.In(m.loc).Format("2006-01-02T15:04:05")}}
		if method == http.MethodPost {
			q.Set("management_url", m.findURL(a))
		}
		res, _, err := m.antsDo(ctx, st, method, "/appointments", q)
		if err != nil {
			return fmt.Errorf("ants %s %s: %w", args.Op, id, err)
		}
		if res.StatusCode >= 500 || res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusTooManyRequests {
			return fmt.Errorf("ants %s %s: status %d", args.Op, id, res.StatusCode)
		}
		if res.StatusCode/100 != 2 {
			m.log.Warn("ANTS refused", "op", args.Op, "id", id, "status", res.StatusCode)
		}
	}
	return nil
}
