package theme

import (
	"net/http"
	"net/url"

	"parvis.org/parvis/kernel/web"
)

// designData drives the style guide.
type designData struct {
	Errors bool   // the sample form is shown with errors
	Layout string // the layout the guide is shown in
}

// design renders every layout part, partial and component with sample data, so designers
// and accessibility checkers (axe-core) find them in one place. ?layout=public|bare shows
// the guide in another layout; ?errors=0 shows the form without errors.
func (m *Module) design(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	layout := q.Get("layout")
	if layout != "public" && layout != "bare" {
		layout = "backoffice"
	}
	f := sampleForm(m.views.I18n.T(m.lang(r), "kernel.theme.design.sample_message"))
	d := designData{Errors: q.Get("errors") != "0", Layout: layout}
	if d.Errors {
		f.Fail("email", "kernel.theme.design.error_email")
		f.Fail("birth", "kernel.theme.design.error_date")
		f.Fail("topic", "kernel.theme.design.error_topic")
	} else {
		f.Values.Set("email", "camille.martin@example.org")
		f.Values.Set("birth-month", "3")
		f.Values.Set("topic", "roads")
	}
	m.views.Render(w, r, web.Page{Name: "kernel.theme/design.html", Layout: layout, Title: "kernel.theme.design.title", Form: f, Data: d})
}

// sampleForm holds the answers a citizen might have typed.
func sampleForm(message string) *web.Form {
	return web.NewForm(url.Values{
		"name":        {"Camille Martin"},
		"email":       {"camille.martin@"},
		"birth-day":   {"14"},
		"birth-month": {"13"},
		"birth-year":  {"1987"},
		"channels":    {"email", "sms"},
		"district":    {"11"},
		"message":     {message},
	})
}
