package workflow

import (
	"bytes"
	_ "embed"
	"fmt"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"
)

// DejaVu Sans (Debian fonts-dejavu-core, Bitstream Vera licence: fonts/LICENSE-DejaVu.txt)
// renders every character of French and beyond (œ, €, the narrow no-break space), which the
// PDF core fonts do not.
//
//go:embed fonts/DejaVuSans.ttf
var dejaVuSans []byte

// makePDF lays out a simple A4 document: a title and paragraphs of text.
func makePDF(title, body string, now time.Time) ([]byte, error) {
	p := fpdf.New("P", "mm", "A4", "")
	p.SetCreationDate(now)
	p.SetModificationDate(now)
	p.SetTitle(title, true)
	p.SetCreator("Parvis", true)
	p.AddUTF8FontFromBytes("dejavu", "", dejaVuSans)
	p.SetMargins(20, 20, 20)
	p.SetAutoPageBreak(true, 20)
	p.AddPage()
	p.SetFont("dejavu", "", 16)
	p.MultiCell(0, 8, strings.TrimSpace(title), "", "L", false)
	p.Ln(4)
	p.SetFont("dejavu", "", 11)
	for _, para := range strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n\n") {
		p.MultiCell(0, 5.5, strings.TrimSpace(para), "", "L", false)
		p.Ln(3)
	}
	var b bytes.Buffer
	if err := p.Output(&b); err != nil {
		return nil, fmt.Errorf("pdf: %w", err)
	}
	return b.Bytes(), nil
}
