package appointments

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
)

// Settings are an organisation's appointment settings.
type Settings struct {
	OrgID         int64
	AlsaceMoselle bool
	// AntsHubToken is only set when changing it; the hash is stored.
	AntsHubTokenHash string
	AntsAPIURL       string
	AntsAPIToken     string
	SMSURL           string
	SMSToken         string
	AntsDownUntil    time.Time
}

// SaveSettings stores the settings of s.OrgID; a non-empty hubToken replaces the hub token.
func (m *Module) SaveSettings(ctx context.Context, s Settings, hubToken string) error {
	if hubToken != "" {
		s.AntsHubTokenHash = hashToken(hubToken)
	}
	return m.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO appt_settings (org_id, alsace_moselle, ants_hub_token_hash, ants_api_url, ants_api_token, sms_url, sms_token)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (org_id) DO UPDATE SET alsace_moselle = excluded.alsace_moselle,
			ants_hub_token_hash = CASE WHEN excluded.ants_hub_token_hash = '' THEN appt_settings.ants_hub_token_hash ELSE excluded.ants_hub_token_hash END,
			ants_api_url = excluded.ants_api_url, ants_api_token = excluded.ants_api_token, sms_url = excluded.sms_url, sms_token = excluded.sms_token`,
			s.OrgID, b2i(s.AlsaceMoselle), s.AntsHubTokenHash, s.AntsAPIURL, s.AntsAPIToken, s.SMSURL, s.SMSToken)
		return err
	})
}

// Settings returns an organisation's settings (defaults when none are stored).
func (m *Module) Settings(ctx context.Context, q store.Querier, orgID int64) (Settings, error) {
	s := Settings{OrgID: orgID}
	var am int
	var down sql.NullTime
	err := q.QueryRowContext(ctx, `SELECT alsace_moselle, ants_hub_token_hash, ants_api_url, ants_api_token, sms_url, sms_token, ants_down_until
		FROM appt_settings WHERE org_id = ?`, orgID).Scan(&am, &s.AntsHubTokenHash, &s.AntsAPIURL, &s.AntsAPIToken, &s.SMSURL, &s.SMSToken, &down)
	if err == sql.ErrNoRows {
		return s, nil
	}
	s.AlsaceMoselle, s.AntsDownUntil = am == 1, down.Time
	return s, err
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CreateCategory adds a category.
func (m *Module) CreateCategory(ctx context.Context, c Category) (int64, error) {
	if strings.TrimSpace(c.Name) == "" {
		return 0, errs.OnField(errs.Invalid, "name", "appointments.error.required")
	}
	var id int64
	err := m.db.InTx(ctx, func(tx *store.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO appt_categories (org_id, name, position) VALUES (?, ?, ?) RETURNING id`,
			c.OrgID, c.Name, c.Position).Scan(&id)
	})
	return id, err
}

