package portal

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store/storetest"
	"parvis.org/parvis/modules/portal/portlet"
)

// TestSharedBlocks: a block written on the city site shows on the district pages it is
// shared with, is edited in one place, drops their cached pages when edited, and shows
// nowhere else; bad input changes nothing.
func TestSharedBlocks(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			c := newClock()
			s := servertest.New(t, d, servertest.Options{Clock: c})
			f := newFixture(t, s, c)
			ctx := context.Background()
			other, err := f.m.CreateSite(ctx, SiteInput{OrgID: f.city.OrgID, Name: "Mairie du 12e", Prefix: "/mairie-12"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			alert := func(title string) BlockInput {
				return BlockInput{Type: "alert", Title: "Alerte ville", Config: portlet.Config{"level": "urgent", "title": title}, SharedWith: []int64{f.district.ID}}
			}
			b, err := f.m.SaveBlock(ctx, f.city.ID, 0, alert("Crue de la Loire : quais fermés"))
			if err != nil {
				t.Fatal(err)
			}
			withBlock := []Placement{{Zone: "main", Type: "richtext", Config: portlet.Config{"body": "Accueil"}}, {Zone: "main", Type: sharedKey, Config: portlet.Config{"block": itoa(b.ID)}}}
			for _, site := range []*Site{f.district, other} {
				home := f.home(t, site)
				if _, err := f.m.SaveDraft(ctx, home.ID, DraftInput{Title: "Accueil", Layout: "one", Visibility: Public, Content: withBlock}); err != nil {
					t.Fatal(err)
				}
				if err := f.m.Publish(ctx, home.ID, nil, nil); err != nil {
					t.Fatal(err)
				}
			}
			fetch := func(path string) (string, string) {
				res := get(t, s, path)
				if res.StatusCode != 200 {
					t.Fatalf("GET %s = %d", path, res.StatusCode)
				}
				return body(t, res), res.Header.Get("X-Parvis-Cache")
			}
			if page, _ := fetch("/mairie-11/"); !strings.Contains(page, "Crue de la Loire") {
				t.Fatal("shared block missing from the district page")
			}
			if _, src := fetch("/mairie-11/"); src != "hit" {
				t.Fatalf("second request: %q", src)
			}
			if page, _ := fetch("/mairie-12/"); strings.Contains(page, "Crue de la Loire") || !strings.Contains(page, "Accueil") {
				t.Error("a block not shared with the 12th shows on its page")
			}

			// Edited in one place: the district's cached page goes.
			if _, err := f.m.SaveBlock(ctx, f.city.ID, b.ID, alert("Crue terminée : quais rouverts")); err != nil {
				t.Fatal(err)
			}
			if page, src := fetch("/mairie-11/"); !strings.Contains(page, "quais rouverts") || src != "miss" {
				t.Errorf("after the edit: cache %q, new text shown %v", src, strings.Contains(page, "quais rouverts"))
			}

			foreign := s.NewOrg("Autre ville")
			far, err := f.m.CreateSite(ctx, SiteInput{OrgID: foreign, Name: "Ailleurs", Prefix: "/ailleurs"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			bad := []struct {
				name  string
				site  int64
				id    int64
				in    BlockInput
				code  errs.Code
				field string
			}{
				{"unknown type", f.city.ID, 0, BlockInput{Type: "nope", Title: "x"}, errs.Invalid, "type"},
				{"a shared block inside a block", f.city.ID, 0, BlockInput{Type: sharedKey, Title: "x", Config: portlet.Config{"block": itoa(b.ID)}}, errs.Invalid, "type"},
				{"no name", f.city.ID, 0, BlockInput{Type: "alert", Config: portlet.Config{"title": "x"}}, errs.Invalid, "block_title"},
				{"settings refused by the type", f.city.ID, 0, BlockInput{Type: "alert", Title: "x", Config: portlet.Config{"level": "panic", "title": "x"}}, errs.Invalid, "level"},
				{"script in rich text", f.city.ID, 0, BlockInput{Type: "richtext", Title: "x", Config: portlet.Config{"body": "<script>alert(1)</script>"}}, errs.Invalid, "body"},
				{"shared with another organisation", f.city.ID, 0, BlockInput{Type: "alert", Title: "x", Config: portlet.Config{"title": "x"}, SharedWith: []int64{far.ID}}, errs.Invalid, "shared"},
				{"edited from a site it is only shared with", f.district.ID, b.ID, alert("piratée"), errs.NotFound, "id"},
			}
			for _, tc := range bad {
				_, err := f.m.SaveBlock(ctx, tc.site, tc.id, tc.in)
				e, ok := errs.As(err)
				if !ok || e.Code != tc.code || e.Field != tc.field {
					t.Errorf("%s: got %v, want %s on %q", tc.name, err, tc.code, tc.field)
				}
			}
			var n int
			if err := f.m.db.Read().QueryRowContext(ctx, "SELECT COUNT(*) FROM portal_blocks").Scan(&n); err != nil || n != 1 {
				t.Errorf("blocks stored after bad input: %d (%v)", n, err)
			}
			if page, _ := fetch("/mairie-11/"); !strings.Contains(page, "quais rouverts") {
				t.Error("a refused edit changed the block")
			}

			// Through the back office: the form creates a block; the list shows it.
			editor := s.ClientAs(s.NewAgent(f.city.OrgID, "com-"+string(d)+"@ville.fr", PermPagesEdit))
			path := "/admin/portal/sites/" + itoa(f.city.ID) + "/blocks"
			res := editor.Post(path, urlValues("type", "links", "links.block_title", "Liens de la ville", "links.title", "Accès rapides",
				"links.links", "Budget | https://budget.example.org", "links.shared", itoa(f.district.ID)))
			if res.Status != http.StatusSeeOther {
				t.Fatalf("create through the form: %d\n%s", res.Status, res.Body)
			}
			if res := editor.Get(path); res.Status != 200 || !strings.Contains(res.Body, "Liens de la ville") || !strings.Contains(res.Body, "Mairie du 11e") {
				t.Errorf("block list: %d", res.Status)
			}
			res = editor.Post(path, urlValues("type", "alert", "alert.block_title", "", "alert.title", ""))
			if res.Status != http.StatusBadRequest || !strings.Contains(res.Body, `href="#f-alert.block_title"`) {
				t.Errorf("empty form: %d, want 400 with the error summary linking the field", res.Status)
			}
		})
	}
}
