package token

import "testing"

func TestTokens(t *testing.T) {
	a, ha := New(16)
	b, hb := New(16)
	if a == b || ha == hb || len(a) != 22 || len(ha) != 64 || Hash(a) != ha {
		t.Fatalf("New: %q %q %q %q", a, b, ha, hb)
	}
	if r, _ := New(32); len(r) != 43 {
		t.Fatalf("New(32) length %d", len(r))
	}
	if r, _ := New(4); len(r) != 22 {
		t.Fatalf("New(4) must still give 128 bits, got %q", r)
	}
	if h := Hex(16); len(h) != 32 || h == Hex(16) {
		t.Fatalf("Hex: %q", h)
	}
}
