package appointments

import "time"

// Easter returns Easter Sunday of year (Gregorian calendar, anonymous algorithm).
func Easter(year int) time.Time {
	a := year % 19
	b, c := year/100, year%100
	d, e := b/4, b%4
	f := (b + 8) / 25
	g := (b - f + 1) / 3
	h := (19*a + b - d - g + 15) % 30
	i, k := c/4, c%4
	l := (32 + 2*e + 2*i - h - k) % 7
	m := (a + 11*h + 22*l) / 451
	month := (h + l - 7*m + 114) / 31
	day := (h+l-7*m+114)%31 + 1
	return time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
}

// Holiday is a French public holiday.
type Holiday struct {
	Day  string // YYYY-MM-DD
	Name string // locale key suffix
}

// Holidays lists the French public holidays of year, in date order; alsaceMoselle adds Good
// Friday and 26 December (local law of Alsace and Moselle).
func Holidays(year int, alsaceMoselle bool) []Holiday {
	e := Easter(year)
	fixed := func(m time.Month, d int) time.Time { return time.Date(year, m, d, 0, 0, 0, 0, time.UTC) }
	type h struct {
		t    time.Time
		name string
	}
	list := []h{
		{fixed(time.January, 1), "new_year"},
		{e.AddDate(0, 0, 1), "easter_monday"},
		{fixed(time.May, 1), "labour_day"},
		{fixed(time.May, 8), "victory_1945"},
		{e.AddDate(0, 0, 39), "ascension"},
		{e.AddDate(0, 0, 50), "pentecost_monday"},
		{fixed(time.July, 14), "national_day"},
		{fixed(time.August, 15), "assumption"},
		{fixed(time.November, 1), "all_saints"},
		{fixed(time.November, 11), "armistice"},
		{fixed(time.December, 25), "christmas"},
	}
	if alsaceMoselle {
		list = append(list, h{e.AddDate(0, 0, -2), "good_friday"}, h{fixed(time.December, 26), "st_stephen"})
	}
	// Ascension can fall on 1 or 8 May (2008): keep one entry per day.
	seen := map[string]bool{}
	out := make([]Holiday, 0, len(list))
	for _, x := range list {
		d := x.t.Format(dayLayout)
		if !seen[d] {
			seen[d] = true
			out = append(out, Holiday{Day: d, Name: x.name})
		}
	}
	sortHolidays(out)
	return out
}

func sortHolidays(hs []Holiday) {
	for i := 1; i < len(hs); i++ {
		for j := i; j > 0 && hs[j].Day < hs[j-1].Day; j-- {
			hs[j], hs[j-1] = hs[j-1], hs[j]
		}
	}
}

// IsHoliday reports whether day (YYYY-MM-DD) is a public holiday.
func IsHoliday(day string, alsaceMoselle bool) bool {
	t, err := time.Parse(dayLayout, day)
	if err != nil {
		return false
	}
	for _, h := range Holidays(t.Year(), alsaceMoselle) {
		if h.Day == day {
			return true
		}
	}
	return false
}

const dayLayout = "2006-01-02"
