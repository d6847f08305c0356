package audit_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/audit"
	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store/storetest"
)

func lastSeq(t *testing.T, l *audit.Log) int64 {
	t.Helper()
	p, err := l.List(context.Background(), audit.Filter{AllOrgs: true, Limit: 1})
	if err != nil || len(p.Entries) != 1 {
		t.Fatalf("last entry: %v", err)
	}
	return p.Entries[0].Seq
}

func auditLog(t *testing.T, s *servertest.Server) *audit.Log {
	t.Helper()
	for _, in := range s.Modules {
		if m, ok := in.Module.(*audit.Module); ok {
			return m.Log()
		}
	}
	t.Fatal("kernel.audit is not in the server")
	return nil
}

var paris, _ = time.LoadLocation("Europe/Paris")

func TestAuditPages(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			clk := newClock()
			s := servertest.New(t, d, servertest.Options{Clock: clk})
			l := auditLog(t, s)
			org1, org2 := s.DefaultOrg(), s.NewOrg("Bourg")
			agents := map[string]*kernel.Agent{
				"alice": s.NewAgent(org1, "alice@ville.example", audit.PermView),
				"bob":   s.NewAgent(org1, "bob@ville.example"), // no audit permission
				"carol": s.NewAgent(org2, "carol@bourg.example", audit.PermView),
				"super": s.NewAgentWith(auth.NewAgent{OrgID: org1, Email: "super@ville.example", Password: servertest.Password,
					Superadmin: true, Perms: []string{audit.PermView}}),
			}
			seed := []struct {
				agent string
				at    time.Time
				e     kernel.AuditEntry
			}{
				{"alice", time.Date(2026, 3, 10, 10, 0, 0, 0, paris), kernel.AuditEntry{Action: "forms.update", ResourceType: "form", ResourceID: "r-org1-form",
					Before: map[string]any{"title": "Old title", "open": true}, After: map[string]any{"title": "New title", "open": true, "quota": 3}}},
				{"alice", time.Date(2026, 3, 12, 0, 30, 0, 0, paris), kernel.AuditEntry{Action: "users.create", ResourceType: "user", ResourceID: "r-org1-user",
					After: map[string]any{"email": "dan@ville.example"}}},
				{"carol", time.Date(2026, 3, 12, 11, 0, 0, 0, paris), kernel.AuditEntry{Action: "forms.update", ResourceType: "form", ResourceID: "r-org2-secret"}},
				{"bob", time.Date(2026, 3, 14, 23, 59, 0, 0, paris), kernel.AuditEntry{Action: "units.delete", ResourceType: "unit", ResourceID: "r-org1-unit",
					Before: map[string]any{"name": "Mairie annexe"}}},
				{"", time.Date(2026, 3, 15, 3, 0, 0, 0, paris), kernel.AuditEntry{Action: "jobs.purge", ResourceID: "r-instance"}},
			}
			seqs := map[string]int64{} // by resource ID; kernel.auth records entries of its own
			for _, x := range seed {
				ctx := context.Background()
				if a := agents[x.agent]; a != nil {
					ctx = kernel.WithAgent(ctx, a)
				}
				clk.Set(x.at)
				record(t, ctx, s.DB, l, x.e)
				seqs[x.e.ResourceID] = lastSeq(t, l)
			}
			clk.Set(time.Date(2026, 3, 16, 9, 0, 0, 0, paris))
			clients := map[string]*servertest.Client{"": s.Client()}
			for name, a := range agents {
				clients[name] = s.ClientAs(a)
			}
			entry := func(rid string, query ...string) string {
				return fmt.Sprintf("/admin/audit/%d%s", seqs[rid], strings.Join(query, ""))
			}
			org1Rows := []string{"r-org1-form", "r-org1-user", "r-org1-unit"}
			cases := []struct {
				name, agent, path string
				status            int
				want, not         []string
			}{
				{"anonymous is sent to login", "", "/admin/audit", http.StatusSeeOther, nil, nil},
				{"agent without the permission", "bob", "/admin/audit", http.StatusForbidden, nil, org1Rows},
				{"own organisation only", "alice", "/admin/audit", http.StatusOK,
					append([]string{"<caption>", `<th scope="col">`, `<th scope="row">`, `for="f-actor"`, `aria-describedby="f-from-hint"`,
						`href="/admin/audit" aria-current="page"`, "alice@ville.example", "bob@ville.example"}, org1Rows...),
					[]string{"r-org2-secret", "r-instance", "carol@", "Toute l&#39;instance"}},
				{"newest first", "alice", "/admin/audit", http.StatusOK, []string{"r-org1-unit"}, nil},
				{"the other organisation sees only its own", "carol", "/admin/audit", http.StatusOK, []string{"r-org2-secret"}, append([]string{"r-instance"}, org1Rows...)},
				{"actor filter, case-insensitive substring", "alice", "/admin/audit?actor=BOB%40", http.StatusOK, []string{"r-org1-unit"}, []string{"r-org1-form", "r-org1-user"}},
				{"actor filter is not a LIKE pattern", "alice", "/admin/audit?actor=%25", http.StatusOK, []string{"Aucune entrée"}, org1Rows},
				{"action filter", "alice", "/admin/audit?action=users.create", http.StatusOK, []string{"r-org1-user"}, []string{"r-org1-form", "r-org1-unit"}},
				{"resource filters", "alice", "/admin/audit?resource_type=form&resource_id=r-org1-form", http.StatusOK, []string{"r-org1-form"}, []string{"r-org1-user", "r-org1-unit"}},
				{"resource filter never crosses organisations", "alice", "/admin/audit?resource_id=r-org2-secret", http.StatusOK, []string{"Aucune entrée"}, []string{"<tbody>"}},
				{"date filter in the town's time zone, end day included", "alice", "/admin/audit?from=2026-03-11&to=2026-03-12", http.StatusOK,
					[]string{"r-org1-user"}, []string{"r-org1-form", "r-org1-unit"}},
				{"end of the last day included", "alice", "/admin/audit?from=2026-03-14&to=2026-03-14", http.StatusOK, []string{"r-org1-unit"}, []string{"r-org1-user"}},
				{"malformed date", "alice", "/admin/audit?from=2026-13-01&actor=alice", http.StatusBadRequest,
					[]string{"pv-error-summary", `href="#f-from"`, "Saisissez une date", `value="2026-13-01"`, `value="alice"`, `aria-invalid="true"`},
					append([]string{"Aucune entrée"}, org1Rows...)},
				{"dates in the wrong order", "alice", "/admin/audit?from=2026-03-14&to=2026-03-10", http.StatusBadRequest, []string{"La date de fin"}, org1Rows},
				{"overlong filter", "alice", "/admin/audit?action=" + strings.Repeat("a", 201), http.StatusBadRequest, []string{"200 caractères"}, org1Rows},
				{"mangled cursor is ignored", "alice", "/admin/audit?before=abc", http.StatusOK, org1Rows, nil},
				{"instance scope ignored for an ordinary agent", "alice", "/admin/audit?scope=instance", http.StatusOK, org1Rows, []string{"r-org2-secret", "r-instance"}},
				{"superadmin sees their organisation by default", "super", "/admin/audit", http.StatusOK, append([]string{"Toute l&#39;instance"}, org1Rows...), []string{"r-org2-secret", "r-instance"}},
				{"superadmin instance view", "super", "/admin/audit?scope=instance", http.StatusOK, append([]string{"r-org2-secret", "r-instance", "system"}, org1Rows...), nil},
				{"entry with a property diff", "alice", entry("r-org1-form"), http.StatusOK,
					[]string{"du journal d&#39;audit</h1>", "alice@ville.example", "<caption>Valeurs avant et après", "Old title", "New title", "modifiée", "inchangée", "absente", "<code>quota</code>"}, nil},
				{"creation has no before", "alice", entry("r-org1-user"), http.StatusOK, []string{"l&#39;objet a été créé", "dan@ville.example"}, nil},
				{"deletion has no after", "alice", entry("r-org1-unit"), http.StatusOK, []string{"l&#39;objet a été supprimé", "Mairie annexe"}, nil},
				{"another organisation's entry is not found", "alice", entry("r-org2-secret"), http.StatusNotFound, []string{"Entrée introuvable"}, []string{"r-org2-secret"}},
				{"an instance entry is not found", "alice", entry("r-instance"), http.StatusNotFound, nil, []string{"r-instance"}},
				{"missing entry", "alice", "/admin/audit/999999", http.StatusNotFound, nil, nil},
				{"malformed entry number", "alice", "/admin/audit/abc", http.StatusNotFound, nil, nil},
				{"entry zero", "alice", "/admin/audit/0", http.StatusNotFound, nil, nil},
				{"entry page needs the permission", "bob", entry("r-org1-form"), http.StatusForbidden, nil, []string{"Old title"}},
				{"the other organisation reads its entry", "carol", entry("r-org2-secret"), http.StatusOK, []string{"r-org2-secret"}, nil},
				{"superadmin needs the instance view for other organisations", "super", entry("r-org2-secret"), http.StatusNotFound, nil, []string{"r-org2-secret"}},
				{"superadmin instance view of an entry", "super", entry("r-org2-secret", "?scope=instance"), http.StatusOK, []string{"r-org2-secret"}, nil},
				{"English", "alice", "/admin/audit?lang=en", http.StatusOK, []string{"Audit log entries, newest first", "Filter entries"}, nil},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					res := clients[c.agent].Get(c.path)
					if res.Status != c.status {
						t.Fatalf("GET %s as %q: status %d, want %d\n%s", c.path, c.agent, res.Status, c.status, res.Body)
					}
					if c.status == http.StatusSeeOther && !strings.HasPrefix(res.Location, "/admin/login?next=") {
						t.Errorf("redirected to %q", res.Location)
					}
					for _, w := range c.want {
						if !strings.Contains(res.Body, w) {
							t.Errorf("GET %s as %q: body lacks %q", c.path, c.agent, w)
						}
					}
					for _, w := range c.not {
						if strings.Contains(res.Body, w) {
							t.Errorf("GET %s as %q: body shows %q", c.path, c.agent, w)
						}
					}
				})
			}
			// Newest first: the unit deletion (entry 4) comes before the form update (entry 1).
			body := clients["alice"].Get("/admin/audit").Body
			if strings.Index(body, "r-org1-unit") > strings.Index(body, "r-org1-form") {
				t.Error("entries are not listed newest first")
			}
		})
	}
}

