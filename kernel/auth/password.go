package auth

import (
	ktoken "parvis.org/parvis/kernel/token"

	"parvis.org/parvis/kernel/password"
)

// MinPasswordLen is the shortest password accepted, in characters.
const MinPasswordLen = password.MinLen

// HashPassword and CheckPassword are the shared argon2id helpers (kernel/password).
var (
	HashPassword  = password.Hash
	CheckPassword = password.Check
)

const dummyHash = password.Dummy

// PasswordProblem returns the locale key of what is wrong with a new password, or "".
func PasswordProblem(pw, email string) string {
	if p := password.Problem(pw, email); p != "" {
		return "kernel.auth.error.password_" + p
	}
	return ""
}

// newToken returns a random 128-bit token for URLs and cookies, and the hash stored in
// its place (so a stolen database holds no usable token).
func newToken() (raw, hash string) { return ktoken.New(16) }

func hashToken(raw string) string { return ktoken.Hash(raw) }
