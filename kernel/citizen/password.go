package citizen

import "parvis.org/parvis/kernel/password"

// Passwords are hashed like agents' ones, with the shared kernel/password helpers.

// MinPassword is the shortest password accepted, in characters.
const MinPassword = password.MinLen

func hashPassword(pw string) (string, error) { return password.Hash(pw) }

func passwordMatches(pw, hash string) bool { return password.Check(hash, pw) }
