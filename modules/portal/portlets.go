package portal

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"regexp"
	"strconv"
	"strings"
	"time"

	"parvis.org/parvis/kernel/errs"
	"parvis.org/parvis/modules/portal/portlet"
)

// The portal's own portlet types. They are contributed through kernel.PointPortlet like
// any other module's, so the mechanism is the one they prove.

func builtinPortlets(m *Module) []portlet.Type {
	return []portlet.Type{
		richText{}, imagePortlet{m}, linksPortlet{}, newsPortlet{m}, documentsPortlet{m},
		contactPortlet{m}, alertPortlet{}, cataloguePortlet{m}, sharedPortlet{m},
	}
}

var portletTmpl = template.Must(template.New("").Funcs(template.FuncMap{"fileSize": fileSize}).Parse(`
{{define "richtext"}}<section class="portal-portlet portal-richtext">{{with .Title}}<h2>{{.}}</h2>{{end}}{{.Body}}</section>{{end}}
{{define "image"}}<figure class="portal-portlet portal-image"><img src="{{.Src}}"{{with .Srcset}} srcset="{{.}}" sizes="(max-width: 48rem) 100vw, 48rem"{{end}} alt="{{.Alt}}"{{if .W}} width="{{.W}}" height="{{.H}}"{{end}} loading="lazy">{{with .Caption}}<figcaption>{{.}}</figcaption>{{end}}</figure>{{end}}
{{define "links"}}<nav class="portal-portlet portal-links" aria-label="{{.Title}}"><h2>{{.Title}}</h2><ul>{{range .Links}}<li><a href="{{.URL}}">{{.Title}}</a></li>{{end}}</ul></nav>{{end}}
{{define "news"}}<section class="portal-portlet portal-newslist"><h2>{{.Title}}</h2>{{if .News}}<ul class="portal-cards">{{range .News}}<li class="portal-card"><h3><a href="{{$.Base}}/actualites/{{.Slug}}">{{.Title}}</a></h3><p class="portal-meta"><time datetime="{{.PublishedAt.Format "2006-01-02"}}">{{call $.Date .PublishedAt}}</time></p><p>{{.Summary}}</p></li>{{end}}</ul>{{else}}<p>{{.Empty}}</p>{{end}}<p><a href="{{.Base}}/actualites">{{.All}}</a></p></section>{{end}}
{{define "documents"}}<section class="portal-portlet portal-documents"><h2>{{.Title}}</h2><ul>{{range .Docs}}<li><a href="{{.URL}}" download>{{.Title}}</a> <span class="portal-meta">({{.Type}}, {{fileSize .Size $.Lang}})</span></li>{{end}}</ul></section>{{end}}
{{define "contact"}}<section class="portal-portlet portal-contact"><h2>{{.Title}}</h2>{{with .C.Address}}<p class="portal-address">{{.}}</p>{{end}}<ul class="portal-plain">{{with .C.Phone}}<li>{{$.PhoneL}} <a href="tel:{{.}}">{{.}}</a></li>{{end}}{{with .C.Email}}<li>{{$.EmailL}} <a href="mailto:{{.}}">{{.}}</a></li>{{end}}</ul>{{with .C.Hours}}<h3>{{$.HoursL}}</h3><ul class="portal-plain">{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}</section>{{end}}
{{define "alert"}}<div class="portal-portlet portal-alert portal-alert--{{.Level}}" role="note" aria-label="{{.Label}}"><p class="portal-alert__title"><strong>{{.Title}}</strong></p>{{with .Text}}<p>{{.}}</p>{{end}}</div>{{end}}
{{define "catalogue"}}<section class="portal-portlet portal-catalogue"><h2>{{.Title}}</h2><ul class="portal-cards">{{range .Entries}}<li class="portal-card"><h3><a href="{{.URL}}">{{.Title}}</a></h3><p>{{.Summary}}</p></li>{{end}}</ul></section>{{end}}
`))

