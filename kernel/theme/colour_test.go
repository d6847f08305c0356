package theme

import (
	"math/rand/v2"
	"strings"
	"testing"

	"parvis.org/parvis/kernel/errs"
)

func TestContrastKnownPairs(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want string // FormatRatio
		aa   bool
	}{
		{"#767676", "#ffffff", "4.54", true},
		{"#777777", "#ffffff", "4.47", false}, // 4.478…: fails AA, and is shown rounded down
		{"#000000", "#ffffff", "21.00", true},
		{"#ffffff", "#000000", "21.00", true}, // order does not matter
		{"#ffffff", "#ffffff", "1.00", false},
		{"#0b5c68", "#ffffff", "7.65", true}, // the default primary colour
		{"#1d70b8", "#ffffff", "5.16", true},
		{"#ff0000", "#ffffff", "3.99", false},
	} {
		a, err := ParseHex(c.a)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := ParseHex(c.b)
		r := Contrast(a, b)
		if got := FormatRatio(r); got != c.want {
			t.Errorf("Contrast(%s, %s) = %s (%v), want %s", c.a, c.b, got, r, c.want)
		}
		if (r >= AA) != c.aa {
			t.Errorf("Contrast(%s, %s) = %v: AA %v, want %v", c.a, c.b, r, r >= AA, c.aa)
		}
	}
	// The exact figure for the pair every designer knows.
	g, _ := ParseHex("#777777")
	if r := Contrast(g, White); r < 4.47 || r > 4.49 {
		t.Errorf("#777777 on white = %v, want 4.48", r)
	}
}

func TestParseHex(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{"#0B5C68", "#0b5c68", true},
		{"0b5c68", "#0b5c68", true},
		{"#abc", "#aabbcc", true},
		{" #123456 ", "#123456", true},
		{"#12345", "", false},
		{"#gggggg", "", false},
		{"red", "", false},
		{"", "", false},
		{"#1234567", "", false},
		{"#+12345", "", false},
	} {
		c2, err := ParseHex(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseHex(%q) err = %v, want ok %v", c.in, err, c.ok)
			continue
		}
		if c.ok && c2.Hex() != c.want {
			t.Errorf("ParseHex(%q) = %s, want %s", c.in, c2.Hex(), c.want)
		}
	}
}

// fields lists the (field, key) pairs of Validate's answer.
func fields(err error) []string {
	var out []string
	for _, e := range unjoin(err) {
		if de, ok := errs.As(e); ok {
			out = append(out, de.Field+":"+de.Key)
		}
	}
	return out
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("é", MaxName+1)
	for _, c := range []struct {
		name  string
		theme Theme
		want  []string
	}{
		{"default", Default(), nil},
		{"dark colour, https logo", Theme{Name: "Mairie", Primary: "#767676", LogoURL: "https://example.org/logo.svg"}, nil},
		{"local logo", Theme{Name: "Mairie", Primary: "#000", LogoURL: "/static/logo.png"}, nil},
		{"grey too light", Theme{Name: "Mairie", Primary: "#777777"}, []string{"primary:kernel.theme.error.contrast"}},
		{"yellow", Theme{Name: "Mairie", Primary: "#ffdd00"}, []string{"primary:kernel.theme.error.contrast"}},
		{"not a colour", Theme{Name: "Mairie", Primary: "blue"}, []string{"primary:kernel.theme.error.colour_format"}},
		{"no colour", Theme{Name: "Mairie"}, []string{"primary:kernel.error.required"}},
		{"no name", Theme{Primary: "#000000"}, []string{"name:kernel.error.required"}},
		{"long name", Theme{Name: long, Primary: "#000000"}, []string{"name:kernel.error.too_long"}},
		{"http logo", Theme{Name: "M", Primary: "#000000", LogoURL: "http://example.org/l.png"}, []string{"logo_url:kernel.theme.error.logo_url"}},
		{"protocol-relative logo", Theme{Name: "M", Primary: "#000000", LogoURL: "//evil.example/l.png"}, []string{"logo_url:kernel.theme.error.logo_url"}},
		{"script logo", Theme{Name: "M", Primary: "#000000", LogoURL: "javascript:alert(1)"}, []string{"logo_url:kernel.theme.error.logo_url"}},
		{"quote in logo", Theme{Name: "M", Primary: "#000000", LogoURL: `https://x.org/a".png`}, []string{"logo_url:kernel.theme.error.logo_url"}},
		{"everything wrong", Theme{LogoURL: "ftp://x", Primary: "#fff"}, []string{"name:kernel.error.required", "logo_url:kernel.theme.error.logo_url", "primary:kernel.theme.error.contrast"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.theme.Normalize().Validate()
			got := fields(err)
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("Validate() = %v, want %v", got, c.want)
			}
			if err != nil && errs.CodeOf(unjoin(err)[0]) != errs.Invalid {
				t.Errorf("code = %v, want invalid", errs.CodeOf(err))
			}
		})
	}
}

