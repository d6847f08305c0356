package portal

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"image"
	_ "image/gif" // decoders registered for image.DecodeConfig
	"image/jpeg"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/disintegration/imaging"
	"github.com/gabriel-vasile/mimetype"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
)

// Media library limits. An image is refused before decoding when its header announces more
// pixels than MaxPixels: a small file can claim a huge canvas (a decompression bomb).
const (
	MaxUpload = 10 << 20
	MaxPixels = 40_000_000
	MaxSide   = 12_000
)

// widths are the responsive sizes stored for srcset (those narrower than the original).
var widths = []int{320, 640, 1024, 1600}

var documentTypes = map[string]string{
	"application/pdf":                                                         ".pdf",
	"application/vnd.oasis.opendocument.text":                                 ".odt",
	"application/vnd.oasis.opendocument.spreadsheet":                          ".ods",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":       ".xlsx",
	"text/csv": ".csv",
}

// Upload stores a file in a site's library. Images are re-encoded in several widths, which
// also drops their metadata (EXIF, GPS position); documents are kept as sent.
func (m *Module) Upload(ctx context.Context, siteID int64, title string, data []byte) (*Media, error) {
	title = strings.TrimSpace(title)
	if title == "" {
		return nil, errs.OnField(errs.Invalid, "title", "kernel.error.required")
	}
	if len(data) == 0 {
		return nil, errs.OnField(errs.Invalid, "file", "portal.error.file_empty")
	}
	if len(data) > MaxUpload {
		return nil, errs.OnField(errs.Invalid, "file", "portal.error.file_too_large", "max", fileSize(MaxUpload, "fr"))
	}
	mt := mimetype.Detect(data)
	mime := mt.String()
	if i := strings.IndexByte(mime, ';'); i >= 0 {
		mime = mime[:i]
	}
	var token [8]byte
	_, _ = rand.Read(token[:])
	base := hex.EncodeToString(token[:])
	dir := filepath.Join(m.mediaDir(), strconv.FormatInt(siteID, 10))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("media folder: %w", err)
	}
	med := &Media{SiteID: siteID, Title: title, MIME: mime, Size: int64(len(data)), CreatedAt: m.now()}
	var written []string
	cleanup := func() {
		for _, f := range written {
			_ = os.Remove(f)
		}
	}
	switch mime {
	case "image/jpeg", "image/png", "image/gif":
		cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return nil, errs.OnField(errs.Invalid, "file", "portal.error.image_corrupt")
		}
		if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > MaxSide || cfg.Height > MaxSide || cfg.Width*cfg.Height > MaxPixels {
			return nil, errs.OnField(errs.Invalid, "file", "portal.error.image_too_big", "w", cfg.Width, "h", cfg.Height)
		}
		img, err := imaging.Decode(bytes.NewReader(data), imaging.AutoOrientation(true))
		if err != nil {
			return nil, errs.OnField(errs.Invalid, "file", "portal.error.image_corrupt")
		}
		ext, enc := ".jpg", func(f *os.File, im image.Image) error { return jpeg.Encode(f, im, &jpeg.Options{Quality: 82}) }
		if mime != "image/jpeg" {
			ext, enc = ".png", func(f *os.File, im image.Image) error { return png.Encode(f, im) }
			med.MIME = "image/png"
		} else {
			med.MIME = "image/jpeg"
		}
		med.Kind, med.Name = "image", base+ext
		b := img.Bounds()
		med.Width, med.Height = b.Dx(), b.Dy()
		sizes := []int{}
		for _, w := range widths {
			if w < med.Width {
				sizes = append(sizes, w)
			}
		}
		sizes = append(sizes, min(med.Width, 1600))
		for _, w := range sizes {
			im := img
			if w != med.Width {
				im = imaging.Resize(img, w, 0, imaging.Lanczos)
			}
			path := filepath.Join(dir, fmt.Sprintf("%s-%d%s", base, w, ext))
			f, err := os.Create(path)
			if err != nil {
				cleanup()
				return nil, fmt.Errorf("media: %w", err)
			}
			written = append(written, path)
			err = enc(f, im)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				cleanup()
				return nil, fmt.Errorf("media: encode: %w", err)
			}
			if st, err := os.Stat(path); err == nil && w == sizes[len(sizes)-1] {
				med.Size = st.Size()
			}
			med.Variants = append(med.Variants, w)
		}
		if med.Width > 1600 {
			med.Height = med.Height * 1600 / med.Width
			med.Width = 1600
		}
	default:
		ext, ok := documentTypes[mime]
		if !ok {
			return nil, errs.OnField(errs.Invalid, "file", "portal.error.file_type", "type", mime)
		}
		med.Kind, med.Name = "document", base+ext
		path := filepath.Join(dir, med.Name)
		if err := os.WriteFile(path, data, 0o640); err != nil {
			return nil, fmt.Errorf("media: %w", err)
		}
		written = append(written, path)
	}
	variants := make([]string, len(med.Variants))
	for i, v := range med.Variants {
		variants[i] = strconv.Itoa(v)
	}
	err := m.write(ctx, func(tx *store.Tx) error {
		if _, err := getSite(ctx, tx, siteID); err != nil {
			return errs.New(errs.NotFound, "portal.error.no_site")
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO portal_media (site_id, kind, name, title, mime, size, width, height, variants, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, siteID, med.Kind, med.Name, med.Title, med.MIME, med.Size,
			med.Width, med.Height, strings.Join(variants, ","), med.CreatedAt).Scan(&med.ID); err != nil {
			return err
		}
		return m.audit(ctx, tx, "portal.media.upload", "media", med.ID, nil, med)
	})
	if err != nil {
		cleanup()
		return nil, err
	}
	return med, nil
}

