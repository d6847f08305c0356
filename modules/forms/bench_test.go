package forms

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/kernel/store/storetest"
)

// The benchmark run by bench/forms.sh (FORMS_BENCH=1), never by CI: submissions of a
// ten-field form over HTTP (validation, routing, workflow start, receipt job queued) beside
// the raw INSERT of the same response row through the driver alone, and the responses list
// page at 100,000 and 1,000,000 stored responses (rows made by one INSERT … SELECT).

const benchForm = `
key: dix
title: Dix questions
workflow: essai
settings: {email_question: email}
steps:
  - key: s
    title: Vous
    sections:
      - key: s1
        questions:
          - {key: nom, type: text, label: Nom, required: true, max_length: 100}
          - {key: prenom, type: text, label: Prénom, required: true}
          - {key: email, type: email, label: Courriel, required: true}
          - {key: tel, type: phone, label: Téléphone, required: true}
          - {key: adresse, type: address, label: Adresse, required: true}
          - {key: nombre, type: number, label: Nombre, required: true, min: 1, max: 20}
          - {key: choix, type: choice, label: Choix, required: true, options: [{value: a, label: A}, {value: b, label: B}]}
          - {key: oui, type: yesno, label: Oui ?, required: true}
          - {key: commentaire, type: textarea, label: Commentaire}
          - {key: accord, type: terms, label: Accord, required: true, text: J'accepte.}
`

func benchBody(i int) string {
	return fmt.Sprintf(`{"answers":{"nom":"Martin %d","prenom":"Léa","email":"lea%d@example.org","tel":"0612345678",
"adresse":{"street":"%d rue de la Roquette","postcode":"7501%d","town":"Paris"},"nombre":3,"choix":"a","oui":"yes",
"commentaire":"Un canapé et deux chaises","accord":true}}`, i, i, i, i%10)
}

