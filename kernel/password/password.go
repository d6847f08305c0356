// Package password hashes and checks the passwords of agents and citizens with argon2id, and
// refuses weak new ones: one implementation to review and to upgrade.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters (OWASP's second recommended set): 2 passes over 19 MiB, 1 lane.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	// MinLen is the shortest password accepted, in characters.
	MinLen = 12
)

// Hash returns a PHC-style argon2id string: $argon2id$v=19$m=19456,t=2,p=1$salt$key.
func Hash(pw string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Check reports whether pw matches the encoded hash, in constant time. The
// parameters come from the hash, so raising them later keeps old hashes valid.
func Check(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 || m > 1<<20 || t > 16 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// Dummy is checked when no account matches, so that a login takes as long whether the
// email exists or not.
const Dummy = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2Zb1jz3bVwqkYl0wUu4rrbB2o1n2m7n7rK3m5gqf4Q4"

// Problems with a new password.
const (
	TooShort = "short"
	TooLong  = "long"
	Common   = "common"
)

// Problem says what is wrong with a new password (TooShort, TooLong, Common), or "".
func Problem(pw, email string) string {
	if utf8.RuneCountInString(pw) < MinLen {
		return TooShort
	}
	if utf8.RuneCountInString(pw) > 200 {
		return TooLong
	}
	l := strings.ToLower(pw)
	if commonPasswords[l] || (email != "" && strings.Contains(l, strings.ToLower(strings.Split(email, "@")[0])) && len(strings.Split(email, "@")[0]) >= 4) {
		return Common
	}
	return ""
}

// commonPasswords are very common passwords of 12 characters or more (from public breach
// lists), French ones included; shorter ones are already refused by the length rule.
var commonPasswords = func() map[string]bool {
	m := map[string]bool{}
	for _, p := range strings.Fields(`
123456789012 1234567890123 12345678901234 123456789abc 1q2w3e4r5t6y qwertyuiopas
qwertyuiop12 qwertyuiop123 azertyuiop12 azertyuiop123 azertyuiopqs motdepasse12
motdepasse123 motdepasse1234 password1234 password12345 password123456 passwordpassword
iloveyou1234 jetaime12345 jetaimejetaime soleil123456 marseille1234 doudou123456
administrator administrateur admin1234567 adminadmin12 adminadmin123 welcome12345
changeme1234 letmein12345 111111111111 000000000000 123123123123 abcdefghijkl
abcdef123456 abc123456789 qazwsxedcrfv 1qaz2wsx3edc zaq12wsxcde3 trustno11234
football1234 baseball1234 superman1234 princess1234 sunshine1234 starwars1234
mairie123456 parvis123456 bonjour12345 azerty123456 azertyazerty qwertyqwerty
motdepasse!! password!!!! passw0rd1234 p@ssw0rd1234 p@ssword1234 123456789012345
`) {
		m[p] = true
	}
	return m
}()
