package appointments

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Category groups services ("Identity documents", "Civil status").
type Category struct {
	ID       int64  `json:"id"`
	OrgID    int64  `json:"-"`
	Name     string `json:"name"`
	Position int    `json:"-"`
}

// Service is what a citizen books ("Passport / ID card").
type Service struct {
	ID          int64  `json:"id"`
	OrgID       int64  `json:"-"`
	CategoryID  int64  `json:"category_id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Bring       string `json:"what_to_bring"`
	// Need names what "the same person twice for the same need" means; defaults to the
	// service itself.
	Need string `json:"-"`
	// AntsReason is CNI, PASSPORT or CNI-PASSPORT for services searchable through the
	// national ANTS hub, "" otherwise.
	AntsReason string `json:"ants_reason,omitempty"`
	// SlotsPerUnit consecutive slots are taken per person or document, up to MaxUnits.
	SlotsPerUnit        int        `json:"slots_per_unit"`
	MaxUnits            int        `json:"max_units"`
	NoticeHours         int        `json:"notice_hours"`
	WindowDays          int        `json:"window_days"`
	HoldMinutes         int        `json:"hold_minutes"`
	MaxUpcoming         int        `json:"-"`
	MaxUpcomingCategory int        `json:"-"`
	MinGapDays          int        `json:"-"`
	ReminderHours       int        `json:"-"`
	Questions           []Question `json:"questions"`
	// FormKey names a published form of the forms module whose questions are asked in
	// place of Questions (questions.go); Questions remain the fallback when it is empty,
	// or when the forms module or the form is not available.
	FormKey string `json:"form,omitempty"`
	UnitID  int64  `json:"-"`
	Active  bool   `json:"-"`

	// formCheck validates answers with the form (set by the module when loading a service
	// that names one); handled is false when the form cannot be used.
	formCheck func(answers map[string]string) (handled bool, err error)
}

// NeedKey is the key of the per-person uniqueness rule.
func (s *Service) NeedKey() string {
	if s.Need != "" {
		return s.Need
	}
	return fmt.Sprintf("service:%d", s.ID)
}

// Question is asked to the citizen before the recap: the small inline list of a service
// that names no form (Service.FormKey) of the forms module.
type Question struct {
	Key      string   `json:"key"`
	Label    string   `json:"label"`
	Kind     string   `json:"kind"` // "text" or "choice"
	Choices  []string `json:"choices,omitempty"`
	Required bool     `json:"required"`
}

// Place is a meeting point: a town hall or an annex.
type Place struct {
	ID            int64   `json:"id"`
	OrgID         int64   `json:"-"`
	Name          string  `json:"name"`
	Address       string  `json:"address"`
	ZipCode       string  `json:"zip_code"`
	City          string  `json:"city"`
	Latitude      float64 `json:"latitude"`
	Longitude     float64 `json:"longitude"`
	Access        string  `json:"access"`
	Accessibility string  `json:"accessibility"`
	Website       string  `json:"website,omitempty"`
	Logo          string  `json:"-"`
	UnitID        int64   `json:"-"`
	Active        bool    `json:"-"`
}

// Range is an opening range of a day, "09:00"–"12:00" local time.
type Range struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// Template is a weekly opening schedule of a service at a place, valid from ValidFrom to
// ValidTo (inclusive, YYYY-MM-DD). Days is indexed by time.Weekday (Sunday 0); Breaks are
// cut out of every day.
type Template struct {
	ID          int64      `json:"id"`
	PlaceID     int64      `json:"place_id"`
	ServiceID   int64      `json:"service_id"`
	ValidFrom   string     `json:"valid_from"`
	ValidTo     string     `json:"valid_to"`
	SlotMinutes int        `json:"slot_minutes"`
	Capacity    int        `json:"capacity"`
	Days        [7][]Range `json:"days"`
	Breaks      []Range    `json:"breaks,omitempty"`
}

// DayRule overrides the template for one day: closed, other ranges, or another capacity.
type DayRule struct {
	PlaceID, ServiceID int64
	Day                string
	Closed             bool
	Ranges             []Range
	SlotMinutes        int
	Capacity           int // 0: the template's
}

// Slot is a materialised time slot; capacity is enforced on Booked by the database.
type Slot struct {
	ID        int64     `json:"id"`
	PlaceID   int64     `json:"meeting_point_id"`
	ServiceID int64     `json:"service_id"`
	Day       string    `json:"day"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Capacity  int       `json:"capacity"`
	Booked    int       `json:"booked"`
	Blocked   bool      `json:"blocked"`
}

// Free is the number of places left.
func (s Slot) Free() int {
	if s.Blocked || s.Booked >= s.Capacity {
		return 0
	}
	return s.Capacity - s.Booked
}

// Appointment statuses.
const (
	StatusHeld      = "held"
	StatusConfirmed = "confirmed"
	StatusCancelled = "cancelled"
	StatusExpired   = "expired"
)

