package forms

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// TestXLSX: the sheet a spreadsheet library reads back holds every cell as written, markup,
// line breaks and accents included, control characters XML cannot hold dropped.
func TestXLSX(t *testing.T) {
	rows := [][]string{
		{"Référence", "Nom", "Commentaire"},
		{"ABCD2345", "Léa <b>Martin</b> & fils", "deux\nlignes \"citées\" 'ici' 😀"},
		{"EFGH6789", "", "bip\x07 fin\x00"},
		{"", "=SOMME(A1:A2)", strings.Repeat("x", 40000)},
	}
	var buf bytes.Buffer
	x, err := newXLSX(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := x.Row(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer f.Close()
	got, err := f.GetRows(f.GetSheetName(0))
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{rows[0], rows[1], {"EFGH6789", "", "bip fin"}, {"", "=SOMME(A1:A2)", strings.Repeat("x", xlsxCellMax)}}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		for j := range want[i] {
			var g string
			if j < len(got[i]) {
				g = got[i][j]
			}
			if g != want[i][j] {
				t.Errorf("cell %s%d: %.60q, want %.60q", column(j), i+1, g, want[i][j])
			}
		}
	}
	for i, want := range map[int]string{0: "A", 25: "Z", 26: "AA", 27: "AB", 701: "ZZ", 702: "AAA"} {
		if c := column(i); c != want {
			t.Errorf("column(%d) = %s, want %s", i, c, want)
		}
	}
}

// countingWriter counts the bytes that reached it.
type countingWriter struct{ n int }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// TestXLSXStreams: rows reach the writer as they are written, long before the end, so an
// export never holds the whole file.
func TestXLSXStreams(t *testing.T) {
	w := &countingWriter{}
	x, err := newXLSX(w)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	sent := 0
	for i := range n {
		h := sha256.Sum256([]byte(fmt.Sprint(i)))
		if err := x.Row([]string{fmt.Sprint(i), hex.EncodeToString(h[:]), hex.EncodeToString(h[:16])}); err != nil {
			t.Fatal(err)
		}
		if i == n/2 {
			sent = w.n
		}
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if sent == 0 || sent < w.n/4 {
		t.Errorf("half the rows written, %d of %d bytes out: the file is buffered", sent, w.n)
	}
}