var (
	olderRe = regexp.MustCompile(`href="([^"]+)" rel="next"`)
	newerRe = regexp.MustCompile(`href="([^"]+)" rel="prev"`)
	seqRe   = regexp.MustCompile(`<th scope="row"><a href="/admin/audit/(\d+)`)
)

func TestAuditPagination(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			s := servertest.New(t, d, servertest.Options{})
			l := auditLog(t, s)
			aliceAgent := s.NewAgent(s.DefaultOrg(), "alice@ville.example", audit.PermView)
			carolAgent := s.NewAgent(s.NewOrg("Bourg"), "carol@bourg.example", audit.PermView)
			alice, carol := kernel.WithAgent(context.Background(), aliceAgent), kernel.WithAgent(context.Background(), carolAgent)
			var want []int64 // alice's entries, newest first
			for i := 1; i <= 130; i++ {
				ctx, action := alice, "page.alice"
				if i%4 == 0 {
					ctx, action = carol, "page.carol"
				}
				record(t, ctx, s.DB, l, kernel.AuditEntry{Action: action, ResourceID: strconv.Itoa(i)})
				if ctx == alice {
					want = append([]int64{lastSeq(t, l)}, want...)
				}
			}
			c := s.ClientAs(aliceAgent)
			walk := func(start string, re *regexp.Regexp) (pages [][]int64) {
				for path := start; path != ""; {
					res := c.Get(path)
					if res.Status != http.StatusOK {
						t.Fatalf("GET %s: %d", path, res.Status)
					}
					var seqs []int64
					for _, m := range seqRe.FindAllStringSubmatch(res.Body, -1) {
						n, _ := strconv.ParseInt(m[1], 10, 64)
						seqs = append(seqs, n)
					}
					if strings.Contains(res.Body, "page.carol") {
						t.Fatalf("GET %s shows another organisation's entry", path)
					}
					pages = append(pages, seqs)
					path = ""
					if m := re.FindStringSubmatch(res.Body); m != nil {
						path = html.UnescapeString(m[1])
						if strings.Contains(start, "action=") && !strings.Contains(path, "action=page.alice") {
							t.Fatalf("page link %q lost the filter", path)
						}
					}
					if len(pages) > 10 {
						t.Fatal("pagination does not end")
					}
				}
				return pages
			}
			pages := walk("/admin/audit?action=page.alice", olderRe)
			if len(pages) != 2 || len(pages[0]) != 50 || len(pages[1]) != len(want)-50 {
				t.Fatalf("pages of %v entries, want 50 then %d", lens(pages), len(want)-50)
			}
			if got := fmt.Sprint(append(pages[0], pages[1]...)); got != fmt.Sprint(want) {
				t.Fatalf("entries walking older:\n%s\nwant\n%v", got, want)
			}
			// And back: from the last page, "newer" leads to the first page again.
			last := pages[1][len(pages[1])-1]
			back := walk(fmt.Sprintf("/admin/audit?action=page.alice&before=%d", pages[0][len(pages[0])-1]), newerRe)
			if len(back) != 2 || fmt.Sprint(back[1]) != fmt.Sprint(pages[0]) || back[0][len(back[0])-1] != last {
				t.Fatalf("walking newer: %v", back)
			}
			// Without the filter, every entry of org 1 (kernel.auth's too) is paged the same way.
			var seen []int64
			for _, p := range walk("/admin/audit", olderRe) {
				seen = append(seen, p...)
			}
			for i := 1; i < len(seen); i++ {
				if seen[i] >= seen[i-1] {
					t.Fatalf("unfiltered pages not strictly newest first: %v", seen)
				}
			}
			if len(seen) < len(want) {
				t.Fatalf("unfiltered pages show %d entries, fewer than alice's %d", len(seen), len(want))
			}
		})
	}
}

func lens(pages [][]int64) []int {
	out := make([]int, len(pages))
	for i, p := range pages {
		out[i] = len(p)
	}
	return out
}
