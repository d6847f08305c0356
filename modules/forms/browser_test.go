package forms_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/auth"
	"parvis.org/parvis/kernel/browsertest"
	_ "parvis.org/parvis/kernel/builtin"
	"parvis.org/parvis/kernel/citizen"
	"parvis.org/parvis/kernel/mail/mailtest"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/modules/forms"
	"parvis.org/parvis/modules/workflow"
)

// routedWorkflow sends postcodes 7501x to UNIT_A, the rest to UNIT_B; "done" mails the citizen.
const routedWorkflow = `{"key":"essai","title":"Essai","states":[
 {"key":"received","title":"Reçue","public_label":"Demande reçue","initial":true},
 {"key":"done","title":"Traitée","public_label":"Demande traitée","final":true}],
 "actions":[{"key":"done","title":"Traiter","from":["received"],"to":"done","tasks":[{"type":"mail","config":{"template":"done"}}]}],
 "templates":{"done":{"subject":"Demande traitée","body":"Votre demande {{.Reference}} est traitée."}},
 "routing":{"rules":[{"when":{"field":"adresse_postcode","op":"prefix","value":"7501"},"unit":UNIT_A}],"default_unit":UNIT_B}}`

// TestBrowserBuildFillRun is the whole story in Chromium: an administrator builds a
// three-step form (a condition, a file question) through the builder's pages and publishes
// it; a citizen fills it on a phone, once with JavaScript and once without; each receipt with
// its PDF arrives over SMTP; an agent of the routed unit runs the request through the
// workflow and writes to the citizen, who sees the new status and the message. axe-core runs
// on every page met, the error state and the review page included.
func TestBrowserBuildFillRun(t *testing.T) {
	mx := mailtest.New(t)
	s := servertest.New(t, store.SQLite, servertest.Options{Start: true, Env: []string{"PARVIS_SMTP=" + mx.URL()}})
	ctx := context.Background()
	org := s.DefaultOrg()
	unitA := s.NewUnit(org, 0, "Mairie du 11e")
	unitB := s.NewUnit(org, 0, "Mairie du 15e")
	admin := s.NewOrgAdmin(org, "maire@ville.test")
	agent := s.NewAgentWith(auth.NewAgent{OrgID: org, Email: "instructeur@ville.test", Name: "Alex Instructeur", Password: servertest.Password,
		UnitIDs: []int64{unitA}, Grants: []auth.Grant{
			{Perm: workflow.PermAct, Scope: auth.ScopeUnit, UnitID: unitA}, {Perm: workflow.PermInbox, Scope: auth.ScopeUnit, UnitID: unitA},
			{Perm: forms.PermResponses, Scope: auth.ScopeUnit, UnitID: unitA}}})
	var eng workflow.Engine
	var guests citizen.Guests
	for _, in := range s.Modules {
		if e, ok := kernel.Service[workflow.Engine](in.Env); ok {
			eng = e
		}
		if g, ok := kernel.Service[citizen.Guests](in.Env); ok {
			guests = g
		}
	}
	if eng == nil || guests == nil {
		t.Fatal("workflow engine or citizen guests missing")
	}
	// The workflow with its routing exists already (the workflow module's own pages are tested there).
	wf := strings.NewReplacer("UNIT_A", fmt.Sprint(unitA), "UNIT_B", fmt.Sprint(unitB)).Replace(routedWorkflow)
	actx := kernel.WithAgent(ctx, admin)
	if err := s.DB.InTx(actx, func(tx *store.Tx) error { _, err := eng.Import(actx, tx, org, []byte(wf), "json"); return err }); err != nil {
		t.Fatal(err)
	}

	// --- The administrator builds the form.
	b := browsertest.New(t)
	b.Base = s.URL
	signIn(t, b, admin.Email)
	page(t, b, "/admin/forms")
	b.Fill(`input[name="key"]`, "demande")
	b.Fill(`input[name="title"]`, "Demande de test")
	b.SubmitForm(`input[name="key"]`)
	const edit = "/admin/forms/demande/edit"
	if got := b.Path(); got != edit {
		t.Fatalf("after creating the form at %s", got)
	}
	b.Axe()
	addQuestion := func(step int, typ, key, label string, required bool) {
		t.Helper()
		p := fmt.Sprintf("#s%d", step)
		b.Run("open the add-question panel", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
			`document.querySelector(%q).closest("details").open = true`, p+"-key")))
		b.Select(p+"-type", typ)
		b.Fill(p+"-key", key)
		b.Fill(p+"-label", label)
		if required {
			b.Click(p + "-req")
		}
		if typ == "file" {
			b.Fill(p+"-acc", "application/pdf")
		}
		b.SubmitForm(p + "-key")
		builderOK(t, b, "adding "+key)
	}
	addStep := func(key, title string) {
		t.Helper()
		b.Fill(`input[name="step_title"]`, title)
		b.Fill(`input[name="step_key"]`, key)
		b.SubmitForm(`input[name="step_key"]`)
		builderOK(t, b, "adding step "+key)
	}
	addQuestion(0, "email", "email", "Courriel", true)
	addQuestion(0, "yesno", "precise", "Voulez-vous préciser ?", true)
	addQuestion(0, "textarea", "precision", "Précision", false)
	// The condition: "precision" only when "precise" is yes.
	b.Go(edit + "?q=precision#edit")
	b.Axe()
	b.Select("#c-field", "precise")
	b.Select("#c-op", "eq")
	b.Fill("#c-value", "yes")
	b.SubmitForm("#c-value")
	builderOK(t, b, "the condition")
	addStep("lieu", "Lieu")
	addQuestion(1, "address", "adresse", "Adresse", true)
	addStep("pieces", "Pièces")
	addQuestion(2, "file", "plan", "Plan des lieux", true)
	// Settings: the routed workflow, the question giving the email.
	b.Fill("#m-wf", "essai")
	b.Fill("#m-email", "email")
	b.SubmitForm("#m-wf")
	builderOK(t, b, "the settings")
	b.Axe()
	b.SubmitForm(`form input[name="op"][value="publish"]`)
	builderOK(t, b, "publishing")
	if !strings.Contains(b.Text("main"), "/demarches/demande") && !b.Has(`a[href="/demarches/demande"]`) {
		t.Fatalf("not published:\n%s", b.Text("main"))
	}

	// --- A citizen fills it on a phone, with and then without JavaScript.
	pdf := filepath.Join(t.TempDir(), "plan.pdf")
	if err := os.WriteFile(pdf, []byte("%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var refs []string
	var jsCitizen *browsertest.Browser
	for _, js := range []bool{true, false} {
		c := browsertest.New(t)
		c.Base = s.URL
		c.Viewport(browsertest.Phone)
		if !js {
			scripts(c, false)
		}
		// axe itself is a script: let it run for the check only (forms.js, loaded with the
		// page, stays off).
		axe := func() {
			if !js {
				scripts(c, true)
				defer scripts(c, false)
			}
			c.Axe()
		}
		name := map[bool]string{true: "js", false: "nojs"}[js]
		email := "lea." + name + "@example.org"
		if st := c.Go("/demarches/demande"); st != http.StatusOK {
			t.Fatalf("%s: form page %d", name, st)
		}
		axe()
		c.Submit("main form button")
		if got := c.Path(); got != "/demarches/demande/etape/etape_1" {
			t.Fatalf("%s: start led to %s", name, got)
		}
		axe()
		hidden := func() bool {
			return browsertest.Eval[bool](c, `document.querySelector('[name="precision"]').closest(".forms-q").hidden`)
		}
		if hidden() != js {
			t.Errorf("%s: the conditional question hidden=%v before any answer", name, hidden())
		}
		// The error state: nothing answered.
		c.SubmitForm(`input[name="nom"]`)
		if !c.Has(".pv-error-summary") || c.Path() != "/demarches/demande/etape/etape_1" {
			t.Fatalf("%s: no error summary after an empty step (at %s)", name, c.Path())
		}
		axe()
		c.Fill(`input[name="nom"]`, "Léa Martin")
		c.Fill(`input[name="email"]`, email)
		if js {
			c.Click(`input[name="precise"][value="yes"]`)
			if hidden() {
				t.Errorf("js: the conditional question stays hidden after yes")
			}
			c.Fill(`textarea[name="precision"]`, "Derrière le portail")
		} else {
			// Shown without the script, but answered "no": the server drops the answer.
			c.Click(`input[name="precise"][value="no"]`)
			c.Fill(`textarea[name="precision"]`, "Texte à ignorer")
		}
		c.SubmitForm(`input[name="nom"]`)
		if got := c.Path(); got != "/demarches/demande/etape/lieu" {
			t.Fatalf("%s: after step 1 at %s:\n%s", name, got, c.Text("main"))
		}
		axe()
		c.Fill(`input[name="adresse.street"]`, "1 rue de la Roquette")
		c.Fill(`input[name="adresse.postcode"]`, "75011")
		c.Fill(`input[name="adresse.town"]`, "Paris")
		c.SubmitForm(`input[name="adresse.street"]`)
		if got := c.Path(); got != "/demarches/demande/etape/pieces" {
			t.Fatalf("%s: after step 2 at %s:\n%s", name, got, c.Text("main"))
		}
		axe()
		c.Run("choose the file", chromedp.SetUploadFiles(chromedp.CSS(`input[name="plan"]`), []string{pdf}))
		c.SubmitForm(`input[name="plan"]`)
		if got := c.Path(); got != "/demarches/demande/recapitulatif" {
			t.Fatalf("%s: after step 3 at %s:\n%s", name, got, c.Text("main"))
		}
		axe()
		review := c.Text("main")
		for _, want := range []string{"Léa Martin", email, "75011", "plan.pdf"} {
			if !strings.Contains(review, want) {
				t.Errorf("%s: review lacks %q:\n%s", name, want, review)
			}
		}
		if js != strings.Contains(review, "Derrière le portail") || strings.Contains(review, "Texte à ignorer") {
			t.Errorf("%s: the conditional answer on the review page is wrong:\n%s", name, review)
		}
		c.SubmitForm(`main form button`)
		m := regexp.MustCompile(`^/demarches/demande/envoye/([2-9A-Z]{8})$`).FindStringSubmatch(c.Path())
		if m == nil {
			t.Fatalf("%s: after sending at %s:\n%s", name, c.Path(), c.Text("main"))
		}
		axe()
		refs = append(refs, m[1])
		if js {
			jsCitizen = c
		}
	}

	// Each receipt arrives over SMTP with its PDF.
	for i, ref := range refs {
		msg := mx.WaitFor(t, "receipt of "+ref, 90*time.Second, func(m mailtest.Message) bool { return m.Attachment("recu-"+ref+".pdf") != nil })
		if !bytes.HasPrefix(msg.Attachment("recu-"+ref+".pdf"), []byte("%PDF-")) {
			t.Errorf("receipt %s: the attachment is not a PDF", ref)
		}
		want := []string{"lea.js@example.org", "lea.nojs@example.org"}[i]
		if len(msg.To) != 1 || msg.To[0] != want {
			t.Errorf("receipt %s sent to %v, want %s", ref, msg.To, want)
		}
	}
	ref := refs[0]
	if st, err := eng.State(ctx, workflow.Ref{Type: forms.ResourceType, ID: ref}); err != nil || st.UnitID != unitA {
		t.Fatalf("routing: %+v %v (want unit %d)", st, err, unitA)
	}

	// --- The agent of the routed unit runs the request and writes to the citizen.
	a := browsertest.New(t)
	a.Base = s.URL
	signIn(t, a, agent.Email)
	page(t, a, "/admin/reponses/"+ref)
	a.Submit(`a[href="/admin/workflow/r/forms.response/` + ref + `"]`)
	a.Axe()
	a.Click(`input[name="action"][value="done"]`)
	a.SubmitForm(`input[name="action"][value="done"]`)
	if !strings.Contains(a.Text("main"), "Traitée") {
		t.Fatalf("the action did not run:\n%s", a.Text("main"))
	}
	a.Go("/admin/reponses/" + ref)
	a.Fill(`textarea[name="message"]`, "Nous passerons mardi.")
	a.SubmitForm(`textarea[name="message"]`)
	a.Axe()
	mx.WaitFor(t, "the 'done' mail", 90*time.Second, func(m mailtest.Message) bool { return strings.Contains(m.Text(), "Votre demande "+ref+" est trait") })

	// --- The citizen proves the address and sees the status and the message.
	if err := guests.Start(ctx, "lea.js@example.org", "/compte/demandes", "fr"); err != nil {
		t.Fatal(err)
	}
	inv := mx.WaitFor(t, "the guest link", 90*time.Second, func(m mailtest.Message) bool { return strings.Contains(m.Text(), "/compte/invite?t=") })
	link := regexp.MustCompile(`/compte/invite\?t=[A-Za-z0-9_-]+`).FindString(inv.Text())
	jsCitizen.Go(link)
	jsCitizen.Axe()
	jsCitizen.SubmitForm(`main form button`)
	page(t, jsCitizen, "/compte/demandes/"+ref)
	if got := jsCitizen.Text("main"); !strings.Contains(got, "Demande traitée") || !strings.Contains(got, "Nous passerons mardi.") {
		t.Errorf("the citizen's page lacks the status or the message:\n%s", got)
	}
}

// builderOK fails unless the builder took the last operation (back on its page, no problem).
func builderOK(t *testing.T, b *browsertest.Browser, what string) {
	t.Helper()
	if got := b.Path(); got != "/admin/forms/demande/edit" || b.Has(".pv-error-summary") {
		t.Fatalf("builder, %s: at %s\n%s", what, got, b.Text("main"))
	}
}

// signIn signs an agent in through the login form.
func signIn(t *testing.T, b *browsertest.Browser, email string) {
	t.Helper()
	b.Go("/admin/login")
	b.Fill(`input[name="email"]`, email)
	b.Fill(`input[name="password"]`, servertest.Password)
	b.SubmitForm(`input[name="password"]`)
	if got := b.Path(); strings.HasPrefix(got, "/admin/login") {
		t.Fatalf("sign-in of %s failed", email)
	}
}

// page loads path, expects 200 and runs axe.
func page(t *testing.T, b *browsertest.Browser, path string) {
	t.Helper()
	if st := b.Go(path); st != http.StatusOK {
		t.Fatalf("GET %s: %d", path, st)
	}
	b.Axe()
}

// scripts turns JavaScript on or off in the tab, for the pages loaded after, as a person with
// scripts blocked meets the site.
func scripts(b *browsertest.Browser, on bool) {
	b.T.Helper()
	b.Run("switch JavaScript", func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !on})
		return chromedp.Void{}, err
	})
}
