package citizen

import "parvis.org/parvis/kernel/auth"

// Passwords are hashed like agents' ones (argon2id t=2, m=19 MiB, p=1, PHC string), with
// the kernel.auth helpers: one implementation to review and to upgrade.

// MinPassword is the shortest password accepted, in characters.
const MinPassword = auth.MinPasswordLen

func hashPassword(pw string) (string, error) { return auth.HashPassword(pw) }

func passwordMatches(pw, hash string) bool { return auth.CheckPassword(hash, pw) }