func exec(name string, data any) (template.HTML, error) {
	var b bytes.Buffer
	if err := portletTmpl.ExecuteTemplate(&b, name, data); err != nil {
		return "", err
	}
	return template.HTML(b.String()), nil
}

// fileSize writes a size the way people read it: "1,2 Mo" / "1.2 MB".
func fileSize(n int64, lang string) string {
	units := []string{"o", "Ko", "Mo", "Go"}
	if lang == "en" {
		units = []string{"B", "KB", "MB", "GB"}
	}
	f, i := float64(n), 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	s := strconv.FormatFloat(f, 'f', 1, 64)
	if i == 0 {
		s = strconv.FormatInt(n, 10)
	}
	s = strings.TrimSuffix(s, ".0")
	if lang != "en" {
		s = strings.ReplaceAll(s, ".", ",")
	}
	return s + "\u00a0" + units[i]
}

// unsafeHTML spots what the sanitiser would silently remove from rich text, so the editor
// is told instead of surprised (rendering sanitises anyway).
var unsafeHTML = regexp.MustCompile(`(?i)<\s*(script|iframe|object|embed|style|form)\b|\son[a-z]+\s*=|(java|vb)script\s*(:|&#)|data\s*:\s*text/html`)

type richText struct{}

func (richText) Key() string   { return "richtext" }
func (richText) Title() string { return "portal.portlet.richtext" }
func (richText) Fields() []portlet.Field {
	return []portlet.Field{{Name: "title", Label: "portal.field.heading", Hint: "portal.field.heading_hint", Kind: portlet.KindText},
		{Name: "body", Label: "portal.field.body", Hint: "portal.field.body_hint", Kind: portlet.KindTextarea}}
}
func (richText) Clean(_ context.Context, c portlet.Config) (portlet.Config, error) {
	if strings.TrimSpace(c["body"]) == "" {
		return nil, errs.OnField(errs.Invalid, "body", "kernel.error.required")
	}
	if unsafeHTML.MatchString(c["body"]) {
		return nil, errs.OnField(errs.Invalid, "body", "portal.error.unsafe_html")
	}
	return portlet.Config{"title": strings.TrimSpace(c["title"]), "body": c["body"]}, nil
}
func (richText) Render(_ context.Context, _ *portlet.Context, c portlet.Config) (template.HTML, error) {
	return exec("richtext", map[string]any{"Title": c["title"], "Body": markdown(c["body"])})
}

type imagePortlet struct{ m *Module }

func (imagePortlet) Key() string   { return "image" }
func (imagePortlet) Title() string { return "portal.portlet.image" }
func (imagePortlet) Fields() []portlet.Field {
	return []portlet.Field{{Name: "media", Label: "portal.field.media", Hint: "portal.field.media_hint", Kind: portlet.KindText},
		{Name: "alt", Label: "portal.field.alt", Hint: "portal.field.alt_hint", Kind: portlet.KindText},
		{Name: "decorative", Label: "portal.field.decorative", Kind: portlet.KindCheckbox},
		{Name: "caption", Label: "portal.field.caption", Kind: portlet.KindText}}
}
func (p imagePortlet) Clean(ctx context.Context, c portlet.Config) (portlet.Config, error) {
	id, err := strconv.ParseInt(strings.TrimSpace(c["media"]), 10, 64)
	if err != nil || id <= 0 {
		return nil, errs.OnField(errs.Invalid, "media", "portal.error.media")
	}
	if img, err := getMedia(ctx, p.m.db.Read(), id); err != nil || img.Kind != "image" {
		return nil, errs.OnField(errs.Invalid, "media", "portal.error.media")
	}
	dec := c["decorative"] == "on" || c["decorative"] == "true"
	alt := strings.TrimSpace(c["alt"])
	if alt == "" && !dec {
		return nil, errs.OnField(errs.Invalid, "alt", "portal.error.alt")
	}
	if dec {
		alt = ""
	}
	out := portlet.Config{"media": strconv.FormatInt(id, 10), "alt": alt, "caption": strings.TrimSpace(c["caption"])}
	if dec {
		out["decorative"] = "true"
	}
	return out, nil
}
func (p imagePortlet) Render(ctx context.Context, rc *portlet.Context, c portlet.Config) (template.HTML, error) {
	id, _ := strconv.ParseInt(c["media"], 10, 64)
	img, err := getMedia(ctx, p.m.db.Read(), id)
	if err != nil || img.SiteID != rc.SiteID {
		return "", fmt.Errorf("image %d: not in this site's library", id)
	}
	return exec("image", map[string]any{"Src": p.m.mediaURL(img, 0), "Srcset": p.m.srcset(img), "Alt": c["alt"],
		"W": img.Width, "H": img.Height, "Caption": c["caption"]})
}

