package citizen

import (
	"embed"
	"io/fs"
	"regexp"
)

//go:embed migrations templates locales mail
var files embed.FS

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		panic(err)
	}
	return f
}

var idpName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)
