// Package forms is Parvis's no-code form builder: administrators compose forms of steps,
// sections (repeatable or not) and questions of about twenty types, with validation rules and
// conditions over earlier answers; citizens fill them one step per page (no JavaScript needed),
// save and resume, review and submit; every submission is attached to a workflow
// (modules/workflow) in the transaction that stores it, and agents find it in the back office.
//
// A form is a versioned Definition document (JSON or YAML). Publishing freezes a version;
// editing a published form makes a new draft version; each response keeps its version.
// The server evaluates conditions and is the authority: answers to hidden questions are
// neither validated nor stored, and a submission naming unknown or hidden questions, or
// skipping steps, is refused. The browser runs the same rules (static/forms.js) only to show
// and hide questions as the citizen answers.
//
// Other modules reach forms through the workflow engine (resource type "forms.response"), the
// service catalogue (published forms are kernel.CatalogueEntry values) and the OpenAPI
// document, to which they add their own paths through PointOpenAPI.
package forms

import (
	"time"
)

// ID is the module ID and the prefix of its locale keys.
const ID = "forms"

// ResourceType is the workflow resource type of responses.
const ResourceType = "forms.response"

// PointOpenAPI is the extension point where modules contribute OpenAPI values: paths and
// schemas merged into the document served at /api/openapi.json.
const PointOpenAPI = "api.openapi"

// OpenAPI is one module's share of the API document.
type OpenAPI struct {
	Paths   map[string]any // "/api/forms" → path item
	Schemas map[string]any // components.schemas
}

// Permissions of the module.
const (
	// PermManage: build, publish, import and export forms.
	PermManage = "forms.manage"
	// PermResponses: read responses (scoped by unit), export them, write to citizens.
	PermResponses = "forms.responses"
	// PermSubmit: submit responses through the API, for an application acting for citizens
	// (citizens in a browser use the pages, which need no permission).
	PermSubmit = "forms.submit"
)

// Question types.
const (
	TText     = "text"
	TTextarea = "textarea"
	TNumber   = "number"
	TEmail    = "email"
	TPhone    = "phone"
	TDate     = "date"
	TTime     = "time"
	TDateTime = "datetime"
	TChoice   = "choice"
	TMulti    = "multi"
	TYesNo    = "yesno"
	TFile     = "file"
	TPhoto    = "photo"
	TAddress  = "address"
	TMap      = "map"
	TSIRET    = "siret"
	TIBAN     = "iban"
	TTable    = "table"
	TInfo     = "info"
	TTerms    = "terms"
)

// Types lists every question type, in the builder's order.
var Types = []string{TText, TTextarea, TNumber, TEmail, TPhone, TDate, TTime, TDateTime, TChoice, TMulti,
	TYesNo, TFile, TPhoto, TAddress, TMap, TSIRET, TIBAN, TTable, TInfo, TTerms}

// Definition is one version of a form, as stored, exported and imported.
type Definition struct {
	Key         string   `json:"key" yaml:"key"`
	Title       string   `json:"title" yaml:"title"`
	Description string   `json:"description,omitempty" yaml:"description,omitempty"`
	Version     int      `json:"version,omitempty" yaml:"version,omitempty"`
	Workflow    string   `json:"workflow,omitempty" yaml:"workflow,omitempty"` // workflow key; "" for the simple one
	Settings    Settings `json:"settings" yaml:"settings"`
	Steps       []Step   `json:"steps" yaml:"steps"`
}

// Settings rule who may fill the form and when, and what happens to responses.
type Settings struct {
	OpensAt       *time.Time `json:"opens_at,omitempty" yaml:"opens_at,omitempty"`
	ClosesAt      *time.Time `json:"closes_at,omitempty" yaml:"closes_at,omitempty"`
	MaxResponses  int        `json:"max_responses,omitempty" yaml:"max_responses,omitempty"`
	OnePerCitizen bool       `json:"one_per_citizen,omitempty" yaml:"one_per_citizen,omitempty"`
	// Captcha asks guests (nobody signed in) to pass a captcha without images before sending:
	// a honeypot field, a minimum time, a small sum in words (captcha.go).
	Captcha bool `json:"captcha,omitempty" yaml:"captcha,omitempty"`
	// DraftDays: unsent drafts are purged this many days after their last change (default 30).
	DraftDays int `json:"draft_days,omitempty" yaml:"draft_days,omitempty"`
	// RetentionMonths after closing, responses are purged or anonymised (RetentionMode
	// "purge" or "anonymise") with what the workflow holds of them; 0 keeps them. Closing is
	// the form's (all its responses go) or, while the form stays open, each request's own:
	// the day its workflow reached a final state.
	RetentionMonths int    `json:"retention_months,omitempty" yaml:"retention_months,omitempty"`
	RetentionMode   string `json:"retention_mode,omitempty" yaml:"retention_mode,omitempty"`
	// EmailQuestion names the email question that receives the receipt (signed-in citizens
	// get it at their account's address otherwise).
	EmailQuestion string `json:"email_question,omitempty" yaml:"email_question,omitempty"`
	// TitleQuestion names the question whose answer titles the request in the inbox.
	TitleQuestion string `json:"title_question,omitempty" yaml:"title_question,omitempty"`
	// Columns are the question keys shown in the back-office list.
	Columns []string `json:"columns,omitempty" yaml:"columns,omitempty"`
	// Summary is the catalogue blurb.
	Summary string `json:"summary,omitempty" yaml:"summary,omitempty"`
}

