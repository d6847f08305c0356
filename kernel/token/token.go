// Package token makes the random tokens of capability links, sessions and one-time codes,
// and the hashes stored in their place, so that a copy of the database holds no usable
// token. One implementation for every module: 128 bits at least, from crypto/rand.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// New returns a random token of n bytes (n ≥ 16; 16 if less) in URL-safe base64, and its hash.
func New(n int) (raw, hash string) {
	raw = base64.RawURLEncoding.EncodeToString(random(n))
	return raw, Hash(raw)
}

// Hex returns a random token of n bytes (n ≥ 16) in lower-case hexadecimal.
func Hex(n int) string { return hex.EncodeToString(random(n)) }

// Hash is what is stored for a token: SHA-256, hexadecimal.
func Hash(raw string) string {
	s := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(s[:])
}

func random(n int) []byte {
	if n < 16 {
		n = 16
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on supported platforms (Go ≥ 1.24)
	}
	return b
}
