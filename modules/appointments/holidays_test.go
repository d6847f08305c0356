package appointments

import (
	"testing"
	"time"
)

func TestHolidays(t *testing.T) {
	// Easter-based dates checked against the official calendars of 2026–2030.
	tests := []struct {
		year                                           int
		easterMonday, ascension, pentecost, goodFriday string
	}{
		{2026, "2026-04-06", "2026-05-14", "2026-05-25", "2026-04-03"},
		{2027, "2027-03-29", "2027-05-06", "2027-05-17", "2027-03-26"},
		{2028, "2028-04-17", "2028-05-25", "2028-06-05", "2028-04-14"},
		{2029, "2029-04-02", "2029-05-10", "2029-05-21", "2029-03-30"},
		{2030, "2030-04-22", "2030-05-30", "2030-06-10", "2030-04-19"},
	}
	for _, tt := range tests {
		hs := Holidays(tt.year, false)
		if len(hs) != 11 {
			t.Errorf("%d: %d holidays, want 11: %v", tt.year, len(hs), hs)
		}
		got := map[string]string{}
		for _, h := range hs {
			got[h.Name] = h.Day
		}
		y := func(md string) string {
			return time.Date(tt.year, 1, 1, 0, 0, 0, 0, time.UTC).Format("2006") + "-" + md
		}
		want := map[string]string{"new_year": y("01-01"), "easter_monday": tt.easterMonday, "labour_day": y("05-01"), "victory_1945": y("05-08"),
			"ascension": tt.ascension, "pentecost_monday": tt.pentecost, "national_day": y("07-14"), "assumption": y("08-15"),
			"all_saints": y("11-01"), "armistice": y("11-11"), "christmas": y("12-25")}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%d %s = %q, want %q", tt.year, k, got[k], v)
			}
		}
		am := Holidays(tt.year, true)
		if len(am) != 13 || !IsHoliday(tt.goodFriday, true) || IsHoliday(tt.goodFriday, false) || !IsHoliday(y("12-26"), true) || IsHoliday(y("12-26"), false) {
			t.Errorf("%d Alsace-Moselle: %v", tt.year, am)
		}
		for i := 1; i < len(am); i++ {
			if am[i].Day <= am[i-1].Day {
				t.Errorf("%d: not sorted: %v", tt.year, am)
			}
		}
	}
}

func TestPlan(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	tpl := Template{ValidFrom: "2026-01-01", ValidTo: "2026-12-31", SlotMinutes: 30, Capacity: 3}
	tpl.Days[time.Monday] = []Range{{"09:00", "12:00"}, {"14:00", "15:10"}}
	tpl.Breaks = []Range{{"10:30", "11:00"}}
	tests := []struct {
		name       string
		day        string
		rule       *DayRule
		closed     bool
		n          int
		first      string // UTC
		capacity   int
		lastEndUTC string
	}{
		{"winter Monday", "2026-03-02", nil, false, 7, "2026-03-02T08:00:00Z", 3, "2026-03-02T14:00:00Z"},
		{"summer time Monday", "2026-03-30", nil, false, 7, "2026-03-30T07:00:00Z", 3, "2026-03-30T13:00:00Z"},
		{"Tuesday: no range", "2026-03-03", nil, false, 0, "", 0, ""},
		{"outside validity", "2027-03-01", nil, false, 0, "", 0, ""},
		{"closed day", "2026-03-02", nil, true, 0, "", 0, ""},
		{"day rule closed", "2026-03-02", &DayRule{Closed: true}, false, 0, "", 0, ""},
		{"day rule ranges and capacity", "2026-03-02", &DayRule{Ranges: []Range{{"08:00", "09:00"}}, Capacity: 5}, false, 2, "2026-03-02T07:00:00Z", 5, "2026-03-02T08:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Plan(tt.day, paris, []Template{tpl}, tt.rule, tt.closed)
			if len(got) != tt.n {
				t.Fatalf("%d slots, want %d: %v", len(got), tt.n, got)
			}
			if tt.n == 0 {
				return
			}
			if got[0].Start.Format(time.RFC3339) != tt.first || got[0].Capacity != tt.capacity || got[len(got)-1].End.Format(time.RFC3339) != tt.lastEndUTC {
				t.Errorf("first %v cap %d last end %v", got[0].Start, got[0].Capacity, got[len(got)-1].End)
			}
			for _, s := range got {
				if l := s.Start.In(paris); l.Hour() == 10 && l.Minute() == 30 {
					t.Errorf("slot in the break: %v", l)
				}
			}
		})
	}
}

func TestParseAntsIDs(t *testing.T) {
	ids, bad := ParseAntsIDs("abcde12345, ABCDE12345\nXYZ 1234567890 12345678901 ab-de12345")
	if len(ids) != 2 || ids[0] != "ABCDE12345" || ids[1] != "1234567890" {
		t.Errorf("ids %v", ids)
	}
	if len(bad) != 3 {
		t.Errorf("bad %v", bad)
	}
}