// Step is one page of the form.
type Step struct {
	Key      string     `json:"key" yaml:"key"`
	Title    string     `json:"title" yaml:"title"`
	If       *Condition `json:"if,omitempty" yaml:"if,omitempty"`
	Sections []Section  `json:"sections" yaml:"sections"`
	// Next branches: the first whose condition holds names the next step; else the next in order.
	Next []Branch `json:"next,omitempty" yaml:"next,omitempty"`
}

// Branch sends the citizen to step Goto when If holds ("end" goes to the review page).
type Branch struct {
	If   *Condition `json:"if" yaml:"if"`
	Goto string     `json:"goto" yaml:"goto"`
}

// Section groups questions; a repeatable section is filled several times (Min to Max).
type Section struct {
	Key       string     `json:"key" yaml:"key"`
	Title     string     `json:"title,omitempty" yaml:"title,omitempty"`
	If        *Condition `json:"if,omitempty" yaml:"if,omitempty"`
	Repeat    *Repeat    `json:"repeat,omitempty" yaml:"repeat,omitempty"`
	Questions []Question `json:"questions" yaml:"questions"`
}

// Repeat bounds the number of items of a repeatable section.
type Repeat struct {
	Min int `json:"min,omitempty" yaml:"min,omitempty"`
	Max int `json:"max" yaml:"max"`
}

// Question is one field. Which settings apply depends on Type.
type Question struct {
	Key      string     `json:"key" yaml:"key"`
	Type     string     `json:"type" yaml:"type"`
	Label    string     `json:"label" yaml:"label"`
	Hint     string     `json:"hint,omitempty" yaml:"hint,omitempty"`
	Required bool       `json:"required,omitempty" yaml:"required,omitempty"`
	If       *Condition `json:"if,omitempty" yaml:"if,omitempty"`

	// Text: length and pattern (with its own message).
	MinLength      int    `json:"min_length,omitempty" yaml:"min_length,omitempty"`
	MaxLength      int    `json:"max_length,omitempty" yaml:"max_length,omitempty"`
	Pattern        string `json:"pattern,omitempty" yaml:"pattern,omitempty"`
	PatternMessage string `json:"pattern_message,omitempty" yaml:"pattern_message,omitempty"`
	// Number: range and step.
	Min  *float64 `json:"min,omitempty" yaml:"min,omitempty"`
	Max  *float64 `json:"max,omitempty" yaml:"max,omitempty"`
	Step float64  `json:"step,omitempty" yaml:"step,omitempty"`
	// Dates: inclusive bounds relative to today, "-18y", "+1d", "0d" (today), "+3m".
	MinDate string `json:"min_date,omitempty" yaml:"min_date,omitempty"`
	MaxDate string `json:"max_date,omitempty" yaml:"max_date,omitempty"`
	// Phone: "fr" (French numbers only) or "intl" (E.164, French numbers too).
	Phone string `json:"phone,omitempty" yaml:"phone,omitempty"`
	// Choices: options, display ("radio" or "select"), selection bounds for multi.
	Options   []Option `json:"options,omitempty" yaml:"options,omitempty"`
	Display   string   `json:"display,omitempty" yaml:"display,omitempty"`
	MinSelect int      `json:"min_select,omitempty" yaml:"min_select,omitempty"`
	MaxSelect int      `json:"max_select,omitempty" yaml:"max_select,omitempty"`
	// Files: accepted MIME types (detected from the content), size per file, file count.
	Accept   []string `json:"accept,omitempty" yaml:"accept,omitempty"`
	MaxSize  int64    `json:"max_size,omitempty" yaml:"max_size,omitempty"` // bytes
	MaxFiles int      `json:"max_files,omitempty" yaml:"max_files,omitempty"`
	// Table: columns and maximum rows.
	Columns []Option `json:"columns,omitempty" yaml:"columns,omitempty"`
	MaxRows int      `json:"max_rows,omitempty" yaml:"max_rows,omitempty"`
	// Info and terms: the text shown.
	Text string `json:"text,omitempty" yaml:"text,omitempty"`
	// Map: the tile server and the view shown before a point is chosen.
	Map *MapSettings `json:"map,omitempty" yaml:"map,omitempty"`
}

