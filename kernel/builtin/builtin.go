// Package builtin imports the kernel's own parts, each a module registered from its package.
package builtin

import (
	_ "parvis.org/parvis/kernel/audit"
	_ "parvis.org/parvis/kernel/auth"
	_ "parvis.org/parvis/kernel/citizen"
	_ "parvis.org/parvis/kernel/jobs"
	_ "parvis.org/parvis/kernel/mail"
	_ "parvis.org/parvis/kernel/theme"
)
