package auth

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"parvis.org/parvis/kernel"
	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/kernel/web"
)

// Helpers shared by the module's handlers: rendering, errors at the edge, forms.

func (m *Module) render(w http.ResponseWriter, r *http.Request, pg web.Page) {
	if pg.Layout == "" {
		pg.Layout = "backoffice"
	}
	if !strings.Contains(pg.Name, "/") {
		pg.Name = ID + "/" + pg.Name
	}
	m.env.Views.Render(w, r, pg)
}

type errorData struct{ Message, Back string }

// errorPage renders the kernel's error page with a translated message.
func (m *Module) errorPage(w http.ResponseWriter, r *http.Request, status int, key string, args ...any) {
	layout, back := "public", "/"
	if kernel.AgentFrom(r.Context()) != nil {
		layout, back = "backoffice", "/admin/"
	}
	lang := "fr"
	if m.env.Views.Lang != nil {
		lang = m.env.Views.Lang(r)
	}
	m.env.Views.Render(w, r, web.Page{Name: "kernel/error.html", Layout: layout, Status: status, Title: "kernel.error.title",
		Data: errorData{Message: m.env.I18n.T(lang, key, args...), Back: back}})
}

// fail maps a domain error to its status and message; unexpected errors are logged and
// shown as a plain 500 page.
func (m *Module) fail(w http.ResponseWriter, r *http.Request, err error) {
	if e, ok := errs.As(err); ok {
		m.errorPage(w, r, web.StatusOf(err), e.Key, e.Args...)
		return
	}
	m.log.Error("request failed", "path", r.URL.Path, "err", err, "request_id", web.RequestIDFrom(r.Context()))
	m.errorPage(w, r, http.StatusInternalServerError, "kernel.error.internal")
}

// formError moves a field-bound domain error into the form; it reports whether it did.
func formError(f *web.Form, err error) bool {
	e, ok := errs.As(err)
	if !ok || e.Field == "" || (e.Code != errs.Invalid && e.Code != errs.Conflict) {
		return false
	}
	f.Fail(e.Field, e.Key, e.Args...)
	return true
}

// parse reads a posted form; on failure it answers 413 or 400 and returns nil.
func (m *Module) parse(w http.ResponseWriter, r *http.Request) *web.Form {
	f, err := web.ParseForm(r)
	if errors.Is(err, web.ErrBodyTooLarge) {
		m.errorPage(w, r, http.StatusRequestEntityTooLarge, "kernel.error.too_large")
		return nil
	}
	if err != nil {
		m.errorPage(w, r, http.StatusBadRequest, "kernel.error.bad_request")
		return nil
	}
	return f
}

// pathID reads a numeric path wildcard; a malformed one is "not found".
func (m *Module) pathID(w http.ResponseWriter, r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		m.errorPage(w, r, http.StatusNotFound, "kernel.error.not_found_text")
		return 0, false
	}
	return id, true
}

// ids parses a list of numeric form values, recording an error on field if one is not.
func ids(f *web.Form, field string) []int64 {
	var out []int64
	for _, v := range f.Values[field] {
		id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || id <= 0 {
			f.Fail(field, "kernel.auth.error.choice")
			return nil
		}
		out = append(out, id)
	}
	return out
}

func idStrings(xs []int64) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strconv.FormatInt(x, 10)
	}
	return out
}

// safeNext keeps a post-login destination only when it is a back-office path of this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/admin/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/admin/"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/admin/"
	}
	return next
}

// Option is a choice in a select, radios or checkboxes partial.
type Option struct{ Value, Label, Hint string }

func (m *Module) lang(r *http.Request) string {
	if m.env.Views.Lang != nil {
		return m.env.Views.Lang(r)
	}
	return "fr"
}

func (m *Module) t(r *http.Request, key string, args ...any) string {
	return m.env.I18n.T(m.lang(r), key, args...)
}

func isConflict(err error) bool { return errs.CodeOf(err) == errs.Conflict }

// flashes maps the ?done= values of redirects after a change to their message.
var flashes = map[string]string{
	"saved":      "kernel.auth.flash.saved",
	"created":    "kernel.auth.flash.created",
	"deleted":    "kernel.auth.flash.deleted",
	"password":   "kernel.auth.flash.password",
	"totp":       "kernel.auth.flash.totp_on",
	"totp_off":   "kernel.auth.flash.totp_off",
	"totp_reset": "kernel.auth.flash.totp_reset",
	"revoked":    "kernel.auth.flash.revoked",
	"out":        "kernel.auth.flash.logged_out",
	"reset":      "kernel.auth.flash.reset_done",
	"setup":      "kernel.auth.flash.setup_done",
}

func flash(r *http.Request) string { return flashes[r.URL.Query().Get("done")] }
