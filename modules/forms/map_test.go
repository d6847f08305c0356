package forms

import (
	"strings"
	"testing"
)

// TestMapSettings: a map question's tile server must be https (or a path of the site) with
// {z}/{x}/{y}, credited when it is another site's; the settings only go on map questions; the
// defaults are OpenStreetMap's.
func TestMapSettings(t *testing.T) {
	doc := func(q string) string {
		return "key: m\ntitle: Carte\nsteps:\n  - key: s\n    title: S\n    sections:\n      - key: s1\n        questions:\n          - " + q + "\n"
	}
	ok := []string{
		`{key: p, type: map, label: Lieu}`,
		`{key: p, type: map, label: Lieu, map: {lat: 45.76, lng: 4.84, zoom: 14}}`,
		`{key: p, type: map, label: Lieu, map: {tiles: "https://tuiles.ville.test/{z}/{x}/{y}.png", attribution: "© IGN", attribution_url: "https://www.ign.fr"}}`,
		`{key: p, type: map, label: Lieu, map: {tiles: "/tuiles/{z}/{x}/{y}.png"}}`,
	}
	for _, q := range ok {
		d, err := ParseDefinition([]byte(doc(q)), "yaml")
		if err == nil {
			err = d.Validate()
		}
		if err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	bad := map[string]string{
		`{key: p, type: map, label: Lieu, map: {tiles: "http://tuiles.test/{z}/{x}/{y}.png", attribution: x}}`:           "map.tiles",
		`{key: p, type: map, label: Lieu, map: {tiles: "javascript:alert(1)//{z}{x}{y}", attribution: x}}`:               "map.tiles",
		`{key: p, type: map, label: Lieu, map: {tiles: "//evil.test/{z}/{x}/{y}.png", attribution: x}}`:                  "map.tiles",
		`{key: p, type: map, label: Lieu, map: {tiles: "https://t.test/{z}/{x}.png", attribution: x}}`:                   "map.tiles",
		`{key: p, type: map, label: Lieu, map: {tiles: "https://t.test/{z}/{x}/{y}.png\" onerror=\"x", attribution: x}}`: "map.tiles",
		`{key: p, type: map, label: Lieu, map: {tiles: "https://t.test/{z}/{x}/{y}.png"}}`:                               "map.attribution",
		`{key: p, type: map, label: Lieu, map: {attribution_url: "javascript:alert(1)"}}`:                                "map.attribution_url",
		`{key: p, type: map, label: Lieu, map: {lat: 91}}`:                                                               "map.lat",
		`{key: p, type: map, label: Lieu, map: {zoom: 25}}`:                                                              "map.zoom",
		`{key: p, type: text, label: Lieu, map: {zoom: 5}}`:                                                              ".map",
	}
	for q, path := range bad {
		d, err := ParseDefinition([]byte(doc(q)), "yaml")
		if err != nil {
			t.Errorf("%s: parse: %v", q, err)
			continue
		}
		err = d.Validate()
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v, want a problem at %s", q, err, path)
		}
	}
	q := Question{Type: TMap}
	if v := q.MapView(); v.Tiles != DefaultTiles || v.Attribution == "" || v.Zoom != 5 {
		t.Errorf("defaults: %+v", v)
	}
	q.Map = &MapSettings{Lat: 45.76, Lng: 4.84}
	if v := q.MapView(); v.Zoom != 13 || v.Lat != 45.76 || v.Tiles != DefaultTiles {
		t.Errorf("a centre without zoom: %+v", v)
	}
}