// Categories lists an organisation's categories.
func (m *Module) Categories(ctx context.Context, orgID int64) ([]Category, error) {
	rows, err := m.db.Read().QueryContext(ctx, `SELECT id, org_id, name, position FROM appt_categories WHERE org_id = ? ORDER BY position, id`, orgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Category
	for rows.Next() {
		var c Category
		if err := rows.Scan(&c.ID, &c.OrgID, &c.Name, &c.Position); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *Service) normalize() error {
	s.Name = strings.TrimSpace(s.Name)
	if s.Name == "" {
		return errs.OnField(errs.Invalid, "name", "appointments.error.required")
	}
	switch s.AntsReason {
	case "", "CNI", "PASSPORT", "CNI-PASSPORT":
	default:
		return errs.OnField(errs.Invalid, "ants_reason", "appointments.error.ants_reason")
	}
	if s.SlotsPerUnit <= 0 {
		s.SlotsPerUnit = 1
	}
	if s.MaxUnits <= 0 {
		s.MaxUnits = 1
	}
	if s.HoldMinutes <= 0 {
		s.HoldMinutes = 10
	}
	if s.WindowDays <= 0 {
		s.WindowDays = 60
	}
	if s.NoticeHours < 0 || s.MaxUpcoming < 0 || s.MinGapDays < 0 || s.ReminderHours < 0 {
		return errs.New(errs.Invalid, "appointments.error.negative")
	}
	for _, q := range s.Questions {
		if q.Key == "" || q.Label == "" || (q.Kind != "text" && q.Kind != "choice") || (q.Kind == "choice" && len(q.Choices) == 0) {
			return errs.OnField(errs.Invalid, "questions", "appointments.error.question")
		}
	}
	s.FormKey = strings.TrimSpace(s.FormKey)
	if s.FormKey != "" && !formKeyRe.MatchString(s.FormKey) {
		return errs.OnField(errs.Invalid, "form", "appointments.error.form_unknown")
	}
	return nil
}

// TxHook runs inside a saving transaction with the saved ID (the back office records its
// audit entry there, so the change and its trace commit together).
type TxHook func(tx *store.Tx, id int64) error

// SaveService creates (ID 0) or updates a service.
func (m *Module) SaveService(ctx context.Context, s Service, hooks ...TxHook) (int64, error) {
	if err := s.normalize(); err != nil {
		return 0, err
	}
	if s.Questions == nil {
		s.Questions = []Question{}
	}
	q := mustJSON(s.Questions)
	err := m.db.InTx(ctx, func(tx *store.Tx) error {
		if s.ID == 0 {
			if err := tx.QueryRowContext(ctx, `INSERT INTO appt_services (org_id, category_id, name, description, bring, need, ants_reason,
				slots_per_unit, max_units, notice_hours, window_days, hold_minutes, max_upcoming, max_upcoming_category, min_gap_days,
				reminder_hours, questions, form_key, unit_id, active) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) RETURNING id`,
				s.OrgID, s.CategoryID, s.Name, s.Description, s.Bring, s.Need, s.AntsReason, s.SlotsPerUnit, s.MaxUnits, s.NoticeHours,
				s.WindowDays, s.HoldMinutes, s.MaxUpcoming, s.MaxUpcomingCategory, s.MinGapDays, s.ReminderHours, q, s.FormKey, s.UnitID).Scan(&s.ID); err != nil {
				return err
			}
			return runHooks(tx, s.ID, hooks)
		}
		res, err := tx.ExecContext(ctx, `UPDATE appt_services SET category_id = ?, name = ?, description = ?, bring = ?, need = ?, ants_reason = ?,
			slots_per_unit = ?, max_units = ?, notice_hours = ?, window_days = ?, hold_minutes = ?, max_upcoming = ?, max_upcoming_category = ?,
			min_gap_days = ?, reminder_hours = ?, questions = ?, form_key = ?, unit_id = ?, active = ? WHERE id = ? AND org_id = ?`,
			s.CategoryID, s.Name, s.Description, s.Bring, s.Need, s.AntsReason, s.SlotsPerUnit, s.MaxUnits, s.NoticeHours, s.WindowDays,
			s.HoldMinutes, s.MaxUpcoming, s.MaxUpcomingCategory, s.MinGapDays, s.ReminderHours, q, s.FormKey, s.UnitID, b2i(s.Active), s.ID, s.OrgID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errs.New(errs.NotFound, "appointments.error.no_service")
		}
		tx.AfterCommit(func() { m.cache.services.drop(s.ID); m.slotsChanged() })
		return runHooks(tx, s.ID, hooks)
	})
	return s.ID, err
}

const serviceCols = `id, org_id, category_id, name, description, bring, need, ants_reason, slots_per_unit, max_units, notice_hours,
	window_days, hold_minutes, max_upcoming, max_upcoming_category, min_gap_days, reminder_hours, questions, form_key, unit_id, active`

func scanService(sc interface{ Scan(...any) error }) (Service, error) {
	var s Service
	var q string
	var active int
	err := sc.Scan(&s.ID, &s.OrgID, &s.CategoryID, &s.Name, &s.Description, &s.Bring, &s.Need, &s.AntsReason, &s.SlotsPerUnit,
		&s.MaxUnits, &s.NoticeHours, &s.WindowDays, &s.HoldMinutes, &s.MaxUpcoming, &s.MaxUpcomingCategory, &s.MinGapDays,
		&s.ReminderHours, &q, &s.FormKey, &s.UnitID, &active)
	if err != nil {
		return s, err
	}
	s.Active = active == 1
	_ = json.Unmarshal([]byte(q), &s.Questions)
	return s, nil
}

// Service returns one service.
func (m *Module) Service(ctx context.Context, q store.Querier, id int64) (Service, error) {
	s, err := scanService(q.QueryRowContext(ctx, `SELECT `+serviceCols+` FROM appt_services WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return s, errs.New(errs.NotFound, "appointments.error.no_service")
	}
	m.bindForm(&s)
	return s, err
}

// Services lists an organisation's services (active ones only when active is true).
func (m *Module) Services(ctx context.Context, orgID int64, active bool) ([]Service, error) {
	rows, err := m.db.Read().QueryContext(ctx, `SELECT `+serviceCols+` FROM appt_services WHERE org_id = ? AND (active = 1 OR ? = 0) ORDER BY category_id, name`, orgID, b2i(active))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Service
	for rows.Next() {
		s, err := scanService(rows)
		if err != nil {
			return nil, err
		}
		m.bindForm(&s)
		out = append(out, s)
	}
	return out, rows.Err()
}

func runHooks(tx *store.Tx, id int64, hooks []TxHook) error {
	for _, h := range hooks {
		if err := h(tx, id); err != nil {
			return err
		}
	}
	return nil
}

// SavePlace creates (ID 0) or updates a meeting point.
func (m *Module) SavePlace(ctx context.Context, p Place, hooks ...TxHook) (int64, error) {
	if strings.TrimSpace(p.Name) == "" {
		return 0, errs.OnField(errs.Invalid, "name", "appointments.error.required")
	}
	if p.Latitude < -90 || p.Latitude > 90 || p.Longitude < -180 || p.Longitude > 180 {
		return 0, errs.OnField(errs.Invalid, "latitude", "appointments.error.coordinates")
	}
	err := m.db.InTx(ctx, func(tx *store.Tx) error {
		if p.ID == 0 {
			if err := tx.QueryRowContext(ctx, `INSERT INTO appt_places (org_id, name, address, zip_code, city, latitude, longitude, access,
				accessibility, website, logo, unit_id, active) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) RETURNING id`,
				p.OrgID, p.Name, p.Address, p.ZipCode, p.City, p.Latitude, p.Longitude, p.Access, p.Accessibility, p.Website, p.Logo, p.UnitID).Scan(&p.ID); err != nil {
				return err
			}
			return runHooks(tx, p.ID, hooks)
		}
		res, err := tx.ExecContext(ctx, `UPDATE appt_places SET name = ?, address = ?, zip_code = ?, city = ?, latitude = ?, longitude = ?,
			access = ?, accessibility = ?, website = ?, logo = ?, unit_id = ?, active = ? WHERE id = ? AND org_id = ?`,
			p.Name, p.Address, p.ZipCode, p.City, p.Latitude, p.Longitude, p.Access, p.Accessibility, p.Website, p.Logo, p.UnitID, b2i(p.Active), p.ID, p.OrgID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errs.New(errs.NotFound, "appointments.error.no_place")
		}
		tx.AfterCommit(m.slotsChanged)
		return runHooks(tx, p.ID, hooks)
	})
	return p.ID, err
}

const placeCols = `id, org_id, name, address, zip_code, city, latitude, longitude, access, accessibility, website, logo, unit_id, active`

func scanPlace(sc interface{ Scan(...any) error }) (Place, error) {
	var p Place
	var active int
	err := sc.Scan(&p.ID, &p.OrgID, &p.Name, &p.Address, &p.ZipCode, &p.City, &p.Latitude, &p.Longitude, &p.Access, &p.Accessibility,
		&p.Website, &p.Logo, &p.UnitID, &active)
	p.Active = active == 1
	return p, err
}

// Place returns one meeting point.
func (m *Module) Place(ctx context.Context, q store.Querier, id int64) (Place, error) {
	p, err := scanPlace(q.QueryRowContext(ctx, `SELECT `+placeCols+` FROM appt_places WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return p, errs.New(errs.NotFound, "appointments.error.no_place")
	}
	return p, err
}

// Places lists the meeting points of an organisation, or those offering serviceID when not 0.
func (m *Module) Places(ctx context.Context, orgID, serviceID int64) ([]Place, error) {
	q := `SELECT ` + placeCols + ` FROM appt_places WHERE org_id = ? AND active = 1 ORDER BY name`
	args := []any{orgID}
	if serviceID != 0 {
		q = `SELECT ` + placeCols + ` FROM appt_places WHERE org_id = ? AND active = 1
			AND id IN (SELECT place_id FROM appt_offers WHERE service_id = ?) ORDER BY name`
		args = append(args, serviceID)
	}
	rows, err := m.db.Read().QueryContext(ctx, q, args...)
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

// Offer makes a service bookable at a place.
func (m *Module) Offer(ctx context.Context, serviceID, placeID int64) error {
	return m.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO appt_offers (service_id, place_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, serviceID, placeID)
		return err
	})
}

// SaveTemplate stores a weekly template, refusing one whose validity overlaps another of the
// same service and place, then regenerates the free future slots it covers.
func (m *Module) SaveTemplate(ctx context.Context, t Template, hooks ...TxHook) (int64, error) {
	from, err1 := time.Parse(dayLayout, t.ValidFrom)
	to, err2 := time.Parse(dayLayout, t.ValidTo)
	switch {
	case err1 != nil:
		return 0, errs.OnField(errs.Invalid, "valid_from", "appointments.error.date")
	case err2 != nil || to.Before(from):
		return 0, errs.OnField(errs.Invalid, "valid_to", "appointments.error.date_order")
	case t.SlotMinutes < 5 || t.SlotMinutes > 480:
		return 0, errs.OnField(errs.Invalid, "slot_minutes", "appointments.error.slot_minutes")
	case t.Capacity < 1 || t.Capacity > 10000:
		return 0, errs.OnField(errs.Invalid, "capacity", "appointments.error.capacity")
	}
	for _, d := range t.Days {
		if !checkRanges(d) {
			return 0, errs.OnField(errs.Invalid, "days", "appointments.error.ranges")
		}
	}
	if !checkRanges(t.Breaks) {
		return 0, errs.OnField(errs.Invalid, "breaks", "appointments.error.ranges")
	}
	week := mustJSON(struct {
		Days   [7][]Range `json:"days"`
		Breaks []Range    `json:"breaks"`
	}{t.Days, t.Breaks})
	err := m.db.InTx(ctx, func(tx *store.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM appt_templates WHERE place_id = ? AND service_id = ? AND id <> ?
			AND valid_from <= ? AND ? <= valid_to`, t.PlaceID, t.ServiceID, t.ID, t.ValidTo, t.ValidFrom).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errs.OnField(errs.Conflict, "valid_from", "appointments.error.template_overlap")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO appt_offers (service_id, place_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, t.ServiceID, t.PlaceID); err != nil {
			return err
		}
		if t.ID == 0 {
			if err := tx.QueryRowContext(ctx, `INSERT INTO appt_templates (place_id, service_id, valid_from, valid_to, slot_minutes, capacity, week)
				VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, t.PlaceID, t.ServiceID, t.ValidFrom, t.ValidTo, t.SlotMinutes, t.Capacity, week).Scan(&t.ID); err != nil {
				return err
			}
		} else if _, err := tx.ExecContext(ctx, `UPDATE appt_templates SET valid_from = ?, valid_to = ?, slot_minutes = ?, capacity = ?, week = ?
			WHERE id = ? AND place_id = ? AND service_id = ?`, t.ValidFrom, t.ValidTo, t.SlotMinutes, t.Capacity, week, t.ID, t.PlaceID, t.ServiceID); err != nil {
			return err
		}
		if err := m.regenerate(ctx, tx, t.PlaceID, t.ServiceID, t.ValidFrom, t.ValidTo); err != nil {
			return err
		}
		return runHooks(tx, t.ID, hooks)
	})
	return t.ID, err
}

