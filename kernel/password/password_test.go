package password

import (
	"strings"
	"testing"
)

func TestHashAndCheck(t *testing.T) {
	h, err := Hash("un mot de passe assez long")
	if err != nil || !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q %v", h, err)
	}
	h2, _ := Hash("un mot de passe assez long")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	cases := []struct {
		hash, pw string
		want     bool
	}{
		{h, "un mot de passe assez long", true},
		{h, "un mot de passe assez lonG", false},
		{h, "", false},
		{"", "x", false},
		{"$argon2id$v=19$m=99999999,t=2,p=1$c2FsdA$a2V5", "x", false}, // absurd cost refused
		{"$bcrypt$whatever", "x", false},
		{Dummy, "anything", false},
	}
	for _, c := range cases {
		if got := Check(c.hash, c.pw); got != c.want {
			t.Errorf("Check(%.30q, %q) = %v", c.hash, c.pw, got)
		}
	}
}

func TestProblem(t *testing.T) {
	cases := []struct{ pw, email, want string }{
		{"court", "", TooShort},
		{strings.Repeat("x", 201), "", TooLong},
		{"motdepasse123", "", Common},
		{"MotDePasse123", "", Common},
		{"jeanne.dupont-2026", "jeanne.dupont@example.org", Common},
		{"une phrase de passe solide", "a@b.fr", ""},
	}
	for _, c := range cases {
		if got := Problem(c.pw, c.email); got != c.want {
			t.Errorf("Problem(%q) = %q, want %q", c.pw, got, c.want)
		}
	}
}
