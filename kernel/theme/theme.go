// Package theme is the kernel's "kernel.theme" part: each organisation's look (site name,
// logo, primary colour) and the back-office pages around the design system — the theme
// editor (/admin/theme) and the style guide (/admin/design). A primary colour is accepted
// only if it reaches WCAG 2.1 AA contrast (4.5:1) both behind white text (buttons, header)
// and as link text on white, so a town cannot theme its site into inaccessibility. The
// colours a page uses are derived from that one colour so that each derived pair passes too.
package theme

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"parvis.org/parvis/kernel/errs"
)

// AA is the contrast ratio WCAG 2.1 success criterion 1.4.3 (level AA) asks of text.
const AA = 4.5

// DefaultPrimary is Parvis's own petrol blue (7.65:1 against white).
const DefaultPrimary = "#0b5c68"

// Limits of the editable fields.
const (
	MaxName    = 80
	MaxLogoURL = 500
)

// Theme is an organisation's look.
type Theme struct {
	Name    string `json:"name"`
	LogoURL string `json:"logo_url,omitempty"` // https://… or a path on this site; "" for none
	Primary string `json:"primary"`            // "#rrggbb"
}

// Default is the look of an organisation that has not chosen one.
func Default() Theme { return Theme{Name: "Parvis", Primary: DefaultPrimary} }

// Normalize trims the fields and writes the colour as lower-case "#rrggbb" when it parses.
func (t Theme) Normalize() Theme {
	t.Name = strings.TrimSpace(t.Name)
	t.LogoURL = strings.TrimSpace(t.LogoURL)
	t.Primary = strings.TrimSpace(t.Primary)
	if c, err := ParseHex(t.Primary); err == nil {
		t.Primary = c.Hex()
	}
	return t
}

// Validate returns every problem of t, each an *errs.Error of code Invalid naming its field
// ("name", "logo_url", "primary") and a locale key, joined with errors.Join; nil if t is fine.
func (t Theme) Validate() error {
	var all []error
	switch {
	case t.Name == "":
		all = append(all, errs.OnField(errs.Invalid, "name", "kernel.error.required"))
	case utf8.RuneCountInString(t.Name) > MaxName:
		all = append(all, errs.OnField(errs.Invalid, "name", "kernel.error.too_long", "max", MaxName))
	}
	if t.LogoURL != "" && !validLogoURL(t.LogoURL) {
		all = append(all, errs.OnField(errs.Invalid, "logo_url", "kernel.theme.error.logo_url", "max", MaxLogoURL))
	}
	if t.Primary == "" {
		all = append(all, errs.OnField(errs.Invalid, "primary", "kernel.error.required"))
	} else if c, err := ParseHex(t.Primary); err != nil {
		all = append(all, errs.OnField(errs.Invalid, "primary", "kernel.theme.error.colour_format"))
	} else if r := Contrast(c, White); r < AA {
		// White text on the colour and the colour as link text on white are the same pair.
		all = append(all, errs.OnField(errs.Invalid, "primary", "kernel.theme.error.contrast", "ratio", FormatRatio(r)))
	}
	return errors.Join(all...)
}

// validLogoURL admits https URLs (the CSP allows https images) and paths on this site.
func validLogoURL(s string) bool {
	if len(s) > MaxLogoURL || strings.ContainsAny(s, " \t\r\n\"'<>\\") {
		return false
	}
	if strings.HasPrefix(s, "/") {
		return !strings.HasPrefix(s, "//")
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != ""
}

// Palette is the set of colours a page uses, all derived from the primary colour.
type Palette struct {
	Primary         Colour // header band, buttons, links
	PrimaryContrast Colour // text on Primary and PrimaryDark
	PrimaryDark     Colour // hover and active states, visited links, text on PrimaryTint
	PrimaryTint     Colour // light backgrounds: current menu entry, panels
}

// Palette derives the page colours. A colour that does not parse falls back to the default,
// so a damaged row never breaks a page.
func (t Theme) Palette() Palette {
	p, err := ParseHex(t.Primary)
	if err != nil {
		p, _ = ParseHex(DefaultPrimary)
	}
	return Palette{Primary: p, PrimaryContrast: White, PrimaryDark: Mix(p, Black, 0.3), PrimaryTint: Mix(p, White, 0.9)}
}

// CSS returns the theme's custom properties for selector (":root" for a whole page).
func (t Theme) CSS(selector string) []byte {
	p := t.Palette()
	var b strings.Builder
	fmt.Fprintf(&b, "/* Parvis theme */\n%s{\n", selector)
	for _, v := range [][2]string{
		{"--pv-primary", p.Primary.Hex()},
		{"--pv-primary-contrast", p.PrimaryContrast.Hex()},
		{"--pv-primary-dark", p.PrimaryDark.Hex()},
		{"--pv-primary-tint", p.PrimaryTint.Hex()},
		{"--pv-link", p.Primary.Hex()},
		{"--pv-link-hover", p.PrimaryDark.Hex()},
		{"--pv-link-visited", p.PrimaryDark.Hex()},
	} {
		fmt.Fprintf(&b, "  %s: %s;\n", v[0], v[1])
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

// Hash is a short content hash, used as ETag and cache-busting version.
func Hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}
