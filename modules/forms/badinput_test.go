package forms

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/store/storetest"
)

// TestBadInput: each refused with a clear message and a 4xx, nothing partial stored.
func TestBadInput(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			f := setup(t, d)
			ctx := context.Background()
			count := func(table string) int {
				var n int
				_ = f.s.DB.Read().QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n)
				return n
			}
			tok := f.s.APIToken(f.s.NewAgent(f.org, "app@ville.test", PermSubmit), PermSubmit)
			post := func(path, body string) (int, string) { return apiCall(t, f.s.URL, tok, "POST", path, body) }
			valid := `"nom":"Léa","email":"lea@example.org","pro":"no","adresse":{"street":"1 rue X","postcode":"75011","town":"Paris"},"objets":[{"quoi":"armoire"}]`
			api := []struct {
				name, path, body string
				status           int
				want             string
			}{
				{"hidden question", "/api/forms/essai/responses", `{"answers":{` + valid + `,"siret":"73282932000074"}}`, 422, `"path":"siret","code":"hidden"`},
				{"skipped step", "/api/forms/essai/responses", `{"answers":{` + valid + `,"effectif":3}}`, 422, `"path":"effectif","code":"hidden"`},
				{"unknown question", "/api/forms/essai/responses", `{"answers":{` + valid + `,"couleur":"rouge"}}`, 422, `"path":"couleur","code":"unknown"`},
				{"invalid values", "/api/forms/essai/responses", `{"answers":{"nom":"","email":"x","pro":"peut-être"}}`, 422, `"path":"email","code":"email"`},
				{"bad postcode", "/api/forms/essai/responses", `{"answers":{"nom":"L","email":"l@example.org","pro":"no","adresse":{"street":"1","postcode":"75011","town":"Lyon"},"objets":[{"quoi":"a"}]}}`, 422, `"path":"adresse.town","code":"town"`},
				{"unknown body field", "/api/forms/essai/responses", `{"answers":{},"extra":1}`, 422, `"code":"unknown_field"`},
				{"malformed JSON", "/api/forms/essai/responses", `{"answers":`, 422, `"code":"syntax"`},
				{"unpublished form", "/api/forms/nothing/responses", `{"answers":{}}`, 404, `"code":"not_found"`},
			}
			for _, c := range api {
				st, body := post(c.path, c.body)
				if st != c.status || !strings.Contains(body, c.want) {
					t.Errorf("%s: %d %s, want %d with %s", c.name, st, body, c.status, c.want)
				}
			}
			if st, body := post("/api/forms/essai/responses", `{"answers":{`+valid+`}}`); st != 201 {
				t.Fatalf("valid API submission: %d %s", st, body)
			}
			if n := count("forms_responses"); n != 1 {
				t.Fatalf("responses after the API cases: %d, want 1", n)
			}

			// HTML: a tampered step order, unknown fields, an oversized file, a disguised one.
			c := f.s.Client()
			c.Get("/demarches/essai")
			c.Post("/demarches/essai", nil)
			if res := c.Post("/demarches/essai/etape/lieu", url.Values{"adresse.street": {"x"}}); res.Status != 409 || !strings.Contains(res.Body, "pas encore accessible") {
				t.Errorf("step order: %d", res.Status)
			}
			c.Get("/demarches/essai/etape/vous")
			if res := c.Post("/demarches/essai/etape/vous", url.Values{"nom": {"L"}, "email": {"l@example.org"}, "pro": {"no"}, "admin": {"1"}}); res.Status != 400 || !strings.Contains(res.Body, "champs inconnus") {
				t.Errorf("unknown field: %d", res.Status)
			}
			c.Get("/demarches/essai/etape/vous")
			if res := c.Post("/demarches/essai/etape/vous", url.Values{"nom": {""}, "email": {"pas-un-courriel"}, "pro": {"no"}}); res.Status != 400 ||
				!strings.Contains(res.Body, "pv-error-summary") || !strings.Contains(res.Body, `href="#f-email"`) || !strings.Contains(res.Body, "Saisissez une adresse électronique valide") {
				t.Errorf("validation errors: %d\n%s", res.Status, res.Body)
			}
			c.Get("/demarches/essai/etape/vous")
			if res := c.Post("/demarches/essai/etape/vous", url.Values{"nom": {"L"}, "email": {"l@example.org"}, "pro": {"no"}}); res.Status != 303 {
				t.Fatalf("step 1: %d", res.Status)
			}
			files := count("forms_files")
			exe := "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + strings.Repeat("\x00", 48) + "PE\x00\x00"
			lieu := url.Values{"adresse.street": {"1 rue X"}, "adresse.postcode": {"75011"}, "adresse.town": {"Paris"}, "objets.count": {"1"}, "objets[0].quoi": {"a"}}
			if res := multipartPost(t, c, "/demarches/essai/etape/lieu", lieu, map[string][2]string{"plan": {"plan.pdf", exe}}); res.Status != 400 || !strings.Contains(res.Body, "pas d&#39;un type accepté") {
				t.Errorf("disguised executable: %d\n%s", res.Status, res.Body)
			}
			big := pdfBytes + strings.Repeat("x", defFileSize)
			if res := multipartPost(t, c, "/demarches/essai/etape/lieu", lieu, map[string][2]string{"plan": {"plan.pdf", big}}); res.Status != 400 || !strings.Contains(res.Body, "dépasse la taille") {
				t.Errorf("oversized file: %d", res.Status)
			}
			if n := count("forms_files"); n != files {
				t.Errorf("refused files stored: %d → %d", files, n)
			}
			// Closed form: refused on the page and through the API; nothing stored.
			if err := f.m.Close(kernel.WithAgent(ctx, f.admin), f.org, "essai"); err != nil {
				t.Fatal(err)
			}
			if res := c.Post("/demarches/essai/recapitulatif", nil); res.Status != 409 && res.Status != 303 {
				t.Errorf("submit to a closed form: %d", res.Status)
			}
			if st, body := post("/api/forms/essai/responses", `{"answers":{`+valid+`}}`); st != 409 || !strings.Contains(body, "close") {
				t.Errorf("API submit to a closed form: %d %s", st, body)
			}
			if res := c.Get("/demarches/essai"); res.Status != 409 {
				t.Errorf("closed start page: %d", res.Status)
			}
			if n := count("forms_responses"); n != 1 {
				t.Errorf("responses at the end: %d, want 1", n)
			}
		})
	}
}