// regenerate drops the free future slots of a period and recreates them from the rules;
// slots holding appointments stay (agents see and move those).
func (m *Module) regenerate(ctx context.Context, tx *store.Tx, placeID, serviceID int64, from, to string) error {
	today := m.now().In(m.loc).Format(dayLayout)
	if from < today {
		from = today
	}
	var until string
	if err := tx.QueryRowContext(ctx, `SELECT generated_until FROM appt_offers WHERE service_id = ? AND place_id = ?`, serviceID, placeID).Scan(&until); err != nil {
		return err
	}
	if until == "" || until < from {
		return nil // not generated yet: on demand
	}
	if to > until {
		to = until
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM appt_slots WHERE place_id = ? AND service_id = ? AND day >= ? AND day <= ? AND booked = 0
		AND id NOT IN (SELECT slot_id FROM appt_appointment_slots)`, placeID, serviceID, from, to); err != nil {
		return err
	}
	return m.generateTx(ctx, tx, placeID, serviceID, from, to)
}

func (m *Module) templates(ctx context.Context, q store.Querier, placeID, serviceID int64) ([]Template, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, valid_from, valid_to, slot_minutes, capacity, week FROM appt_templates
		WHERE place_id = ? AND service_id = ? ORDER BY valid_from`, placeID, serviceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Template
	for rows.Next() {
		t := Template{PlaceID: placeID, ServiceID: serviceID}
		var week string
		if err := rows.Scan(&t.ID, &t.ValidFrom, &t.ValidTo, &t.SlotMinutes, &t.Capacity, &week); err != nil {
			return nil, err
		}
		var w struct {
			Days   [7][]Range `json:"days"`
			Breaks []Range    `json:"breaks"`
		}
		if err := json.Unmarshal([]byte(week), &w); err != nil {
			return nil, fmt.Errorf("template %d: %w", t.ID, err)
		}
		t.Days, t.Breaks = w.Days, w.Breaks
		out = append(out, t)
	}
	return out, rows.Err()
}

// Templates lists the weekly templates of a service at a place.
func (m *Module) Templates(ctx context.Context, placeID, serviceID int64) ([]Template, error) {
	return m.templates(ctx, m.db.Read(), placeID, serviceID)
}

// SaveDayRule stores a specific day (closed, other ranges) and regenerates it.
func (m *Module) SaveDayRule(ctx context.Context, r DayRule) error {
	if _, err := time.Parse(dayLayout, r.Day); err != nil {
		return errs.OnField(errs.Invalid, "day", "appointments.error.date")
	}
	if !checkRanges(r.Ranges) {
		return errs.OnField(errs.Invalid, "ranges", "appointments.error.ranges")
	}
	return m.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO appt_days (place_id, service_id, day, closed, ranges, slot_minutes, capacity)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (place_id, service_id, day) DO UPDATE SET closed = excluded.closed,
			ranges = excluded.ranges, slot_minutes = excluded.slot_minutes, capacity = excluded.capacity`,
			r.PlaceID, r.ServiceID, r.Day, b2i(r.Closed), mustJSON(r.Ranges), r.SlotMinutes, r.Capacity); err != nil {
			return err
		}
		return m.regenerate(ctx, tx, r.PlaceID, r.ServiceID, r.Day, r.Day)
	})
}

// AddClosing closes a day for every place of the organisation (placeID 0) or one place.
func (m *Module) AddClosing(ctx context.Context, orgID, placeID int64, day, reason string) error {
	if _, err := time.Parse(dayLayout, day); err != nil {
		return errs.OnField(errs.Invalid, "day", "appointments.error.date")
	}
	return m.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO appt_closings (org_id, place_id, day, reason) VALUES (?, ?, ?, ?)`, orgID, placeID, day, reason); err != nil {
			return err
		}
		// Free slots of that day disappear; booked ones stay for agents to move.
		tx.AfterCommit(m.slotsChanged)
		_, err := tx.ExecContext(ctx, `DELETE FROM appt_slots WHERE day = ? AND booked = 0 AND id NOT IN (SELECT slot_id FROM appt_appointment_slots)
			AND place_id IN (SELECT id FROM appt_places WHERE org_id = ? AND (id = ? OR ? = 0))`, day, orgID, placeID, placeID)
		return err
	})
}

