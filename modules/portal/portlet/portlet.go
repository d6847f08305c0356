// Package portlet defines the portal's extension point for portlet types: the blocks an
// editor places in a page's zones. A module contributes a type with
//
//	kernel.Extension{Point: kernel.PointPortlet, Value: myType}
//
// where myType implements Type. The portal collects every contribution at start-up, offers
// the types in its page editor (one generic form built from Fields) and renders them.
package portlet

import (
	"context"
	"html/template"
	"time"
)

// Type is one kind of portlet.
type Type interface {
	// Key is stable and unique, "richtext"; contributed types should prefix it with their
	// module ID ("forms.list").
	Key() string
	// Title is the locale key of the type's name in the editor.
	Title() string
	// Fields lists the settings the editor asks for.
	Fields() []Field
	// Clean checks and normalises the settings an editor posted. A problem is returned as an
	// *errs.Error tied to the field (errs.OnField), which the editor shows in its summary.
	Clean(ctx context.Context, cfg Config) (Config, error)
	// Render returns the portlet's HTML. It must escape what it shows (html/template does).
	Render(ctx context.Context, rc *Context, cfg Config) (template.HTML, error)
}

// Config is a portlet's settings, as posted by the editor (one value per field name).
type Config map[string]string

// Field is one setting of a portlet type.
type Field struct {
	Name  string
	Label string // locale key
	Hint  string // locale key, optional
	Kind  Kind
	// Options for KindSelect: value → locale key of the label.
	Options []Option
}

// Option is one choice of a select field.
type Option struct{ Value, Label string }

// Kind is how a field is edited.
type Kind string

const (
	KindText     Kind = "text"
	KindTextarea Kind = "textarea"
	KindCheckbox Kind = "checkbox"
	KindSelect   Kind = "select"
	KindURL      Kind = "url"
)

// Context is what a portlet sees of the page being rendered.
type Context struct {
	SiteID int64
	OrgID  int64
	// Base is the site's path prefix ("" or "/mairie-11"), to build links.
	Base string
	Lang string
	Now  time.Time
	// T translates a locale key in the page's language.
	T func(key string, args ...any) string
	// Preview is true when an editor previews a draft.
	Preview bool

	maxAge time.Duration
}

// ExpireWithin asks that a cached rendering of the page be dropped after d at the latest:
// for portlets showing data the portal is not told about when it changes.
func (c *Context) ExpireWithin(d time.Duration) {
	if d > 0 && (c.maxAge == 0 || d < c.maxAge) {
		c.maxAge = d
	}
}

// MaxAge returns the shortest lifetime asked by ExpireWithin, 0 for none.
func (c *Context) MaxAge() time.Duration { return c.maxAge }