func TestValidateNamesTheRatio(t *testing.T) {
	err := Theme{Name: "M", Primary: "#777777"}.Validate()
	de, ok := errs.As(unjoin(err)[0])
	if !ok || len(de.Args) != 2 || de.Args[0] != "ratio" || de.Args[1] != "4.47" {
		t.Fatalf("error = %#v, want args ratio 4.47", de)
	}
}

// Every colour the editor accepts yields a palette whose pairs, as parvis.css uses them,
// all reach AA: white on primary and on primary-dark, primary and primary-dark as text on
// white, primary-dark on the tint, and the yellow focus halo at 3:1 against the header band.
func TestDerivedPairsPassForEveryAcceptedColour(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	focus, _ := ParseHex("#ffd84d")
	ink, _ := ParseHex("#1d2126")
	accepted := 0
	for i := 0; i < 20000; i++ {
		c := Colour{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256))}
		th := Theme{Name: "x", Primary: c.Hex()}
		if th.Validate() != nil {
			continue
		}
		accepted++
		p := th.Palette()
		for _, pair := range []struct {
			name string
			a, b Colour
			min  float64
		}{
			{"contrast text on primary", p.PrimaryContrast, p.Primary, AA},
			{"contrast text on primary-dark", p.PrimaryContrast, p.PrimaryDark, AA},
			{"primary-dark on white", p.PrimaryDark, White, AA},
			{"primary-dark on tint", p.PrimaryDark, p.PrimaryTint, AA},
			{"ink on tint", ink, p.PrimaryTint, AA},
			{"focus halo on primary", focus, p.Primary, 3},
		} {
			if r := Contrast(pair.a, pair.b); r < pair.min {
				t.Fatalf("%s: %s gives %s:1 (%s vs %s), want ≥ %v", pair.name, c.Hex(), FormatRatio(r), pair.a.Hex(), pair.b.Hex(), pair.min)
			}
		}
	}
	if accepted < 1000 {
		t.Fatalf("only %d colours accepted: the sample proves little", accepted)
	}
}

func TestCSS(t *testing.T) {
	css := string(Theme{Name: `x</style>"`, Primary: "#5A2D82"}.Normalize().CSS(":root"))
	for _, want := range []string{":root{", "--pv-primary: #5a2d82;", "--pv-link: #5a2d82;", "--pv-primary-contrast: #ffffff;"} {
		if !strings.Contains(css, want) {
			t.Errorf("CSS lacks %q:\n%s", want, css)
		}
	}
	if strings.Contains(css, "style") {
		t.Errorf("the name leaked into the stylesheet:\n%s", css)
	}
	// A damaged stored colour falls back to the default rather than writing garbage.
	if css := string(Theme{Primary: "};body{display:none"}.CSS(":root")); !strings.Contains(css, DefaultPrimary) || strings.Contains(css, "display") {
		t.Errorf("damaged colour: %s", css)
	}
}