// closedDays returns the organisation's closing days for placeID between from and to.
func (m *Module) closedDays(ctx context.Context, q store.Querier, orgID, placeID int64, from, to string) (map[string]bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT day FROM appt_closings WHERE org_id = ? AND (place_id = 0 OR place_id = ?) AND day >= ? AND day <= ?`,
		orgID, placeID, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out[d] = true
	}
	return out, rows.Err()
}

func (m *Module) dayRules(ctx context.Context, q store.Querier, placeID, serviceID int64, from, to string) (map[string]*DayRule, error) {
	rows, err := q.QueryContext(ctx, `SELECT day, closed, ranges, slot_minutes, capacity FROM appt_days
		WHERE place_id = ? AND service_id = ? AND day >= ? AND day <= ?`, placeID, serviceID, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]*DayRule{}
	for rows.Next() {
		r := &DayRule{PlaceID: placeID, ServiceID: serviceID}
		var closed int
		var ranges string
		if err := rows.Scan(&r.Day, &closed, &ranges, &r.SlotMinutes, &r.Capacity); err != nil {
			return nil, err
		}
		r.Closed = closed == 1
		_ = json.Unmarshal([]byte(ranges), &r.Ranges)
		out[r.Day] = r
	}
	return out, rows.Err()
}

// generateTx materialises the slots of days from..to (inclusive) for one offer; existing
// slots are kept (INSERT … ON CONFLICT DO NOTHING), so it is idempotent and safe on any node.
func (m *Module) generateTx(ctx context.Context, tx *store.Tx, placeID, serviceID int64, from, to string) error {
	p, err := m.Place(ctx, tx, placeID)
	if err != nil {
		return err
	}
	st, err := m.Settings(ctx, tx, p.OrgID)
	if err != nil {
		return err
	}
	tpls, err := m.templates(ctx, tx, placeID, serviceID)
	if err != nil {
		return err
	}
	closed, err := m.closedDays(ctx, tx, p.OrgID, placeID, from, to)
	if err != nil {
		return err
	}
	rules, err := m.dayRules(ctx, tx, placeID, serviceID, from, to)
	if err != nil {
		return err
	}
	start, _ := time.Parse(dayLayout, from)
	end, _ := time.Parse(dayLayout, to)
	for d := start; !d.After(end); d = d.AddDate(0, 0, 1) {
		day := d.Format(dayLayout)
		for _, s := range Plan(day, m.loc, tpls, rules[day], closed[day] || IsHoliday(day, st.AlsaceMoselle)) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO appt_slots (place_id, service_id, day, starts_at, ends_at, start_s, end_s, capacity)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (place_id, service_id, starts_at) DO NOTHING`,
				placeID, serviceID, day, s.Start, s.End, s.Start.Unix(), s.End.Unix(), s.Capacity); err != nil {
				return fmt.Errorf("generate slots: %w", err)
			}
		}
	}
	tx.AfterCommit(m.slotsChanged)
	_, err = tx.ExecContext(ctx, `UPDATE appt_offers SET generated_until = ? WHERE service_id = ? AND place_id = ? AND generated_until < ?`,
		to, serviceID, placeID, to)
	return err
}

