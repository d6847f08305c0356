package forms

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/riverqueue/river"

	"parvis.org/parvis/kernel/jobs"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store/storetest"
)

// queuedReceipts lists the response IDs of the receipt jobs River holds, in any state.
func queuedReceipts(t testing.TB, s *servertest.Server) []int64 {
	t.Helper()
	var jm *jobs.Module
	for _, in := range s.Modules {
		if m, ok := in.Module.(*jobs.Module); ok {
			jm = m
		}
	}
	if jm == nil {
		t.Fatal("no job module")
	}
	res, err := jm.Client().JobList(context.Background(), river.NewJobListParams().Kinds(ReceiptArgs{}.Kind()).First(10000))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, j := range res.Jobs {
		var a ReceiptArgs
		if err := json.Unmarshal(j.EncodedArgs, &a); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ResponseID)
	}
	return ids
}

// workReceipts does what River's worker does for every queued receipt job (the tests'
// servers do not run the job queue unless asked).
func workReceipts(t testing.TB, s *servertest.Server, m *Module) {
	t.Helper()
	for _, id := range queuedReceipts(t, s) {
		if err := m.mailReceipt(context.Background(), id); err != nil {
			t.Fatalf("receipt job %d: %v", id, err)
		}
	}
}

// TestReceiptJob: a submission queues one receipt job in its transaction and no mail; the
// job mails the receipt with its PDF once, however often it runs; a purged response's job
// ends without error and mails nothing.
func TestReceiptJob(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d)
			ctx := context.Background()
			ref := fill(t, f, f.s.Client(), "75011")
			count := func(q string, args ...any) int {
				t.Helper()
				var n int
				if err := f.s.DB.Read().QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			receipts := `SELECT COUNT(*) FROM mail_attachments WHERE name = ?`
			if n := count(receipts, "recu-"+ref+".pdf"); n != 0 {
				t.Fatalf("the request made the receipt itself: %d", n)
			}
			var id int64
			_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT id FROM forms_responses WHERE ref = ?`, ref).Scan(&id)
			if ids := queuedReceipts(t, f.s); len(ids) != 1 || ids[0] != id {
				t.Fatalf("receipt jobs %v, want [%d]", ids, id)
			}
			for range 3 {
				if err := f.m.mailReceipt(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			if n := count(receipts, "recu-"+ref+".pdf"); n != 1 {
				t.Fatalf("%d receipts after three runs", n)
			}
			var data []byte
			if err := f.s.DB.Read().QueryRowContext(ctx, `SELECT a.data FROM mail_attachments a WHERE a.name = ?`, "recu-"+ref+".pdf").Scan(&data); err != nil || !strings.HasPrefix(string(data), "%PDF-") {
				t.Fatalf("attachment: %q %v", data[:min(len(data), 8)], err)
			}
			if n := count(`SELECT COUNT(*) FROM mail_messages WHERE subject LIKE ? AND recipients LIKE '%lea@example.org%'`, "%"+ref+"%"); n != 1 {
				t.Fatalf("receipt mails to lea: %d", n)
			}
			// A response gone before its job ran: nothing to send, no error (no endless retry).
			ref2 := fill(t, f, f.s.Client(), "75011")
			var id2 int64
			_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT id FROM forms_responses WHERE ref = ?`, ref2).Scan(&id2)
			if _, err := f.s.DB.Write().ExecContext(ctx, `DELETE FROM forms_responses WHERE id = ?`, id2); err != nil {
				t.Fatal(err)
			}
			if err := f.m.mailReceipt(ctx, id2); err != nil {
				t.Fatalf("purged response: %v", err)
			}
			if n := count(receipts, "recu-"+ref2+".pdf"); n != 0 {
				t.Fatalf("purged response mailed: %d", n)
			}
		})
	}
}