// MapSettings configures a map question's map. Every field is optional: the defaults are
// OpenStreetMap's tiles (with their attribution) over metropolitan France.
type MapSettings struct {
	// Tiles is the URL template of the tile images, "https://…/{z}/{x}/{y}.png" (or a path
	// on the site itself, "/tuiles/{z}/{x}/{y}.png"); the pages' Content-Security-Policy
	// lets images come from any https host.
	Tiles string `json:"tiles,omitempty" yaml:"tiles,omitempty"`
	// Attribution is the text crediting the tiles (shown on the map), AttributionURL the
	// page it links to.
	Attribution    string `json:"attribution,omitempty" yaml:"attribution,omitempty"`
	AttributionURL string `json:"attribution_url,omitempty" yaml:"attribution_url,omitempty"`
	// Lat, Lng and Zoom (0 to 19) are the first view.
	Lat  float64 `json:"lat,omitempty" yaml:"lat,omitempty"`
	Lng  float64 `json:"lng,omitempty" yaml:"lng,omitempty"`
	Zoom int     `json:"zoom,omitempty" yaml:"zoom,omitempty"`
}

// OpenStreetMap's tile server, its attribution, and a view of metropolitan France: the
// defaults of a map question.
const (
	DefaultTiles          = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
	DefaultAttribution    = "© les contributeurs d’OpenStreetMap"
	DefaultAttributionURL = "https://www.openstreetmap.org/copyright"
)

// MaxMB is the file size limit in megabytes, for the builder.
func (q *Question) MaxMB() int64 { return q.MaxSize >> 20 }

// MapView is the question's map settings with the defaults filled in.
func (q *Question) MapView() MapSettings {
	var s MapSettings
	if q.Map != nil {
		s = *q.Map
	}
	if s.Tiles == "" {
		s.Tiles, s.Attribution, s.AttributionURL = DefaultTiles, DefaultAttribution, DefaultAttributionURL
	}
	if s.Lat == 0 && s.Lng == 0 {
		s.Lat, s.Lng = 46.6, 2.4
		if s.Zoom == 0 {
			s.Zoom = 5
		}
	}
	if s.Zoom == 0 {
		s.Zoom = 13
	}
	return s
}

// Option is a choice (or a table column: Value is its key).
type Option struct {
	Value string `json:"value" yaml:"value"`
	Label string `json:"label" yaml:"label"`
}

// Condition tests earlier answers: a leaf (Field, Op, Value or Values) or a combination
// (All for AND, Any for OR).
type Condition struct {
	Field  string       `json:"field,omitempty" yaml:"field,omitempty"`
	Op     string       `json:"op,omitempty" yaml:"op,omitempty"` // eq, ne, in, contains, gt, lt, empty, not_empty
	Value  any          `json:"value,omitempty" yaml:"value,omitempty"`
	Values []any        `json:"values,omitempty" yaml:"values,omitempty"`
	All    []*Condition `json:"all,omitempty" yaml:"all,omitempty"`
	Any    []*Condition `json:"any,omitempty" yaml:"any,omitempty"`
}

// FileRef is what an answer to a file question holds, per file.
type FileRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
	Size int64  `json:"size"`
}

// Problem is one validation error, named by its path: a question key ("surface"), an item of
// a repeatable section ("items[1].kind"), a part ("address.postcode") or a definition path
// ("steps[0].sections[1].questions[2].type"). Code is stable for API clients; Key is the
// locale key of the message and Args its placeholders.
type Problem struct {
	Path string `json:"path"`
	Code string `json:"code"`
	Key  string `json:"-"`
	Args []any  `json:"-"`
	// Message is filled in the reader's language at the edge.
	Message string `json:"message"`
}

// Answers are a response's answers by question key: strings, float64, bool, []string,
// map[string]any (address, map point), []FileRef, []map[string]any (repeatable sections and
// table rows).
type Answers map[string]any
