package forms

import (
	"archive/zip"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A streaming XLSX writer: one worksheet of text cells, written row by row into a ZIP
// stream, so that an export of a million responses goes to the client as it is read,
// never whole in memory (a spreadsheet library builds the whole file in a buffer before
// writing it). The parts are the few an Office Open XML workbook needs.

const (
	xlsxContentTypes = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>`
	xlsxRels = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`
	xlsxWorkbook = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Réponses" sheetId="1" r:id="rId1"/></sheets></workbook>`
	xlsxWorkbookRels = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>`
	xlsxStyles = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs></styleSheet>`
	xlsxSheetHead = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`
	xlsxSheetTail = `</sheetData></worksheet>`
	// xlsxCellMax is the most characters a spreadsheet cell holds.
	xlsxCellMax = 32767
)

// xlsxWriter writes one sheet of text rows.
type xlsxWriter struct {
	zw    *zip.Writer
	sheet io.Writer
	row   int
	err   error
}

func newXLSX(w io.Writer) (*xlsxWriter, error) {
	x := &xlsxWriter{zw: zip.NewWriter(w)}
	for _, p := range []struct{ name, body string }{
		{"[Content_Types].xml", xlsxContentTypes}, {"_rels/.rels", xlsxRels}, {"xl/workbook.xml", xlsxWorkbook},
		{"xl/_rels/workbook.xml.rels", xlsxWorkbookRels}, {"xl/styles.xml", xlsxStyles},
	} {
		f, err := x.zw.Create(p.name)
		if err != nil {
			return nil, err
		}
		if _, err := io.WriteString(f, p.body); err != nil {
			return nil, err
		}
	}
	var err error
	if x.sheet, err = x.zw.Create("xl/worksheets/sheet1.xml"); err != nil {
		return nil, err
	}
	_, err = io.WriteString(x.sheet, xlsxSheetHead)
	return x, err
}

// column returns a column's letters: 0 → A, 25 → Z, 26 → AA.
func column(i int) string {
	s := ""
	for i++; i > 0; i = (i - 1) / 26 {
		s = string(rune('A'+(i-1)%26)) + s
	}
	return s
}

// cellText keeps what XML 1.0 may hold (no control characters but tab and line breaks),
// within a cell's limit.
func cellText(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20 || r == 0xFFFE || r == 0xFFFF || (r >= 0xD800 && r <= 0xDFFF):
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if utf8.RuneCountInString(s) > xlsxCellMax {
		s = string([]rune(s)[:xlsxCellMax])
	}
	return s
}

// Row writes one row of text cells.
func (x *xlsxWriter) Row(cells []string) error {
	if x.err != nil {
		return x.err
	}
	x.row++
	var b strings.Builder
	n := strconv.Itoa(x.row)
	b.WriteString(`<row r="` + n + `">`)
	for i, c := range cells {
		b.WriteString(`<c r="` + column(i) + n + `" t="inlineStr"><is><t xml:space="preserve">`)
		_ = xml.EscapeText(&b, []byte(cellText(c)))
		b.WriteString(`</t></is></c>`)
	}
	b.WriteString(`</row>`)
	_, x.err = io.WriteString(x.sheet, b.String())
	return x.err
}

// Close ends the sheet and the ZIP stream.
func (x *xlsxWriter) Close() error {
	if x.err != nil {
		return x.err
	}
	if _, err := io.WriteString(x.sheet, xlsxSheetTail); err != nil {
		return err
	}
	return x.zw.Close()
}
