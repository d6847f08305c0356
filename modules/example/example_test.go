package example_test

import (
	"strings"
	"testing"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store/storetest"
	_ "parvis.org/parvis/modules/example" // the one import that adds the module
)

// TestOneImportAddsTheModule: with nothing but the import above, the module's migration ran,
// its public route answers, its back-office route is guarded by its permission, its strings
// are translated, and its catalogue entry is contributed.
func TestOneImportAddsTheModule(t *testing.T) {
	for _, d := range storetest.Engines() {
		t.Run(string(d), func(t *testing.T) {
			s := servertest.New(t, d, servertest.Options{})
			found := false
			for _, in := range s.Modules {
				if in.Info.ID == "example" {
					found = true
					if len(in.Parts.Extensions) != 1 || in.Parts.Extensions[0].Point != kernel.PointCatalogue {
						t.Errorf("catalogue entry missing: %+v", in.Parts.Extensions)
					}
				}
			}
			if !found {
				t.Fatal("module example not built")
			}
			if _, ok := s.Perms["example.view"]; !ok {
				t.Error("permission example.view not declared")
			}
			c := s.Client()
			res := c.Get("/exemple")
			if res.Status != 200 || !strings.Contains(res.Body, "Bonjour depuis le module") {
				t.Fatalf("GET /exemple: %d %s", res.Status, res.Body)
			}
			if res := c.Get("/exemple?lang=en"); !strings.Contains(res.Body, "Hello from the example module") {
				t.Errorf("English page: %s", res.Body)
			}
			if res := c.Get("/admin/exemple"); res.Status != 303 {
				t.Errorf("anonymous GET /admin/exemple = %d, want 303 to login", res.Status)
			}
		})
	}
}