type linksPortlet struct{}

func (linksPortlet) Key() string   { return "links" }
func (linksPortlet) Title() string { return "portal.portlet.links" }
func (linksPortlet) Fields() []portlet.Field {
	return []portlet.Field{{Name: "title", Label: "portal.field.heading", Kind: portlet.KindText},
		{Name: "links", Label: "portal.field.links", Hint: "portal.field.links_hint", Kind: portlet.KindTextarea}}
}

func parseLinks(s string) ([]Link, error) {
	var out []Link
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		title, u, ok := strings.Cut(line, "|")
		title, u = strings.TrimSpace(title), strings.TrimSpace(u)
		if !ok || title == "" || !safeURL(u) {
			return nil, errs.OnField(errs.Invalid, "links", "portal.error.links", "line", line)
		}
		out = append(out, Link{Title: title, URL: u})
	}
	return out, nil
}

func (linksPortlet) Clean(_ context.Context, c portlet.Config) (portlet.Config, error) {
	if strings.TrimSpace(c["title"]) == "" {
		return nil, errs.OnField(errs.Invalid, "title", "kernel.error.required")
	}
	links, err := parseLinks(c["links"])
	if err != nil {
		return nil, err
	}
	if len(links) == 0 {
		return nil, errs.OnField(errs.Invalid, "links", "kernel.error.required")
	}
	return portlet.Config{"title": strings.TrimSpace(c["title"]), "links": c["links"]}, nil
}
func (linksPortlet) Render(_ context.Context, _ *portlet.Context, c portlet.Config) (template.HTML, error) {
	links, err := parseLinks(c["links"])
	if err != nil {
		return "", err
	}
	return exec("links", map[string]any{"Title": c["title"], "Links": links})
}

type newsPortlet struct{ m *Module }

func (newsPortlet) Key() string   { return "news" }
func (newsPortlet) Title() string { return "portal.portlet.news" }
func (newsPortlet) Fields() []portlet.Field {
	return []portlet.Field{{Name: "title", Label: "portal.field.heading", Kind: portlet.KindText},
		{Name: "limit", Label: "portal.field.limit", Hint: "portal.field.limit_hint", Kind: portlet.KindText}}
}
func (newsPortlet) Clean(_ context.Context, c portlet.Config) (portlet.Config, error) {
	n, err := strconv.Atoi(strings.TrimSpace(c["limit"]))
	if c["limit"] == "" {
		n, err = 3, nil
	}
	if err != nil || n < 1 || n > 20 {
		return nil, errs.OnField(errs.Invalid, "limit", "portal.error.limit")
	}
	return portlet.Config{"title": strings.TrimSpace(c["title"]), "limit": strconv.Itoa(n)}, nil
}
func (p newsPortlet) Render(ctx context.Context, rc *portlet.Context, c portlet.Config) (template.HTML, error) {
	n, _ := strconv.Atoi(c["limit"])
	news, err := siteNews(ctx, p.m.db.Read(), rc.SiteID, rc.Now, max(n, 1), 0)
	if err != nil {
		return "", err
	}
	title := c["title"]
	if title == "" {
		title = rc.T("portal.news.title")
	}
	lang := rc.Lang
	return exec("news", map[string]any{"Title": title, "News": news, "Base": rc.Base, "Empty": rc.T("portal.news.empty"),
		"All": rc.T("portal.news.all"), "Date": func(t time.Time) string { return formatDate(lang, t.In(p.m.views.Location)) }})
}