// Appointment is a hold or a booking.
type Appointment struct {
	ID           int64             `json:"-"`
	OrgID        int64             `json:"-"`
	Ref          string            `json:"reference"`
	ServiceID    int64             `json:"service_id"`
	PlaceID      int64             `json:"meeting_point_id"`
	Start        time.Time         `json:"start"`
	End          time.Time         `json:"end"`
	Units        int               `json:"units"`
	Status       string            `json:"status"`
	State        string            `json:"state"`
	HoldExpires  time.Time         `json:"hold_expires_at,omitzero"`
	CitizenID    int64             `json:"-"`
	Email        string            `json:"email"`
	Phone        string            `json:"phone,omitempty"`
	Name         string            `json:"name"`
	Answers      map[string]string `json:"answers,omitempty"`
	AntsIDs      []string          `json:"ants_application_ids,omitempty"`
	Lang         string            `json:"-"`
	ReplacesID   int64             `json:"-"`
	Overbooked   bool              `json:"-"`
	BookedBy     int64             `json:"-"`
	Message      string            `json:"-"`
	CreatedAt    time.Time         `json:"created_at"`
	ConfirmedAt  time.Time         `json:"confirmed_at,omitzero"`
	CancelledAt  time.Time         `json:"cancelled_at,omitzero"`
	ServiceName  string            `json:"service_name"`
	PlaceName    string            `json:"meeting_point_name"`
	SlotIDs      []int64           `json:"-"`
	CancelToken  string            `json:"-"` // only right after confirmation
	ManageToken  string            `json:"-"`
	HoldToken    string            `json:"-"`
	PlaceAddress string            `json:"-"`
}

var antsRe = regexp.MustCompile(`^[A-Z0-9]{10}$`)

// ParseAntsIDs reads application numbers separated by spaces, commas or new lines, upper-cased.
// Each must be 10 letters or digits; the bad ones are returned.
func ParseAntsIDs(s string) (ids, bad []string) {
	seen := map[string]bool{}
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }) {
		p = strings.ToUpper(strings.TrimSpace(p))
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		if antsRe.MatchString(p) {
			ids = append(ids, p)
		} else {
			bad = append(bad, p)
		}
	}
	return ids, bad
}

func parseClock(s string) (h, m int, ok bool) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, 0, false
	}
	return t.Hour(), t.Minute(), true
}

func minutes(s string) int { h, m, _ := parseClock(s); return h*60 + m }

// checkRanges validates ranges: well-formed, start before end, not overlapping.
func checkRanges(rs []Range) bool {
	for i, r := range rs {
		if _, _, ok := parseClock(r.Start); !ok {
			return false
		}
		if _, _, ok := parseClock(r.End); !ok || minutes(r.End) <= minutes(r.Start) {
			return false
		}
		for _, o := range rs[:i] {
			if minutes(r.Start) < minutes(o.End) && minutes(o.Start) < minutes(r.End) {
				return false
			}
		}
	}
	return true
}

// SlotSpec is a slot to materialise.
type SlotSpec struct {
	Start, End time.Time
	Capacity   int
}

// DaySlots cuts ranges (minus breaks) of day into slots of length minutes, in loc.
func DaySlots(day string, loc *time.Location, ranges, breaks []Range, length, capacity int) []SlotSpec {
	d, err := time.ParseInLocation(dayLayout, day, loc)
	if err != nil || length <= 0 || capacity <= 0 {
		return nil
	}
	var out []SlotSpec
	for _, r := range ranges {
		for m := minutes(r.Start); m+length <= minutes(r.End); m += length {
			end := m + length
			inBreak := false
			for _, b := range breaks {
				if m < minutes(b.End) && minutes(b.Start) < end {
					inBreak = true
					break
				}
			}
			if inBreak {
				continue
			}
			s := time.Date(d.Year(), d.Month(), d.Day(), m/60, m%60, 0, 0, loc)
			e := time.Date(d.Year(), d.Month(), d.Day(), end/60, end%60, 0, 0, loc)
			out = append(out, SlotSpec{Start: s.UTC(), End: e.UTC(), Capacity: capacity})
		}
	}
	return out
}

// Plan computes the slots of one day from the templates, the day's rule (nil when none) and
// whether the day is closed (holiday or closing day).
func Plan(day string, loc *time.Location, templates []Template, rule *DayRule, closed bool) []SlotSpec {
	if closed || (rule != nil && rule.Closed) {
		return nil
	}
	d, err := time.Parse(dayLayout, day)
	if err != nil {
		return nil
	}
	var tpl *Template
	for i := range templates {
		if templates[i].ValidFrom <= day && day <= templates[i].ValidTo {
			tpl = &templates[i]
			break
		}
	}
	var ranges, breaks []Range
	length, capacity := 0, 0
	if tpl != nil {
		ranges, breaks, length, capacity = tpl.Days[d.Weekday()], tpl.Breaks, tpl.SlotMinutes, tpl.Capacity
	}
	if rule != nil {
		if len(rule.Ranges) > 0 {
			ranges, breaks = rule.Ranges, nil
		}
		if rule.SlotMinutes > 0 {
			length = rule.SlotMinutes
		}
		if rule.Capacity > 0 {
			capacity = rule.Capacity
		}
	}
	return DaySlots(day, loc, ranges, breaks, length, capacity)
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
