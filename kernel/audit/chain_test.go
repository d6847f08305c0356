package audit

import (
	"testing"
	"time"
)

func ptr(s string) *string { return &s }

func TestCanonicalJSON(t *testing.T) {
	type item struct {
		Z int    `json:"z"`
		A string `json:"a"`
	}
	var nilMap map[string]any
	var nilPtr *item
	cases := []struct {
		name string
		in   any
		want *string
	}{
		{"nil is absent", nil, nil},
		{"typed nil pointer is absent", nilPtr, nil},
		{"nil map is absent", nilMap, nil},
		{"struct keys sorted", item{Z: 1, A: "x"}, ptr(`{"a":"x","z":1}`)},
		{"nested map keys sorted", map[string]any{"b": map[string]any{"y": 1, "x": 2}, "a": []int{3, 1}}, ptr(`{"a":[3,1],"b":{"x":2,"y":1}}`)},
		{"big numbers kept exact", map[string]any{"n": uint64(1<<63 + 5)}, ptr(`{"n":9223372036854775813}`)},
		{"string", "é<tag>", ptr(`"é\u003ctag\u003e"`)},
		{"empty object", map[string]any{}, ptr(`{}`)},
		{"false", false, ptr(`false`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := CanonicalJSON(c.in)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case c.want == nil && got != nil:
				t.Fatalf("got %s, want absent", *got)
			case c.want != nil && got == nil:
				t.Fatalf("got absent, want %s", *c.want)
			case c.want != nil && *got != *c.want:
				t.Fatalf("got %s, want %s", *got, *c.want)
			}
		})
	}
	if _, err := CanonicalJSON(func() {}); err == nil {
		t.Fatal("a function must not encode")
	}
}

func TestComputeHashCoversEveryFieldUnambiguously(t *testing.T) {
	base := func() *Entry {
		return &Entry{Seq: 7, At: time.Date(2026, 3, 14, 9, 30, 0, 123456000, time.UTC), OrgID: 2, ActorID: 5,
			Actor: "ab", ClientIP: "c", RequestID: "r", Action: "forms.update", ResourceType: "form", ResourceID: "12",
			Before: ptr(`{"a":1}`), After: ptr(`{"a":2}`), PrevHash: Genesis}
	}
	ref := ComputeHash(base())
	if ComputeHash(base()) != ref {
		t.Fatal("hash is not deterministic")
	}
	if len(ref) != 64 {
		t.Fatalf("hash %q is not hex SHA-256", ref)
	}
	cases := []struct {
		name   string
		change func(e *Entry)
	}{
		{"seq", func(e *Entry) { e.Seq = 8 }},
		{"time by one microsecond", func(e *Entry) { e.At = e.At.Add(time.Microsecond) }},
		{"org", func(e *Entry) { e.OrgID = 3 }},
		{"actor id", func(e *Entry) { e.ActorID = 6 }},
		{"actor", func(e *Entry) { e.Actor = "ab " }},
		{"client ip", func(e *Entry) { e.ClientIP = "d" }},
		{"request id", func(e *Entry) { e.RequestID = "" }},
		{"action", func(e *Entry) { e.Action = "forms.delete" }},
		{"resource type", func(e *Entry) { e.ResourceType = "forms" }},
		{"resource id", func(e *Entry) { e.ResourceID = "13" }},
		{"before", func(e *Entry) { e.Before = ptr(`{"a":3}`) }},
		{"after", func(e *Entry) { e.After = ptr(`{"a":3}`) }},
		{"prev hash", func(e *Entry) { e.PrevHash = "1" + Genesis[1:] }},
		// Boundaries between fields: moving a character from one to the next.
		{"actor/client boundary", func(e *Entry) { e.Actor, e.ClientIP = "a", "bc" }},
		{"type/id boundary", func(e *Entry) { e.ResourceType, e.ResourceID = "form1", "2" }},
		// Absent, empty and null differ.
		{"before absent", func(e *Entry) { e.Before = nil }},
		{"before empty", func(e *Entry) { e.Before = ptr("") }},
		{"before null", func(e *Entry) { e.Before = ptr("null") }},
		{"before moved to after", func(e *Entry) { e.Before, e.After = nil, ptr(`{"a":1}{"a":2}`) }},
	}
	seen := map[string]string{ref: "reference"}
	for _, c := range cases {
		e := base()
		c.change(e)
		h := ComputeHash(e)
		if prev, dup := seen[h]; dup {
			t.Errorf("%s: same hash as %s", c.name, prev)
		}
		seen[h] = c.name
	}
	e := base()
	e.Hash = "anything"
	if ComputeHash(e) != ref {
		t.Error("the stored hash must not be part of its own computation")
	}
}
