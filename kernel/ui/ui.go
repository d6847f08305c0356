// Package ui is Parvis's own accessible design system: page layouts (public, back office,
// bare), form partials following the GOV.UK / USWDS patterns (error summary, labels and
// hints tied with aria-describedby, radios and checkboxes with hints), the kernel's pages,
// stylesheet, scripts and strings. The State's DSFR is reserved to State bodies, so none of
// its code, fonts or branding is used here.
package ui

import (
	"embed"
	"io/fs"
)

//go:embed layouts pages static locales
var files embed.FS

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		panic(err)
	}
	return f
}

// Layouts holds the layouts and partials every page is parsed with.
func Layouts() fs.FS { return sub("layouts") }

// Pages holds the kernel's own pages (errors, home of the back office…).
func Pages() fs.FS { return sub("pages") }

// Static holds the stylesheet, scripts and icons, served under /static/kernel/.
func Static() fs.FS { return sub("static") }

// Locales holds fr.yaml and en.yaml with the "kernel." keys.
func Locales() fs.FS { return sub("locales") }
