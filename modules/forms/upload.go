package forms

import (
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/gabriel-vasile/mimetype"

	"parvis.org/parvis/kernel/store"
)

// Files are sniffed from their content (the name and the browser's type are not trusted), size
// capped per question, and written under the data folder with random names.

// defaultAccept is what a file question takes when it names no types.
var defaultAccept = []string{"application/pdf", "image/jpeg", "image/png", "image/webp"}

// accepted reports whether a detected type matches a question's list ("image/*" allowed).
func accepted(q *Question, mt *mimetype.MIME) bool {
	list := q.Accept
	if len(list) == 0 {
		list = defaultAccept
		if q.Type == TPhoto {
			list = []string{"image/jpeg", "image/png", "image/webp", "image/heic"}
		}
	}
	for _, a := range list {
		for m := mt; m != nil; m = m.Parent() {
			if m.Is(a) || (strings.HasSuffix(a, "/*") && strings.HasPrefix(m.String(), strings.TrimSuffix(a, "*"))) {
				return true
			}
		}
	}
	return false
}

func maxSize(q *Question) int64 {
	if q.MaxSize > 0 {
		return q.MaxSize
	}
	return defFileSize
}

// store saves an uploaded file for draft: it returns the reference, or a problem code
// ("file_size", "file_type", "file_empty").
func (m *Module) storeUpload(ctx context.Context, draftID int64, q *Question, fh *multipart.FileHeader) (FileRef, string, error) {
	if fh.Size > maxSize(q) {
		return FileRef{}, "file_size", nil
	}
	if fh.Size == 0 {
		return FileRef{}, "file_empty", nil
	}
	f, err := fh.Open()
	if err != nil {
		return FileRef{}, "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSize(q)+1))
	if err != nil {
		return FileRef{}, "", err
	}
	if int64(len(data)) > maxSize(q) {
		return FileRef{}, "file_size", nil
	}
	mt := mimetype.Detect(data)
	if !accepted(q, mt) {
		return FileRef{}, "file_type", nil
	}
	ref := FileRef{ID: newToken(), Name: cleanName(fh.Filename, mt.Extension()), Type: mt.String(), Size: int64(len(data))}
	if i := strings.IndexByte(ref.Type, ';'); i > 0 {
		ref.Type = ref.Type[:i]
	}
	p := m.filePath(ref.ID)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return FileRef{}, "", fmt.Errorf("forms: upload folder: %w", err)
	}
	if err := os.WriteFile(p, data, 0o640); err != nil {
		return FileRef{}, "", fmt.Errorf("forms: upload: %w", err)
	}
	err = m.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO forms_files (id, draft_id, question, name, ctype, size, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			ref.ID, draftID, q.Key, ref.Name, ref.Type, ref.Size, m.now())
		return err
	})
	if err != nil {
		_ = os.Remove(p)
		return FileRef{}, "", err
	}
	return ref, "", nil
}

// cleanName keeps a file name readable and harmless (no path, no control characters), with
// the extension of its detected type.
func cleanName(name, ext string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	name = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || strings.ContainsRune(`/\:*?"<>|`, r) {
			return '_'
		}
		return r
	}, name)
	if !utf8.ValidString(name) || name == "." || name == "" {
		name = "fichier"
	}
	if len(name) > 120 {
		name = name[:120]
	}
	if ext != "" && !strings.EqualFold(filepath.Ext(name), ext) {
		name = strings.TrimSuffix(name, filepath.Ext(name)) + ext
	}
	return name
}
