package theme

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Colour is an sRGB colour.
type Colour struct{ R, G, B uint8 }

// White and Black are the ends of every contrast check.
var (
	White = Colour{255, 255, 255}
	Black = Colour{0, 0, 0}
)

// ParseHex reads "#rrggbb" or "#rgb" (the "#" optional, any case).
func ParseHex(s string) (Colour, error) {
	h := strings.TrimPrefix(strings.TrimSpace(s), "#")
	if len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	if len(h) != 6 {
		return Colour{}, fmt.Errorf("colour %q: want #rrggbb", s)
	}
	v, err := strconv.ParseUint(h, 16, 32)
	if err != nil {
		return Colour{}, fmt.Errorf("colour %q: want #rrggbb", s)
	}
	return Colour{uint8(v >> 16), uint8(v >> 8), uint8(v)}, nil
}

// Hex writes the colour as "#rrggbb".
func (c Colour) Hex() string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// Luminance is the relative luminance defined by WCAG 2.1 (sRGB, threshold 0.03928).
func (c Colour) Luminance() float64 {
	lin := func(v uint8) float64 {
		s := float64(v) / 255
		if s <= 0.03928 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c.R) + 0.7152*lin(c.G) + 0.0722*lin(c.B)
}

// Contrast is the WCAG 2.1 contrast ratio of two colours, from 1 to 21.
func Contrast(a, b Colour) float64 {
	la, lb := a.Luminance(), b.Luminance()
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// FormatRatio writes a ratio with two decimals, rounded down so that a failing ratio is
// never shown as the threshold it misses (4.499 reads "4.49", not "4.50").
func FormatRatio(r float64) string { return strconv.FormatFloat(math.Floor(r*100)/100, 'f', 2, 64) }

// Mix returns a blended towards b by t (0 = a, 1 = b), channel by channel in sRGB.
func Mix(a, b Colour, t float64) Colour {
	m := func(x, y uint8) uint8 { return uint8(math.Round(float64(x) + (float64(y)-float64(x))*t)) }
	return Colour{m(a.R, b.R), m(a.G, b.G), m(a.B, b.B)}
}
