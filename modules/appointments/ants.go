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
	"sync"
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
	// (cache.go), keyed by organisation and the query as sent. Without the cache, the
	// answer (megabytes) is written in a buffer reused from one answer to the next.
	var body []byte
	var err error
	if m.cache.off.Load() {
		buf := hubBuffers.Get().(*[]byte)
		defer func() {
			if cap(*buf) <= 64<<20 {
				hubBuffers.Put(buf)
			}
		}()
		body, err = m.hubSlots(ctx, (*buf)[:0], org, ids, pids, start, end, reason, docs)
		*buf = body
	} else {
		body, err = m.cachedAnswer("hub|"+strconv.FormatInt(org, 10)+"|"+r.URL.RawQuery, func() ([]byte, error) {
			return m.hubSlots(ctx, nil, org, ids, pids, start, end, reason, docs)
		})
	}
	if err != nil {
		m.apiFail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// hubBuffers are the buffers of uncached answers.
var hubBuffers = sync.Pool{New: func() any { return new([]byte) }}

// hubOffer is one (meeting point, service) of an availableTimeSlots answer, with the
// period asked of it (Unix seconds, from inclusive, to exclusive).
type hubOffer struct {
	place, svc                                 int64
	until                                      string
	version                                    int64
	perUnit, maxUnits, noticeHours, windowDays int
	from, to                                   int64
}

// hubFound is what an answer lists per meeting point.
type hubFound interface {
	// appendPlace writes the entries of a meeting point, each followed by tail and
	// separated by commas.
	appendPlace(b []byte, place int64, tail []byte) []byte
	// size returns the length of all the entries without their tails, and their number.
	size() (bytes, n int)
}

// scanHit is a start found by hubScan.
type scanHit struct{ id, svc, place, at int64 }

type scanFound struct {
	m    *Module
	pre  []byte
	hits map[int64][]scanHit
}

func (f scanFound) appendPlace(b []byte, place int64, tail []byte) []byte {
	for i, h := range f.hits[place] {
		if i > 0 {
			b = append(b, ',')
		}
		b = f.m.appendHubEntry(b, f.pre, h.id, h.svc, h.place, h.at)
		b = append(b, tail...)
	}
	return b
}

func (f scanFound) size() (int, int) {
	n := 0
	for _, h := range f.hits {
		n += len(h)
	}
	return n * (100 + len(f.pre)), n
}

// hubSlots computes availableTimeSlots. The slots of each offer (IDs and times, which never
// change) are kept in memory while the offer's slots_version is unchanged, so that only
// which slots are free is read from the database (perf_hub.go); the JSON is written by hand
// (tens of thousands of entries).
// The answer is appended to dst (nil, or a buffer to reuse).
func (m *Module) hubSlots(ctx context.Context, dst []byte, org int64, ids []string, pids []any, start, end time.Time, reason string, docs int) ([]byte, error) {
	for try := 0; ; try++ {
		kept, minFrom, maxTo, err := m.hubOffers(ctx, org, pids, start, end, reason, docs)
		if err != nil {
			return nil, err
		}
		var found hubFound
		found, ok, err := m.hubGrid(ctx, kept, minFrom, maxTo, docs)
		if err != nil {
			return nil, err
		}
		if !ok && try < 3 {
			continue // the slots of an offer changed while reading: read again
		}
		if !ok {
			if found, err = m.hubScan(ctx, kept, minFrom, maxTo, docs); err != nil {
				return nil, err
			}
		}
		return m.hubJSON(dst, ids, found, docs), nil
	}
}

// hubOffers reads the offers of the requested meeting points for the reason, generates
// their slots up to the period's end when needed, and keeps those that can take docs
// documents and have some of the period inside their booking window.
func (m *Module) hubOffers(ctx context.Context, org int64, pids []any, start, end time.Time, reason string, docs int) (kept []hubOffer, minFrom, maxTo int64, err error) {
	args := append([]any{org, reason}, pids...)
	rows, err := m.db.Read().QueryContext(ctx, `SELECT o.place_id, o.generated_until, o.slots_version, s.id, s.slots_per_unit, s.max_units, s.notice_hours, s.window_days
		FROM appt_offers o JOIN appt_services s ON s.id = o.service_id JOIN appt_places p ON p.id = o.place_id
		WHERE p.org_id = ? AND p.active = 1 AND s.active = 1 AND (s.ants_reason = ? OR s.ants_reason = 'CNI-PASSPORT')
		AND o.place_id IN (`+placeholders(len(pids))+`)`, args...)
	if err != nil {
		return nil, 0, 0, err
	}
	var offers []hubOffer
	for rows.Next() {
		var o hubOffer
		if err := rows.Scan(&o.place, &o.until, &o.version, &o.svc, &o.perUnit, &o.maxUnits, &o.noticeHours, &o.windowDays); err != nil {
			rows.Close()
			return nil, 0, 0, err
		}
		offers = append(offers, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, 0, err
	}
	now := m.now()
	minFrom, maxTo = int64(1<<62), int64(0)
	kept = offers[:0]
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
				return nil, 0, 0, err
			}
			o.version = -1 // generated since it was read: hubGrid reads it again
		}
		o.from, o.to = from.Unix(), to.Unix()
		minFrom, maxTo = min(minFrom, o.from), max(maxTo, o.to)
		kept = append(kept, o)
	}
	return kept, minFrom, maxTo, nil
}

