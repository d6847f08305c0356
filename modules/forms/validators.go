package forms

import (
	_ "embed"
	"fmt"
	"math/big"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// The validators of the special types. Each returns the normalised value and whether the
// input is valid; they are pure functions, tested with invalid values in validators_test.go.

var (
	phoneSep  = strings.NewReplacer(" ", "", ".", "", "-", "", "(", "", ")", "", "\u00a0", "", "\u202f", "")
	frLocal   = regexp.MustCompile(`^0[1-9][0-9]{8}$`)
	frIntl    = regexp.MustCompile(`^\+33[1-9][0-9]{8}$`)
	e164      = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	digits    = regexp.MustCompile(`^[0-9]+$`)
	ibanShape = regexp.MustCompile(`^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$`)
	relDate   = regexp.MustCompile(`^([+-]?)([0-9]{1,4})([dmy])$`)
	timeRe    = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
)

// Phone checks a phone number: mode "fr" accepts French numbers only ("01 23 45 67 89",
// "+33 1 23 45 67 89", "0033…"), "intl" also any E.164 number. The result is E.164.
func Phone(s, mode string) (string, bool) {
	s = phoneSep.Replace(strings.TrimSpace(s))
	if strings.HasPrefix(s, "00") {
		s = "+" + s[2:]
	}
	switch {
	case frLocal.MatchString(s):
		return "+33" + s[1:], true
	case frIntl.MatchString(s):
		return s, true
	case strings.HasPrefix(s, "+33"):
		return "", false // a French prefix with the wrong length
	case mode == "intl" && e164.MatchString(s):
		return s, true
	}
	return "", false
}

// Email checks an address (one mailbox, with a dot in the domain) and lower-cases its domain.
func Email(s string) (string, bool) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || len(s) > 254 {
		return "", false
	}
	at := strings.LastIndexByte(s, '@')
	dom := strings.ToLower(s[at+1:])
	if !strings.Contains(dom, ".") || strings.HasPrefix(dom, ".") || strings.HasSuffix(dom, ".") {
		return "", false
	}
	return s[:at+1] + dom, true
}

// SIRET checks a French establishment number: 14 digits, Luhn checksum (La Poste's
// establishments, SIREN 356000000, use a digit sum divisible by 5 instead).
func SIRET(s string) (string, bool) {
	s = strings.ReplaceAll(strings.ReplaceAll(strings.TrimSpace(s), " ", ""), "\u00a0", "")
	if len(s) != 14 || !digits.MatchString(s) {
		return "", false
	}
	if strings.HasPrefix(s, "356000000") && s != "35600000000048" {
		sum := 0
		for _, c := range s {
			sum += int(c - '0')
		}
		return s, sum%5 == 0
	}
	return s, luhn(s)
}

func luhn(s string) bool {
	sum := 0
	for i := range len(s) {
		d := int(s[len(s)-1-i] - '0')
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// ibanLengths are the lengths of the countries most seen in French towns; others only need
// 15 to 34 characters.
var ibanLengths = map[string]int{"FR": 27, "MC": 27, "DE": 22, "BE": 16, "ES": 24, "IT": 27, "LU": 20,
	"CH": 21, "GB": 22, "NL": 18, "PT": 25, "AT": 20, "IE": 22}

// IBAN checks an account number (country length, mod-97 checksum) and writes it in groups of
// four.
func IBAN(s string) (string, bool) {
	s = strings.ToUpper(strings.NewReplacer(" ", "", "-", "", "\u00a0", "").Replace(strings.TrimSpace(s)))
	if !ibanShape.MatchString(s) || len(s) > 34 {
		return "", false
	}
	if n, ok := ibanLengths[s[:2]]; ok && len(s) != n {
		return "", false
	}
	var b strings.Builder
	for _, c := range s[4:] + s[:4] {
		if c >= 'A' && c <= 'Z' {
			b.WriteString(strconv.Itoa(int(c-'A') + 10))
		} else {
			b.WriteRune(c)
		}
	}
	n, ok := new(big.Int).SetString(b.String(), 10)
	if !ok || new(big.Int).Mod(n, big.NewInt(97)).Int64() != 1 {
		return "", false
	}
	var out strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			out.WriteByte(' ')
		}
		out.WriteString(s[i:min(i+4, len(s))])
	}
	return out.String(), true
}

//go:embed postcodes.txt
var postcodeTable string

// Postcode checks a French postcode's shape and department, and, for the postcodes of the
// embedded table (big towns and their districts), that the town matches. ok is false for a
// malformed code; townOK is false when the table names other towns.
func Postcode(code, town string) (ok, townOK bool) {
	code = strings.TrimSpace(code)
	if len(code) != 5 || !digits.MatchString(code) {
		return false, false
	}
	dep, _ := strconv.Atoi(code[:2])
	switch {
	case dep == 0 || dep == 96:
		return false, false
	case dep == 97 && (code[2] < '1' || code[2] > '6'):
		return false, false
	case dep == 98 && (code[2] < '4' || code[2] > '8'):
		return false, false
	case dep == 99:
		return false, false
	}
	towns := postcodeTowns(code)
	if towns == nil || strings.TrimSpace(town) == "" {
		return true, true
	}
	t := Fold(town)
	for _, w := range towns {
		if t == w || strings.HasPrefix(t, w+" ") {
			return true, true
		}
	}
	return true, false
}

// postcodeTowns returns the folded towns of code in the table ("75011 paris"), nil if absent.
func postcodeTowns(code string) []string {
	var out []string
	for _, line := range strings.Split(postcodeTable, "\n") {
		c, towns, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if c == code || (strings.HasSuffix(c, "*") && strings.HasPrefix(code, strings.TrimSuffix(c, "*"))) {
			for _, t := range strings.Split(towns, "|") {
				out = append(out, Fold(t))
			}
		}
	}
	return out
}

// Fold lower-cases s and strips accents and punctuation, for comparisons and search text.
func Fold(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	r, _, err := transform.String(t, s)
	if err != nil {
		r = s
	}
	r = strings.NewReplacer("œ", "oe", "Œ", "oe", "æ", "ae", "Æ", "ae", "ß", "ss").Replace(r)
	r = strings.Map(func(c rune) rune {
		switch {
		case unicode.IsLetter(c) || unicode.IsDigit(c) || c == '@' || c == '.':
			return unicode.ToLower(c)
		}
		return ' '
	}, r)
	return strings.Join(strings.Fields(r), " ")
}

// RelativeDate returns today moved by spec ("+1d", "-18y", "0d", "+3m"), at midnight.
func RelativeDate(spec string, today time.Time) (time.Time, error) {
	m := relDate.FindStringSubmatch(strings.TrimSpace(spec))
	if m == nil {
		return time.Time{}, fmt.Errorf("relative date %q: want a sign, a number and d, m or y", spec)
	}
	n, _ := strconv.Atoi(m[2])
	if m[1] == "-" {
		n = -n
	}
	y, mo, d := today.Date()
	base := time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
	switch m[3] {
	case "d":
		return base.AddDate(0, 0, n), nil
	case "m":
		return base.AddDate(0, n, 0), nil
	}
	return base.AddDate(n, 0, 0), nil
}

// ParseDate reads "2026-03-02" strictly.
func ParseDate(s string) (time.Time, bool) {
	t, err := time.Parse("2006-01-02", strings.TrimSpace(s))
	return t, err == nil
}

// ValidTime reads "14:05".
func ValidTime(s string) bool { return timeRe.MatchString(strings.TrimSpace(s)) }
