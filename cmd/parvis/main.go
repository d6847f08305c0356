// Command parvis is the Parvis platform: one binary, its modules compiled in.
package main

import (
	"os"

	"parvis.org/parvis/kernel/cli"
	_ "parvis.org/parvis/modules/standard" // the default distribution
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}