// mediaURL is the address of a stored file; w picks an image width (0: the largest).
func (m *Module) mediaURL(med *Media, w int) string {
	if med.Kind != "image" {
		return fmt.Sprintf("/_portal/media/%d/%s", med.ID, med.Name)
	}
	if w == 0 && len(med.Variants) > 0 {
		w = med.Variants[len(med.Variants)-1]
	}
	ext := filepath.Ext(med.Name)
	return fmt.Sprintf("/_portal/media/%d/%s-%d%s", med.ID, strings.TrimSuffix(med.Name, ext), w, ext)
}

func (m *Module) srcset(med *Media) string {
	if med.Kind != "image" || len(med.Variants) < 2 {
		return ""
	}
	parts := make([]string, len(med.Variants))
	for i, w := range med.Variants {
		parts[i] = fmt.Sprintf("%s %dw", m.mediaURL(med, w), w)
	}
	return strings.Join(parts, ", ")
}

// mediaFile serves a stored file. Names are random and never reused, so they are cached
// for a year.
func (m *Module) mediaFile(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	med, err := getMedia(r.Context(), m.db.Read(), id)
	file := r.PathValue("file")
	ext := filepath.Ext(med0(med).Name)
	stem := strings.TrimSuffix(med0(med).Name, ext)
	ok := err == nil && (file == med.Name || (strings.HasPrefix(file, stem+"-") && strings.HasSuffix(file, ext)))
	if ok && file != med.Name {
		wStr := strings.TrimSuffix(strings.TrimPrefix(file, stem+"-"), ext)
		wi, err := strconv.Atoi(wStr)
		ok = err == nil && contains(med.Variants, wi)
	}
	if !ok {
		m.notFound(w, r)
		return
	}
	f, err := os.Open(filepath.Join(m.mediaDir(), strconv.FormatInt(med.SiteID, 10), file))
	if err != nil {
		m.notFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		m.notFound(w, r)
		return
	}
	w.Header().Set("Content-Type", med.MIME)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	if med.Kind == "document" {
		w.Header().Set("Content-Disposition", fmt.Sprintf("inline; filename=%q", slugFile(med.Title)+ext))
	}
	http.ServeContent(w, r, file, st.ModTime(), f)
}

func med0(m *Media) *Media {
	if m == nil {
		return &Media{}
	}
	return m
}

func slugFile(s string) string {
	var b strings.Builder
	for _, r := range fold(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
				b.WriteByte('-')
			}
		}
	}
	return strings.Trim(b.String(), "-")
}
