package citizen

import (
	"strings"
	"testing"
)

func TestPassword(t *testing.T) {
	h, err := hashPassword("correct horse battery")
	if err != nil || !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q, %v", h, err)
	}
	for _, tc := range []struct {
		name, pw, hash string
		ok             bool
	}{
		{"right", "correct horse battery", h, true},
		{"wrong", "correct horse battery!", h, false},
		{"empty", "", h, false},
		{"not phc", "x", "plain", false},
		{"empty hash", "", "", false},
	} {
		if got := passwordMatches(tc.pw, tc.hash); got != tc.ok {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestNormalizeEmail(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Anne@Example.FR", "anne@example.fr"},
		{"  jean.dupont@mairie.example.org ", "jean.dupont@mairie.example.org"},
		{"", ""},
		{"anne", ""},
		{"anne@localhost", ""},
		{"Anne <anne@example.fr>", ""},
		{"anne@example.fr.", ""},
		{"a@b.c" + string(make([]byte, 300)), ""},
	} {
		got, err := NormalizeEmail(tc.in)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestLocalPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/rdv/42": true, "/": true, "//evil.example": false, "/\\evil.example": false,
		"https://evil.example": false, "": false, "rdv": false, "/a\nb": false,
	} {
		if got := localPath(p); got != want {
			t.Errorf("localPath(%q) = %v, want %v", p, got, want)
		}
	}
}
