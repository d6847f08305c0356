package workflow

import (
	"reflect"
	"testing"
)

// FuzzParseDefinition: no document makes the definition parser panic, and whatever it
// accepts survives a round trip through both formats unchanged.
func FuzzParseDefinition(f *testing.F) {
	f.Add([]byte(terrace), "yaml")
	f.Add([]byte(`{"key":"k","title":"T","states":[{"key":"a","title":"A","initial":true}]}`), "json")
	f.Add([]byte("key: [\n"), "yaml")
	f.Add([]byte(`{"key":"k","states":[{"key":"a","initial":true},{"key":"a","initial":true}]}`), "")
	f.Add([]byte("states:\n  - {key: a, initial: true}\nactions:\n  - {key: go, from: [a], to: nowhere}\n"), "yaml")
	f.Fuzz(func(t *testing.T, data []byte, format string) {
		d, err := ParseDefinition(data, format)
		if err != nil {
			return
		}
		for _, out := range []string{"json", "yaml"} {
			b, err := d.Marshal(out)
			if err != nil {
				t.Fatalf("accepted definition does not marshal as %s: %v", out, err)
			}
			d2, err := ParseDefinition(b, out)
			if err != nil {
				t.Fatalf("%s round trip refused: %v\n%s", out, err, b)
			}
			if !reflect.DeepEqual(d, d2) {
				t.Fatalf("%s round trip changed the definition:\n%+v\n%+v", out, d, d2)
			}
		}
	})
}
