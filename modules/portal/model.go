package portal

import (
	"time"

	"parvis.org/parvis/modules/portal/portlet"
)

// Site is one website of an organisation, served at its own host name or under a path
// prefix of the instance's main host.
type Site struct {
	ID     int64
	OrgID  int64
	UnitID int64 // the unit whose editors manage it (0: organisation-wide editors only)
	Name   string
	Host   string // "mairie11.example.org", "" for the main host
	Prefix string // "/mairie-11", "" for the root
	Lang   string
	Theme  Theme
	// Contact holds the town hall's address, phone, email and opening hours.
	Contact Contact
	// Legal is the publisher part of the legal notice (Markdown).
	Legal      string
	Generation int64
}

// Theme is what makes a site look like its town.
type Theme struct {
	Primary string `json:"primary,omitempty"` // "#1d4ed8", checked for AA contrast on white
	Logo    string `json:"logo,omitempty"`    // URL of an image in the media library
	Footer  string `json:"footer,omitempty"`
	Social  []Link `json:"social,omitempty"`
}

// Contact is shown by the contact card portlet and in the footer.
type Contact struct {
	Address string   `json:"address,omitempty"`
	Phone   string   `json:"phone,omitempty"`
	Email   string   `json:"email,omitempty"`
	Hours   []string `json:"hours,omitempty"` // "Lundi–vendredi : 8 h 30 – 17 h"
}

// Link is a title and a URL.
type Link struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// Visibility of a page.
const (
	Public   = "public"
	Citizens = "citizens" // signed-in citizens only
)

// Page is a node of a site's tree. Its content lives in versions: editing writes a new
// draft version, publishing points the page at it.
type Page struct {
	ID               int64
	SiteID           int64
	ParentID         int64 // 0 for the home page
	Slug             string
	Position         int
	Visibility       string
	InMenu           bool
	DraftVersion     int
	PublishedVersion int
	ScheduledVersion int
	PublishAt        *time.Time
	UnpublishAt      *time.Time
	UpdatedAt        time.Time
}

// Live returns the version visitors see at now (0: none), applying the schedule.
func (p *Page) Live(now time.Time) int {
	if p.UnpublishAt != nil && !now.Before(*p.UnpublishAt) {
		return 0
	}
	if p.ScheduledVersion > 0 && p.PublishAt != nil && !now.Before(*p.PublishAt) {
		return p.ScheduledVersion
	}
	return p.PublishedVersion
}

// Version is one saved state of a page's content.
type Version struct {
	PageID      int64
	Version     int
	Title       string
	SEOTitle    string
	Description string
	SocialImage string
	Layout      string
	Content     []Placement
	CreatedAt   time.Time
	CreatedBy   int64
}

// Placement is a portlet placed in a zone of a page.
type Placement struct {
	Zone   string         `json:"zone"`
	Type   string         `json:"type"`
	Config portlet.Config `json:"config"`
}

// Layout is a page layout and its zones.
type Layout struct {
	Key   string
	Title string // locale key
	Zones []string
}

// Layouts offered to editors.
var layouts = []Layout{
	{Key: "one", Title: "portal.layout.one", Zones: []string{"main"}},
	{Key: "two", Title: "portal.layout.two", Zones: []string{"main", "aside"}},
	{Key: "home", Title: "portal.layout.home", Zones: []string{"hero", "main", "aside"}},
}

func layoutOf(key string) Layout {
	for _, l := range layouts {
		if l.Key == key {
			return l
		}
	}
	return layouts[0]
}

// News is an article. It belongs to one site and may be shared to others (city-wide news
// on every district site): it is edited in one place and shown on all.
type News struct {
	ID          int64
	SiteID      int64
	Slug        string
	Title       string
	Summary     string
	Body        string // Markdown
	ImageID     int64
	Tags        []string
	Published   bool
	PublishedAt time.Time
	UpdatedAt   time.Time
	SharedWith  []int64 // other sites showing it
}

// MenuLink is a manual entry of a site's main or footer menu: a page or an external URL.
type MenuLink struct {
	ID       int64
	SiteID   int64
	Menu     string // "main" or "footer"
	Title    string
	URL      string
	PageID   int64
	Position int
}

// Media is a file of a site's library: an image (stored in several widths) or a document.
type Media struct {
	ID        int64
	SiteID    int64
	Kind      string // "image" or "document"
	Name      string // stored file name
	Title     string
	MIME      string
	Size      int64
	Width     int
	Height    int
	Variants  []int // widths stored for srcset
	CreatedAt time.Time
}