type documentsPortlet struct{ m *Module }

func (documentsPortlet) Key() string   { return "documents" }
func (documentsPortlet) Title() string { return "portal.portlet.documents" }
func (documentsPortlet) Fields() []portlet.Field {
	return []portlet.Field{{Name: "title", Label: "portal.field.heading", Kind: portlet.KindText},
		{Name: "media", Label: "portal.field.documents", Hint: "portal.field.documents_hint", Kind: portlet.KindText}}
}
func (p documentsPortlet) Clean(ctx context.Context, c portlet.Config) (portlet.Config, error) {
	if strings.TrimSpace(c["title"]) == "" {
		return nil, errs.OnField(errs.Invalid, "title", "kernel.error.required")
	}
	var ids []string
	for _, f := range strings.FieldsFunc(c["media"], func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil {
			return nil, errs.OnField(errs.Invalid, "media", "portal.error.media")
		}
		if _, err := getMedia(ctx, p.m.db.Read(), id); err != nil {
			return nil, errs.OnField(errs.Invalid, "media", "portal.error.media")
		}
		ids = append(ids, strconv.FormatInt(id, 10))
	}
	if len(ids) == 0 {
		return nil, errs.OnField(errs.Invalid, "media", "kernel.error.required")
	}
	return portlet.Config{"title": strings.TrimSpace(c["title"]), "media": strings.Join(ids, ",")}, nil
}

type docView struct {
	Title, URL, Type string
	Size             int64
}

func (p documentsPortlet) Render(ctx context.Context, rc *portlet.Context, c portlet.Config) (template.HTML, error) {
	var docs []docView
	for _, f := range strings.Split(c["media"], ",") {
		id, _ := strconv.ParseInt(f, 10, 64)
		d, err := getMedia(ctx, p.m.db.Read(), id)
		if err != nil || d.SiteID != rc.SiteID {
			continue
		}
		docs = append(docs, docView{Title: d.Title, URL: p.m.mediaURL(d, 0), Type: typeName(d.MIME), Size: d.Size})
	}
	return exec("documents", map[string]any{"Title": c["title"], "Docs": docs, "Lang": rc.Lang})
}

func typeName(mime string) string {
	switch {
	case mime == "application/pdf":
		return "PDF"
	case strings.Contains(mime, "opendocument.text"):
		return "ODT"
	case strings.Contains(mime, "opendocument.spreadsheet"):
		return "ODS"
	case strings.Contains(mime, "wordprocessingml"):
		return "DOCX"
	case strings.Contains(mime, "spreadsheetml"):
		return "XLSX"
	case strings.HasPrefix(mime, "image/jpeg"):
		return "JPEG"
	case strings.HasPrefix(mime, "image/png"):
		return "PNG"
	case strings.HasPrefix(mime, "text/csv"):
		return "CSV"
	}
	return strings.ToUpper(mime)
}

type contactPortlet struct{ m *Module }

