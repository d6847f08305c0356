// Package builtin imports the kernel's own parts, each a module registered from its package.
package builtin

import ()
