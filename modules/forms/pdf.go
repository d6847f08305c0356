package forms

import (
	"bytes"
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"
	"github.com/riverqueue/river"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/store"
)

// DejaVu Sans (Debian fonts-dejavu-core, Bitstream Vera licence: fonts/LICENSE-DejaVu.txt),
// copied from modules/workflow, which exports no PDF helper: it renders œ, € and the narrow
// no-break space, which the PDF core fonts do not.
//
//go:embed fonts/DejaVuSans.ttf
var dejaVuSans []byte

// Receipt lays out the PDF receipt of a response: the form, the reference, the date and
// every answer.
func Receipt(title, ref, when string, lines []Line, labels [3]string, now time.Time) ([]byte, error) {
	p := fpdf.New("P", "mm", "A4", "")
	p.SetCreationDate(now)
	p.SetModificationDate(now)
	p.SetTitle(title+" – "+ref, true)
	p.SetCreator("Parvis", true)
	p.AddUTF8FontFromBytes("dejavu", "", dejaVuSans)
	p.SetMargins(20, 20, 20)
	p.SetAutoPageBreak(true, 20)
	p.AddPage()
	p.SetFont("dejavu", "", 16)
	p.MultiCell(0, 8, labels[0]+" – "+strings.TrimSpace(title), "", "L", false)
	p.Ln(2)
	p.SetFont("dejavu", "", 12)
	p.MultiCell(0, 6, labels[1]+" "+ref, "", "L", false)
	p.MultiCell(0, 6, labels[2]+" "+when, "", "L", false)
	p.Ln(4)
	for _, l := range lines {
		p.SetFont("dejavu", "", 9)
		p.SetTextColor(80, 80, 80)
		p.MultiCell(0, 5, l.Label, "", "L", false)
		p.SetFont("dejavu", "", 11)
		p.SetTextColor(0, 0, 0)
		p.MultiCell(0, 5.5, l.Value, "", "L", false)
		p.Ln(2)
	}
	var b bytes.Buffer
	if err := p.Output(&b); err != nil {
		return nil, fmt.Errorf("receipt pdf: %w", err)
	}
	return b.Bytes(), nil
}

func (m *Module) receiptPDF(r Response, d *Definition) ([]byte, error) {
	lang := r.Lang
	loc := time.UTC
	if m.cfg != nil && m.cfg.Location != nil {
		loc = m.cfg.Location
	}
	when := r.CreatedAt.In(loc).Format("02/01/2006 15:04")
	return Receipt(d.Title, r.Ref, when, d.Lines(r.Answers, m.t(lang, "forms.yes"), m.t(lang, "forms.no")),
		[3]string{m.t(lang, "forms.receipt.title"), m.t(lang, "forms.receipt.ref"), m.t(lang, "forms.receipt.date")}, r.CreatedAt)
}

// receiptData is the dot's Data of the receipt mail.
type receiptData struct {
	Title, Ref, Link string
	Lines            []Line
}

// ReceiptArgs is the job that mails a response's receipt with its PDF. It is queued in the
// submission's transaction (so a committed response always gets its receipt, and a rolled
// back one never does) and keeps the PDF's rendering out of the request.
type ReceiptArgs struct {
	ResponseID int64 `json:"response_id"`
}

// Kind implements river.JobArgs.
func (ReceiptArgs) Kind() string { return "forms.receipt" }

type receiptWorker struct {
	river.WorkerDefaults[ReceiptArgs]
	m *Module
}

func (w *receiptWorker) Work(ctx context.Context, j *river.Job[ReceiptArgs]) error {
	return w.m.mailReceipt(ctx, j.Args.ResponseID)
}

func (m *Module) queueReceipt(ctx context.Context, tx *store.Tx, r Response) error {
	if r.Email == "" {
		return nil
	}
	return m.jobs.Enqueue(ctx, tx, ReceiptArgs{ResponseID: r.ID}, nil)
}

// mailReceipt renders the receipt of response id and queues its mail, once: the mail and the
// mark that it went are written together, so a retried job sends nothing twice. A response
// purged or anonymised since has no receipt to send.
func (m *Module) mailReceipt(ctx context.Context, id int64) error {
	var ref string
	err := m.db.Read().QueryRowContext(ctx, `SELECT ref FROM forms_responses WHERE id = ? AND receipt_sent_at IS NULL AND anonymised = FALSE`, id).Scan(&ref)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	r, def, err := m.loadResponse(ctx, m.db.Read(), ref)
	if errs.CodeOf(err) == errs.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if r.Email == "" {
		return nil
	}
	pdf, err := m.receiptPDF(r, def)
	if err != nil {
		return err
	}
	return m.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE forms_responses SET receipt_sent_at = ? WHERE id = ? AND receipt_sent_at IS NULL`, m.now(), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil // another run got there first
		}
		return m.mail.Send(ctx, tx, kernel.Mail{To: []string{r.Email}, Lang: r.Lang, Template: "forms/receipt", OrgID: r.OrgID,
			Data: receiptData{Title: def.Title, Ref: r.Ref, Link: "/compte/demandes/" + r.Ref,
				Lines: def.Lines(r.Answers, m.t(r.Lang, "forms.yes"), m.t(r.Lang, "forms.no"))},
			Attachments: []kernel.Attachment{{Name: "recu-" + r.Ref + ".pdf", ContentType: "application/pdf", Data: pdf}}})
	})
}
