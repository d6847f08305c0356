package forms

import (
	"strings"
	"testing"
	"time"
)

func TestValidators(t *testing.T) {
	cases := []struct {
		name string
		f    func(string) (string, bool)
		in   string
		want string // "" when refused
	}{
		{"phone fr local", func(s string) (string, bool) { return Phone(s, "fr") }, "01 23 45 67 89", "+33123456789"},
		{"phone fr dots", func(s string) (string, bool) { return Phone(s, "fr") }, "06.12.34.56.78", "+33612345678"},
		{"phone fr +33", func(s string) (string, bool) { return Phone(s, "fr") }, "+33 6 12 34 56 78", "+33612345678"},
		{"phone fr 0033", func(s string) (string, bool) { return Phone(s, "fr") }, "0033612345678", "+33612345678"},
		{"phone fr refuses Belgium", func(s string) (string, bool) { return Phone(s, "fr") }, "+32 2 123 45 67", ""},
		{"phone fr too short", func(s string) (string, bool) { return Phone(s, "fr") }, "01 23 45 67", ""},
		{"phone fr 00 prefix digit", func(s string) (string, bool) { return Phone(s, "fr") }, "0023456789", ""},
		{"phone +33 wrong length", func(s string) (string, bool) { return Phone(s, "intl") }, "+33 6 12 34 56", ""},
		{"phone intl Belgium", func(s string) (string, bool) { return Phone(s, "intl") }, "+32 2 123 45 67", "+3221234567"},
		{"phone intl letters", func(s string) (string, bool) { return Phone(s, "intl") }, "+33 6 ab cd ef gh", ""},
		{"phone intl too long", func(s string) (string, bool) { return Phone(s, "intl") }, "+1234567890123456", ""},
		{"email", Email, "Lea@Example.ORG", "Lea@example.org"},
		{"email no domain dot", Email, "lea@localhost", ""},
		{"email with name", Email, "Léa <lea@example.org>", ""},
		{"email two at", Email, "lea@@example.org", ""},
		{"email empty", Email, "", ""},
		{"siret valid", SIRET, "732 829 320 00074", "73282932000074"},
		{"siret bad key", SIRET, "73282932000075", ""},
		{"siret 13 digits", SIRET, "7328293200007", ""},
		{"siret letters", SIRET, "7328293200007A", ""},
		{"siret La Poste", SIRET, "35600000000048", "35600000000048"},
		{"siret La Poste etab", SIRET, "35600000049837", "35600000049837"},
		{"siret La Poste bad", SIRET, "35600000049838", ""},
		{"iban FR", IBAN, "fr76 3000 6000 0112 3456 7890 189", "FR76 3000 6000 0112 3456 7890 189"},
		{"iban DE", IBAN, "DE89370400440532013000", "DE89 3704 0044 0532 0130 00"},
		{"iban bad checksum", IBAN, "FR7630006000011234567890188", ""},
		{"iban FR wrong length", IBAN, "FR763000600001123456789018", ""},
		{"iban garbage", IBAN, "not an iban", ""},
		{"iban bad country digits", IBAN, "F176300060000112345678901", ""},
	}
	for _, c := range cases {
		got, ok := c.f(c.in)
		if ok != (c.want != "") || (ok && got != c.want) {
			t.Errorf("%s: %q → %q %v, want %q", c.name, c.in, got, ok, c.want)
		}
	}
}

func TestPostcode(t *testing.T) {
	cases := []struct {
		code, town   string
		okCode, okTn bool
	}{
		{"75011", "Paris", true, true},
		{"75011", "PARIS 11E", true, true},
		{"75011", "Lyon", true, false},
		{"69003", "Lyon", true, true},
		{"69003", "Villeurbanne", true, false},
		{"13008", "Marseille", true, true},
		{"29200", "Brest", true, true}, // not in the table: any town
		{"97411", "Saint-Pierre", true, true},
		{"7501", "Paris", false, false},
		{"00100", "X", false, false},
		{"96000", "X", false, false},
		{"97900", "X", false, false},
		{"98100", "X", false, false},
		{"7501A", "Paris", false, false},
		{"", "", false, false},
	}
	for _, c := range cases {
		okc, okt := Postcode(c.code, c.town)
		if okc != c.okCode || (okc && okt != c.okTn) {
			t.Errorf("%q %q: %v %v, want %v %v", c.code, c.town, okc, okt, c.okCode, c.okTn)
		}
	}
}