// hubScanArgs are the place and service IDs of the offers, for the IN lists of a query.
func hubScanArgs(kept []hubOffer) (places, svcs []any) {
	seenSvc, seenPlace := map[int64]bool{}, map[int64]bool{}
	for _, o := range kept {
		if !seenSvc[o.svc] {
			seenSvc[o.svc] = true
			svcs = append(svcs, o.svc)
		}
		if !seenPlace[o.place] {
			seenPlace[o.place] = true
			places = append(places, o.place)
		}
	}
	return places, svcs
}

// hubScan finds the starts of the answer by reading every free slot of the period from the
// database (one row each): hubGrid's fallback, and the reference its tests compare with.
func (m *Module) hubScan(ctx context.Context, kept []hubOffer, minFrom, maxTo int64, docs int) (scanFound, error) {
	// Free starts per place: only integers travel and are scanned (no timestamp text).
	type freeStart struct{ id, svc, place, at, end int64 }
	found := scanFound{m: m, pre: m.hubCallbackPrefix(), hits: map[int64][]scanHit{}}
	if len(kept) == 0 {
		return found, nil
	}
	places, svcs := hubScanArgs(kept)
	args := append(append(places, svcs...), minFrom, maxTo)
	rows, err := m.db.Read().QueryContext(ctx, `SELECT id, service_id, place_id, start_s, end_s FROM appt_slots
		WHERE place_id IN (`+placeholders(len(places))+`) AND service_id IN (`+placeholders(len(svcs))+`)
		AND start_s >= ? AND start_s < ? AND booked < capacity AND blocked = 0 ORDER BY place_id, service_id, start_s`, args...)
	if err != nil {
		return found, err
	}
	byOffer := map[[2]int64][]freeStart{}
	for rows.Next() {
		var s freeStart
		if err := rows.Scan(&s.id, &s.svc, &s.place, &s.at, &s.end); err != nil {
			rows.Close()
			return found, err
		}
		k := [2]int64{s.place, s.svc}
		byOffer[k] = append(byOffer[k], s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return found, err
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
				found.hits[o.place] = append(found.hits[o.place], scanHit{id: s.id, svc: s.svc, place: s.place, at: s.at})
			}
		}
	}
	return found, nil
}

// hubCallbackPrefix is the JSON string of the booking page's base URL, without its closing
// quote: the only part of an entry that may need escaping.
func (m *Module) hubCallbackPrefix() []byte {
	pre, _ := json.Marshal(m.baseURL() + "/rdv/demarche/")
	return pre[:len(pre)-1]
}

// appendHubEntry writes an entry of the answer up to the number of documents, which ends
// its callback URL: {"datetime":"…","callback_url":"…/rdv/demarche/SVC/PLACE/DAY?creneau=ID&personnes=
func (m *Module) appendHubEntry(b, pre []byte, id, svc, place, at int64) []byte {
	t := time.Unix(at, 0).In(m.loc)
	b = append(b, `{"datetime":"`...)
	b = t.AppendFormat(b, time.RFC3339)
	b = append(b, `","callback_url":`...)
	b = append(b, pre...)
	b = strconv.AppendInt(b, svc, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, place, 10)
	b = append(b, '/')
	b = t.AppendFormat(b, dayLayout)
	b = append(b, "?creneau="...)
	b = strconv.AppendInt(b, id, 10)
	return append(b, "&personnes="...)
}

// hubJSON appends to dst the answer: every requested meeting point (in the order asked,
// once), with its starts.
func (m *Module) hubJSON(dst []byte, ids []string, found hubFound, docs int) []byte {
	tail := strconv.AppendInt(nil, int64(docs), 10)
	tail = append(tail, `"}`...)
	size, n := found.size()
	if need := len(dst) + 4 + len(ids)*24 + size + n*(len(tail)+1); cap(dst) < need {
		dst = append(make([]byte, 0, need), dst...)
	}
	b := append(dst, '{')
	done := make(map[string]bool, len(ids))
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
		b = found.appendPlace(b, id, tail)
		b = append(b, ']')
	}
	return append(b, '}', '\n')
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
