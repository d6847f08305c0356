package suites

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Section is one part of a suite file ("units", "roles", "sites"…). Modules contribute
// sections as kernel.PointSuiteSection extension values; for modules that must not import
// this package, the suites module carries adapters calling their published Go APIs.
//
// Items are referred to by stable keys, never by database ids: Write and Read translate
// with the Resolver. Read must be a fixed point of Write (writing what Read returned and
// reading again gives the same thing): that is what makes export → apply → export identical
// and what lets a content hash tell whether the town changed an item by hand.
type Section interface {
	// Key names the section in suite files.
	Key() string
	// Module is the module that must be compiled in for the section to be used.
	Module() string
	// Order sorts sections when applying (units before roles before workflows…).
	Order() int
	// Needs lists the sections this one refers to (added to exports of this one).
	Needs() []string
	// Schema is the JSON Schema (2020-12) of one item; it has a required string "key".
	Schema() map[string]any
	// Refs lists the references an item makes to other items, by key.
	Refs(it Item) []Ref
	// Check returns problems the schema cannot see (a permission that does not exist, a
	// schedule that overlaps…), with paths under the items' own.
	Check(items []Item, all map[string][]Item) []Problem
	// Ident is the natural identity of a new item (a site's prefix, a role's name), "" when
	// it cannot collide; an existing resource of the same identity that no suite created is
	// reported as a conflict rather than overwritten.
	Ident(ctx context.Context, org int64, it Item, r Resolver) string
	// List lists the organisation's resources of the section.
	List(ctx context.Context, org int64) ([]Resource, error)
	// Read returns a resource in suite form, without "key" (an errs.NotFound error when it
	// no longer exists).
	Read(ctx context.Context, org int64, id string, r Resolver) (map[string]any, error)
	// Write creates (id "") or updates a resource and returns its id.
	Write(ctx context.Context, org int64, id string, it Item, r Resolver) (string, error)
}

// Item is one entry of a section.
type Item struct {
	Section string
	Key     string
	// Data holds the fields other than "key", normalised as JSON would decode them
	// (numbers are float64, objects map[string]any).
	Data map[string]any
	// Path is where the item is in the file, as a YAML path: "$.units[2]".
	Path string
}

// Decode fills v (a struct with json tags) from the item's fields.
func (it Item) Decode(v any) error {
	b, err := json.Marshal(it.Data)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", it.Path, err)
	}
	return nil
}

// Ref is a reference from an item to another by key. Path is relative to the item.
type Ref struct {
	Section, Key, Path string
}

// Resource is an existing resource of a section.
type Resource struct {
	ID string
	// Key is a key derived from the content, used by export when no suite created it.
	Key string
	// Ident is the natural identity (see Section.Ident).
	Ident string
}

// Resolver translates keys and ids while applying and exporting.
type Resolver interface {
	// ID returns the id of the item with this key, when it exists.
	ID(section, key string) (string, bool)
	// Key returns the key of a resource, "" when unknown.
	Key(section, id string) string
}

// Problem is one thing wrong with a suite file. Key is a locale key with Args.
type Problem struct {
	File      string
	Line, Col int
	Path      string
	Key       string
	Args      []any
}

// Normalize returns v as JSON would decode it, so hashes and comparisons do not depend on
// Go types (int vs float64, structs vs maps).
func Normalize(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("suites: normalising %T: %v", v, err))
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	if out == nil {
		out = map[string]any{}
	}
	return out
}

// hashOf is the content hash of an item in suite form (encoding/json sorts map keys).
func hashOf(v map[string]any) string {
	b, _ := json.Marshal(v)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