func TestRelativeDates(t *testing.T) {
	today := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	for spec, want := range map[string]string{"0d": "2026-03-02", "+2d": "2026-03-04", "-18y": "2008-03-02", "+3m": "2026-06-02"} {
		got, err := RelativeDate(spec, today)
		if err != nil || got.Format("2006-01-02") != want {
			t.Errorf("%s: %v %v, want %s", spec, got, err, want)
		}
	}
	for _, bad := range []string{"", "2d+", "+2w", "tomorrow", "+99999d"} {
		if _, err := RelativeDate(bad, today); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestQuestionChecks: every type refuses invalid values with its code, and accepts a valid one.
func TestQuestionChecks(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	today := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	opts := []Option{{"a", "A"}, {"b", "B"}, {"c", "C"}}
	cases := []struct {
		q    Question
		raw  any
		code string // "" when accepted
	}{
		{Question{Type: TText, Required: true}, "", "required"},
		{Question{Type: TText, Required: true}, "   ", "required"},
		{Question{Type: TText, MaxLength: 3}, "abcd", "too_long"},
		{Question{Type: TText, MinLength: 3}, "ab", "too_short"},
		{Question{Type: TText}, strings.Repeat("x", 501), "too_long"},
		{Question{Type: TText, Pattern: `[A-Z]{2}-\d{3}`}, "AB-12", "pattern"},
		{Question{Type: TText, Pattern: `[A-Z]{2}-\d{3}`}, "xAB-123", "pattern"},
		{Question{Type: TText, Pattern: `[A-Z]{2}-\d{3}`}, "AB-123", ""},
		{Question{Type: TText}, []any{"a"}, "type"},
		{Question{Type: TText}, "a\x00b", "type"},
		{Question{Type: TTextarea}, strings.Repeat("é", 10000), ""},
		{Question{Type: TNumber}, "douze", "number"},
		{Question{Type: TNumber}, "NaN", "number"},
		{Question{Type: TNumber, Min: f(1)}, "0", "min"},
		{Question{Type: TNumber, Max: f(10)}, "10,5", "max"},
		{Question{Type: TNumber, Min: f(0), Step: 0.5}, "1.2", "step"},
		{Question{Type: TNumber, Min: f(0), Step: 0.5}, "1,5", ""},
		{Question{Type: TEmail}, "lea@", "email"},
		{Question{Type: TPhone, Phone: "fr"}, "+44 20 7946 0958", "phone_fr"},
		{Question{Type: TPhone}, "12", "phone_intl"},
		{Question{Type: TDate}, "2026-02-30", "date"},
		{Question{Type: TDate}, "02/03/2026", "date"},
		{Question{Type: TDate, MinDate: "+2d"}, "2026-03-03", "date_min"},
		{Question{Type: TDate, MinDate: "+2d"}, "2026-03-04", ""},
		{Question{Type: TDate, MaxDate: "-18y"}, "2010-01-01", "date_max"},
		{Question{Type: TTime}, "24:00", "time"},
		{Question{Type: TTime}, "9:5", "time"},
		{Question{Type: TDateTime}, "2026-03-02 10:00", "datetime"},
		{Question{Type: TDateTime, MaxDate: "0d"}, "2026-03-03T10:00", "date_max"},
		{Question{Type: TChoice, Options: opts}, "z", "choice"},
		{Question{Type: TMulti, Options: opts}, []string{"a", "z"}, "choice"},
		{Question{Type: TMulti, Options: opts, MinSelect: 2}, []string{"a"}, "min_select"},
		{Question{Type: TMulti, Options: opts, MaxSelect: 2}, []string{"a", "b", "c"}, "max_select"},
		{Question{Type: TMulti, Options: opts}, []any{1.0}, "type"},
		{Question{Type: TMulti, Options: opts, Required: true}, nil, "required"},
		{Question{Type: TYesNo}, "peut-être", "yesno"},
		{Question{Type: TYesNo}, true, ""},
		{Question{Type: TTerms}, "no", "terms"},
		{Question{Type: TSIRET}, "12345678901234", "siret"},
		{Question{Type: TIBAN}, "FR7630006000011234567890188", "iban"},
		{Question{Type: TAddress, Required: true}, map[string]any{}, "required"},
		{Question{Type: TAddress}, map[string]any{"street": "1 rue X", "postcode": "7501", "town": "Paris"}, "postcode"},
		{Question{Type: TAddress}, map[string]any{"street": "1 rue X", "postcode": "75011", "town": "Lyon"}, "town"},
		{Question{Type: TAddress}, map[string]any{"street": "1 rue X", "postcode": "75011"}, "required"},
		{Question{Type: TAddress}, map[string]any{"street": "1 rue X", "postcode": "75011", "town": "Paris", "floor": "2"}, "unknown"},
		{Question{Type: TAddress}, "1 rue X 75011 Paris", "type"},
		{Question{Type: TMap}, map[string]any{"lat": "91", "lng": "2"}, "point"},
		{Question{Type: TMap}, map[string]any{"lat": "48.85", "lng": "abc"}, "point"},
		{Question{Type: TMap, Required: true}, map[string]any{}, "required"},
		{Question{Type: TMap}, map[string]any{"address": "devant la mairie"}, ""},
		{Question{Type: TTable, Columns: []Option{{"item", "Objet"}}, MaxRows: 1}, []any{map[string]any{"item": "a"}, map[string]any{"item": "b"}}, "too_many_rows"},
		{Question{Type: TTable, Columns: []Option{{"item", "Objet"}}}, []any{map[string]any{"colour": "red"}}, "unknown"},
		{Question{Type: TFile}, []any{map[string]any{"id": "x"}}, "file_api"},
		{Question{Type: TFile, MaxFiles: 1}, []FileRef{{ID: "a"}, {ID: "b"}}, "too_many_files"},
		{Question{Type: TPhoto, Required: true}, nil, "required"},
	}
	for i, c := range cases {
		c.q.Key = "k"
		ch := &checker{today: today}
		ch.value(&c.q, "k", c.raw)
		got := ""
		if len(ch.ps) > 0 {
			got = ch.ps[0].Code
		}
		if got != c.code {
			t.Errorf("case %d (%s %v): code %q, want %q (%+v)", i, c.q.Type, c.raw, got, c.code, ch.ps)
		}
	}
}