// Ensure makes sure slots exist up to day `to` for one offer (on demand, before listing).
func (m *Module) Ensure(ctx context.Context, placeID, serviceID int64, to string) error {
	var until string
	err := m.db.Read().QueryRowContext(ctx, `SELECT generated_until FROM appt_offers WHERE service_id = ? AND place_id = ?`, serviceID, placeID).Scan(&until)
	if err == sql.ErrNoRows {
		return errs.New(errs.NotFound, "appointments.error.no_offer")
	}
	if err != nil || until >= to {
		return err
	}
	return m.db.InTx(ctx, func(tx *store.Tx) error {
		// Another node may have generated meanwhile: re-read under the write lock.
		if err := tx.QueryRowContext(ctx, `SELECT generated_until FROM appt_offers WHERE service_id = ? AND place_id = ?`, serviceID, placeID).Scan(&until); err != nil {
			return err
		}
		if until >= to {
			return nil
		}
		from := m.now().In(m.loc).Format(dayLayout)
		if until != "" {
			u, _ := time.Parse(dayLayout, until)
			if next := u.AddDate(0, 0, 1).Format(dayLayout); next > from {
				from = next
			}
		}
		return m.generateTx(ctx, tx, placeID, serviceID, from, to)
	})
}

// GenerateAll materialises every offer's slots over its service's booking window (the
// daily job and start-up call it).
func (m *Module) GenerateAll(ctx context.Context) error {
	rows, err := m.db.Read().QueryContext(ctx, `SELECT o.place_id, o.service_id, s.window_days FROM appt_offers o
		JOIN appt_services s ON s.id = o.service_id WHERE s.active = 1`)
	if err != nil {
		return err
	}
	type offer struct {
		p, s int64
		w    int
	}
	var offers []offer
	for rows.Next() {
		var o offer
		if err := rows.Scan(&o.p, &o.s, &o.w); err != nil {
			rows.Close()
			return err
		}
		offers = append(offers, o)
	}
	rows.Close()
	for _, o := range offers {
		to := m.now().In(m.loc).AddDate(0, 0, o.w+1).Format(dayLayout)
		if err := m.Ensure(ctx, o.p, o.s, to); err != nil {
			return err
		}
	}
	return nil
}