func (contactPortlet) Key() string   { return "contact" }
func (contactPortlet) Title() string { return "portal.portlet.contact" }
func (contactPortlet) Fields() []portlet.Field {
	return []portlet.Field{{Name: "title", Label: "portal.field.heading", Hint: "portal.field.contact_hint", Kind: portlet.KindText}}
}
func (contactPortlet) Clean(_ context.Context, c portlet.Config) (portlet.Config, error) {
	return portlet.Config{"title": strings.TrimSpace(c["title"])}, nil
}
func (p contactPortlet) Render(_ context.Context, rc *portlet.Context, c portlet.Config) (template.HTML, error) {
	s := p.m.st.Load().byID[rc.SiteID]
	if s == nil {
		return "", fmt.Errorf("site %d not loaded", rc.SiteID)
	}
	title := c["title"]
	if title == "" {
		title = rc.T("portal.contact.title")
	}
	return exec("contact", map[string]any{"Title": title, "C": s.Contact, "PhoneL": rc.T("portal.contact.phone"),
		"EmailL": rc.T("portal.contact.email"), "HoursL": rc.T("portal.contact.hours")})
}

type alertPortlet struct{}

func (alertPortlet) Key() string   { return "alert" }
func (alertPortlet) Title() string { return "portal.portlet.alert" }
func (alertPortlet) Fields() []portlet.Field {
	return []portlet.Field{{Name: "level", Label: "portal.field.level", Kind: portlet.KindSelect, Options: []portlet.Option{
		{Value: "info", Label: "portal.alert.info"}, {Value: "warning", Label: "portal.alert.warning"}, {Value: "urgent", Label: "portal.alert.urgent"}}},
		{Name: "title", Label: "portal.field.heading", Kind: portlet.KindText},
		{Name: "text", Label: "portal.field.text", Kind: portlet.KindTextarea}}
}
func (alertPortlet) Clean(_ context.Context, c portlet.Config) (portlet.Config, error) {
	lvl := c["level"]
	if lvl == "" {
		lvl = "info"
	}
	if lvl != "info" && lvl != "warning" && lvl != "urgent" {
		return nil, errs.OnField(errs.Invalid, "level", "portal.error.level")
	}
	if strings.TrimSpace(c["title"]) == "" {
		return nil, errs.OnField(errs.Invalid, "title", "kernel.error.required")
	}
	return portlet.Config{"level": lvl, "title": strings.TrimSpace(c["title"]), "text": strings.TrimSpace(c["text"])}, nil
}
func (alertPortlet) Render(_ context.Context, rc *portlet.Context, c portlet.Config) (template.HTML, error) {
	return exec("alert", map[string]any{"Level": c["level"], "Title": c["title"], "Text": c["text"], "Label": rc.T("portal.alert." + c["level"])})
}

type cataloguePortlet struct{ m *Module }

func (cataloguePortlet) Key() string   { return "catalogue" }
func (cataloguePortlet) Title() string { return "portal.portlet.catalogue" }
func (cataloguePortlet) Fields() []portlet.Field {
	return []portlet.Field{{Name: "title", Label: "portal.field.heading", Kind: portlet.KindText}}
}
func (cataloguePortlet) Clean(_ context.Context, c portlet.Config) (portlet.Config, error) {
	return portlet.Config{"title": strings.TrimSpace(c["title"])}, nil
}
func (p cataloguePortlet) Render(ctx context.Context, rc *portlet.Context, c portlet.Config) (template.HTML, error) {
	type item struct{ Title, Summary, URL string }
	var items []item
	for _, e := range p.m.catalogueEntries(ctx, rc.OrgID) {
		items = append(items, item{Title: rc.T(e.Title), Summary: rc.T(e.Summary), URL: e.Path})
	}
	if len(p.m.catalogueSources) > 0 {
		// Sources change without telling the portal (a form published in its module).
		rc.ExpireWithin(time.Minute)
	}
	title := c["title"]
	if title == "" {
		title = rc.T("portal.catalogue.title")
	}
	return exec("catalogue", map[string]any{"Title": title, "Entries": items})
}

var monthsFR = [...]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"}

func formatDate(lang string, t time.Time) string {
	if lang == "en" {
		return t.Format("2 January 2006")
	}
	d := strconv.Itoa(t.Day())
	if t.Day() == 1 {
		d = "1er"
	}
	return d + " " + monthsFR[t.Month()-1] + " " + strconv.Itoa(t.Year())
}