func TestBenchForms(t *testing.T) {
	if os.Getenv("FORMS_BENCH") == "" {
		t.Skip("bench/forms.sh sets FORMS_BENCH=1")
	}
	dur, _ := time.ParseDuration(os.Getenv("FORMS_BENCH_DURATION"))
	if dur == 0 {
		dur = 3 * time.Second
	}
	sizes := []int{100_000, 1_000_000}
	if os.Getenv("FORMS_BENCH_SMALL") != "" {
		sizes = []int{10_000}
	}
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d)
			ctx := context.Background()
			actx := kernel.WithAgent(ctx, f.admin)
			if err := f.s.DB.InTx(actx, func(tx *store.Tx) error { _, err := f.m.SaveForm(actx, tx, f.org, mustDef(t, benchForm)); return err }); err != nil {
				t.Fatal(err)
			}
			if _, err := f.m.Publish(actx, f.org, "dix"); err != nil {
				t.Fatal(err)
			}
			token := f.s.APIToken(f.s.NewAgent(f.org, "app@ville.test", PermSubmit), PermSubmit)
			form, _ := getForm(ctx, f.s.DB.Read(), f.org, "dix")
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			const workers = 16
			var seq atomic.Int64
			httpRun := func() (float64, time.Duration) {
				var mu sync.Mutex
				var lat []time.Duration
				var wg sync.WaitGroup
				start := time.Now()
				for range workers {
					wg.Go(func() {
						var mine []time.Duration
						for time.Since(start) < dur {
							i := int(seq.Add(1))
							req, _ := http.NewRequest("POST", f.s.URL+"/api/forms/dix/responses", strings.NewReader(benchBody(i)))
							req.Header.Set("Authorization", "Bearer "+token)
							req.Header.Set("Content-Type", "application/json")
							t0 := time.Now()
							res, err := client.Do(req)
							if err != nil || res.StatusCode != 201 {
								b := ""
								if res != nil {
									bb, _ := io.ReadAll(res.Body)
									b = string(bb)
								}
								t.Errorf("submit: %v %s", err, b)
								return
							}
							res.Body.Close()
							mine = append(mine, time.Since(t0))
						}
						mu.Lock()
						lat = append(lat, mine...)
						mu.Unlock()
					})
				}
				wg.Wait()
				el := time.Since(start)
				slices.Sort(lat)
				return float64(len(lat)) / el.Seconds(), lat[len(lat)*99/100]
			}
			answers := strings.ReplaceAll(benchBody(0), "\n", "")
			rawRun := func() (float64, time.Duration) {
				var mu sync.Mutex
				var lat []time.Duration
				var wg sync.WaitGroup
				start := time.Now()
				for range workers {
					wg.Go(func() {
						var mine []time.Duration
						for time.Since(start) < dur {
							i := seq.Add(1)
							now := time.Now().UTC().Truncate(time.Microsecond)
							t0 := time.Now()
							_, err := f.s.DB.Write().ExecContext(ctx, `INSERT INTO forms_responses (org_id, form_id, version, ref, submit_key, email, lang, answers, search, state, public_label, unit_id, created_at, updated_at)
 VALUES (?, ?, 1, ?, ?, ?, 'fr', ?, ?, 'received', 'Demande reçue', ?, ?, ?)`, f.org, form.ID, fmt.Sprintf("R%07d", i), fmt.Sprintf("raw:%d", i),
								fmt.Sprintf("lea%d@example.org", i), answers, "martin lea canape", f.unitA, now, now)
							if err != nil {
								t.Errorf("raw insert: %v", err)
								return
							}
							mine = append(mine, time.Since(t0))
						}
						mu.Lock()
						lat = append(lat, mine...)
						mu.Unlock()
					})
				}
				wg.Wait()
				el := time.Since(start)
				slices.Sort(lat)
				return float64(len(lat)) / el.Seconds(), lat[len(lat)*99/100]
			}
			type res struct {
				rate float64
				p99  time.Duration
			}
			var hs, rs []res
			for range 3 {
				r, p := rawRun()
				rs = append(rs, res{r, p})
				h, hp := httpRun()
				hs = append(hs, res{h, hp})
			}
			med := func(xs []res) res {
				sort.Slice(xs, func(i, j int) bool { return xs[i].rate < xs[j].rate })
				return xs[1]
			}
			h, r := med(hs), med(rs)
			fmt.Printf("BENCH engine=%s http_per_s=%.0f http_p99_ms=%.1f raw_per_s=%.0f raw_p99_ms=%.2f ratio=%.2f\n",
				d, h.rate, float64(h.p99.Microseconds())/1000, r.rate, float64(r.p99.Microseconds())/1000, h.rate/r.rate)

			// The list page at scale: fill up with one INSERT … SELECT, then time the first
			// page, a state filter and a page deep in the keyset.
			adm := f.s.ClientAs(f.admin)
			have := 0
			_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM forms_responses WHERE form_id = ?`, form.ID).Scan(&have)
			for _, n := range sizes {
				t0 := time.Now()
				gen := `WITH RECURSIVE g(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM g WHERE i < ?) SELECT i FROM g`
				if d == store.Postgres {
					gen = `SELECT i FROM generate_series(?::bigint, ?::bigint) AS g(i)`
				}
				base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
				if _, err := f.s.DB.Write().ExecContext(ctx, `INSERT INTO forms_responses (org_id, form_id, version, ref, email, lang, answers, search, state, public_label, unit_id, created_at, updated_at)
 SELECT ?, ?, 1, 'B' || i, 'x@example.org', 'fr', ?, 'martin lea', CASE WHEN i % 3 = 0 THEN 'done' ELSE 'received' END, 'Demande reçue', ?, ?, ? FROM (`+gen+`) AS s`,
					f.org, form.ID, answers, f.unitA, base, base, have+1, n); err != nil {
					t.Fatalf("bulk: %v", err)
				}
				if d == store.Postgres {
					_, _ = f.s.DB.Write().ExecContext(ctx, `ANALYZE forms_responses`)
				} else {
					_, _ = f.s.DB.Write().ExecContext(ctx, `ANALYZE`)
				}
				fill := time.Since(t0)
				have = n
				for _, q := range []string{"", "?state=done", "?sort=old"} {
					var ts []time.Duration
					for range 7 {
						t1 := time.Now()
						page := adm.Get("/admin/forms/dix/responses" + q)
						ts = append(ts, time.Since(t1))
						if page.Status != 200 {
							t.Fatalf("list: %d", page.Status)
						}
					}
					slices.Sort(ts)
					fmt.Printf("BENCHLIST engine=%s rows=%d query=%q median_ms=%.1f max_ms=%.1f fill_s=%.1f\n", d, n, q,
						float64(ts[3].Microseconds())/1000, float64(ts[6].Microseconds())/1000, fill.Seconds())
				}
			}
		})
	}
}

// BenchmarkSubmit posts the ten-field form of TestBenchForms over HTTP, one at a time, so
// that `go test -bench Submit -cpuprofile` shows the CPU one submission costs (the whole
// process: client, server, database driver).
func BenchmarkSubmit(b *testing.B) {
	for _, d := range storetest.Engines() {
		b.Run(string(d), func(b *testing.B) {
			f := setup(b, d)
			ctx := kernel.WithAgent(context.Background(), f.admin)
			if err := f.s.DB.InTx(ctx, func(tx *store.Tx) error { _, err := f.m.SaveForm(ctx, tx, f.org, mustDef(b, benchForm)); return err }); err != nil {
				b.Fatal(err)
			}
			if _, err := f.m.Publish(ctx, f.org, "dix"); err != nil {
				b.Fatal(err)
			}
			token := f.s.APIToken(f.s.NewAgent(f.org, "app@ville.test", PermSubmit), PermSubmit)
			client := &http.Client{}
			b.ReportAllocs()
			cpu0 := processCPU()
			b.ResetTimer()
			for i := range b.N {
				req, _ := http.NewRequest("POST", f.s.URL+"/api/forms/dix/responses", strings.NewReader(benchBody(i)))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 201 {
					b.Fatalf("submit: %d", res.StatusCode)
				}
			}
			b.StopTimer()
			// CPU time of the whole process (user + system) per submission: unlike ns/op, it
			// does not grow when other processes share the cores.
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReceiptJob is the work the receipt job does per response, out of the request:
// rendering the PDF and queuing the mail.
func BenchmarkReceiptJob(b *testing.B) {
	f := setup(b, store.SQLite)
	ctx := kernel.WithAgent(context.Background(), f.admin)
	if err := f.s.DB.InTx(ctx, func(tx *store.Tx) error { _, err := f.m.SaveForm(ctx, tx, f.org, mustDef(b, benchForm)); return err }); err != nil {
		b.Fatal(err)
	}
	if _, err := f.m.Publish(ctx, f.org, "dix"); err != nil {
		b.Fatal(err)
	}
	l, err := f.m.published(ctx, "dix")
	if err != nil {
		b.Fatal(err)
	}
	var ids []int64
	for i := range b.N {
		req, err := DecodeSubmission(strings.NewReader(benchBody(i)))
		if err != nil {
			b.Fatal(err)
		}
		answers, ps := l.Def.CheckAll(req.Answers, f.m.today(), true)
		if len(ps) > 0 {
			b.Fatal(ps)
		}
		r, err := f.m.Submit(ctx, Submission{Form: l.Form, Def: l.Def, Answers: answers, Email: str(answers["email"])})
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	for _, id := range ids {
		if err := f.m.mailReceipt(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
