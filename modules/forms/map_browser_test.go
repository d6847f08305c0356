package forms_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/browsertest"
	"parvis.org/parvis/kernel/servertest"
	"parvis.org/parvis/kernel/store"
	"parvis.org/parvis/modules/forms"
)

// mapForm has a map question whose tiles come from a path of the site that does not exist:
// the test needs no network, and tiles that fail to load must break nothing.
const mapForm = `
key: carte
title: Signaler un dépôt
settings: {captcha: true}
steps:
  - key: lieu
    title: Lieu
    sections:
      - key: s1
        questions:
          - key: point
            type: map
            label: Emplacement du dépôt
            required: true
            map: {tiles: "/tuiles-absentes/{z}/{x}/{y}.png", attribution: "Tuiles de test", lat: 48.8566, lng: 2.3522, zoom: 15}
          - {key: nom, type: text, label: Nom, required: true}
`

// TestBrowserMap: with JavaScript the map question shows a Leaflet map (under the pages'
// strict CSP); a click on the map, then the keyboard (arrows, Enter), set the point; the
// stored answer has the coordinates. Without JavaScript the address alone is the answer.
// axe-core runs on the step with the map in both cases, and on the review page with the
// guests' captcha (the form asks for it), which the test answers.
func TestBrowserMap(t *testing.T) {
	s := servertest.New(t, store.SQLite, servertest.Options{})
	ctx := context.Background()
	org := s.DefaultOrg()
	admin := s.NewOrgAdmin(org, "maire@ville.test")
	var m *forms.Module
	for _, in := range s.Modules {
		if x, ok := in.Module.(*forms.Module); ok {
			m = x
		}
	}
	def, err := forms.ParseDefinition([]byte(mapForm), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	actx := kernel.WithAgent(ctx, admin)
	if err := s.DB.InTx(actx, func(tx *store.Tx) error { _, err := m.SaveForm(actx, tx, org, def); return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Publish(actx, org, "carte"); err != nil {
		t.Fatal(err)
	}
	point := func(ref string) map[string]any {
		t.Helper()
		var raw string
		if err := s.DB.Read().QueryRowContext(ctx, `SELECT answers FROM forms_responses WHERE ref = ?`, ref).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var a map[string]any
		if err := json.Unmarshal([]byte(raw), &a); err != nil {
			t.Fatal(err)
		}
		p, _ := a["point"].(map[string]any)
		return p
	}
	coord := func(c *browsertest.Browser, name string) float64 {
		t.Helper()
		return browsertest.Eval[float64](c, `Number(document.querySelector('[name="point.`+name+`"]').value || "-999")`)
	}
	send := func(c *browsertest.Browser, name string, axe func()) string {
		t.Helper()
		c.Fill(`input[name="nom"]`, "Léa Martin")
		c.SubmitForm(`input[name="nom"]`)
		if got := c.Path(); got != "/demarches/carte/recapitulatif" {
			t.Fatalf("%s: after the step at %s:\n%s", name, got, c.Text("main"))
		}
		// The guests' captcha on the review page: axe, then the answer (the browser asks for
		// English pages), after the minimum delay.
		axe()
		q := regexp.MustCompile(`How much is ([a-z]+) (plus|minus) ([a-z]+)\?`).FindStringSubmatch(c.Text("main form"))
		if q == nil {
			t.Fatalf("%s: no captcha on the review page:\n%s", name, c.Text("main"))
		}
		words := map[string]int{"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
		answer := words[q[1]] + words[q[3]]
		if q[2] == "minus" {
			answer = words[q[1]] - words[q[3]]
		}
		time.Sleep(2100 * time.Millisecond)
		c.Fill(`input[name="captcha"]`, strconv.Itoa(answer))
		c.SubmitForm(`input[name="captcha"]`)
		ref := regexp.MustCompile(`^/demarches/carte/envoye/([2-9A-Z]{8})$`).FindStringSubmatch(c.Path())
		if ref == nil {
			t.Fatalf("%s: after sending at %s:\n%s", name, c.Path(), c.Text("main"))
		}
		return ref[1]
	}

	// --- With JavaScript.
	c := browsertest.New(t)
	c.Base = s.URL
	c.Viewport(browsertest.Phone)
	if st := c.Go("/demarches/carte"); st != http.StatusOK {
		t.Fatalf("form page %d", st)
	}
	c.Submit("main form button")
	c.Run("wait for the map", chromedp.WaitVisible(chromedp.CSS(`form[data-maps-ready] .leaflet-container`)))
	if h := browsertest.Eval[float64](c, `document.querySelector("[data-map-canvas]").getBoundingClientRect().height`); h < 100 {
		t.Errorf("the map is %v px high: its style sheet did not apply", h)
	}
	if browsertest.Eval[string](c, `getComputedStyle(document.querySelector(".leaflet-container")).overflow`) != "hidden" {
		t.Errorf("Leaflet's style sheet did not apply")
	}
	// (The browser asks for English pages: the labels are the English ones.)
	if !c.Has(`[data-map-canvas][role="application"][aria-label="Map: Emplacement du dépôt"][tabindex="0"][aria-describedby]`) {
		t.Errorf("the map has no accessible name or is not focusable:\n%s", c.HTML())
	}
	if !strings.Contains(c.Text(".leaflet-control-attribution"), "Tuiles de test") {
		t.Errorf("no tile attribution")
	}
	if coord(c, "lat") != -999 {
		t.Fatalf("a point before any click: %v", coord(c, "lat"))
	}
	c.Axe()
	// A click in the middle of the map places the point there (the view's centre).
	c.Click(`[data-map-canvas]`)
	lat, lng := coord(c, "lat"), coord(c, "lng")
	if math.Abs(lat-48.8566) > 0.01 || math.Abs(lng-2.3522) > 0.01 {
		t.Fatalf("a click at the centre gave %v, %v", lat, lng)
	}
	if !c.Has(".leaflet-marker-icon") {
		t.Errorf("no marker after the click")
	}
	if got := c.Text("[data-map-status]"); !strings.Contains(got, "Point placed: latitude 48.85") {
		t.Errorf("the point is not announced: %q", got)
	}
	// The keyboard: the map pans east with the arrow, Enter places the point at the centre.
	// (Leaflet ignores arrows while a pan is animated: one press, then wait for it to end.)
	idle := chromedp.Poll[chromedp.Void](`document.querySelector("[data-map-canvas]").hasAttribute("data-map-idle")`)
	c.Run("pan with the keyboard and place the point",
		chromedp.Focus(chromedp.CSS(`[data-map-canvas]`)),
		chromedp.KeyEvent(kb.ArrowRight), idle,
		chromedp.KeyEvent(kb.ArrowRight), idle,
		chromedp.KeyEvent(kb.Enter))
	lat2, lng2 := coord(c, "lat"), coord(c, "lng")
	if !(lng2 > lng+0.0005) || math.Abs(lat2-lat) > 0.002 {
		t.Fatalf("the keyboard placed the point at %v, %v (was %v, %v)", lat2, lng2, lat, lng)
	}
	c.Axe()
	ref := send(c, "js", c.Axe)
	p := point(ref)
	if p["lat"] != math.Round(lat2*1e6)/1e6 || p["lng"] != math.Round(lng2*1e6)/1e6 {
		t.Errorf("stored point %v, want %v, %v", p, lat2, lng2)
	}
	// Back to the step (a new draft): the stored point is not there, the map starts empty;
	// revisiting the step of a draft shows its point.
	c.Go("/demarches/carte")
	c.Submit("main form button")
	c.Run("wait for the map", chromedp.WaitVisible(chromedp.CSS(`form[data-maps-ready] .leaflet-container`)))
	c.Click(`[data-map-canvas]`)
	c.Fill(`input[name="nom"]`, "Léa Martin")
	c.SubmitForm(`input[name="nom"]`)
	c.Go("/demarches/carte/etape/lieu")
	c.Run("wait for the map", chromedp.WaitVisible(chromedp.CSS(`form[data-maps-ready] .leaflet-marker-icon`)))

	// --- Without JavaScript: the address is the answer; the coordinates stay hidden.
	n := browsertest.New(t)
	n.Base = s.URL
	n.Viewport(browsertest.Phone)
	scripts(n, false)
	n.Go("/demarches/carte")
	n.Submit("main form button")
	if browsertest.Eval[bool](n, `!document.querySelector('[data-map-coords]').hidden || !document.querySelector('[data-map-box]').hidden`) {
		t.Errorf("nojs: the coordinates or the map box show without JavaScript")
	}
	scripts(n, true)
	n.Axe()
	scripts(n, false)
	n.Fill(`textarea[name="point.address"]`, "Devant le 12 rue de la Roquette")
	ref = send(n, "nojs", func() { scripts(n, true); n.Axe(); scripts(n, false) })
	if p := point(ref); p["address"] != "Devant le 12 rue de la Roquette" || p["lat"] != nil {
		t.Errorf("nojs: stored point %v", p)
	}
}
