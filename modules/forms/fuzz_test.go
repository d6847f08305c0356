package forms

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"parvis.org/parvis/modules/workflow"
)

// FuzzSubmission: no body makes the decoder or the checker panic, and whatever passes the
// checker holds only questions of the form.
func FuzzSubmission(f *testing.F) {
	f.Add([]byte(`{"answers":{"nom":"Léa","email":"lea@example.org","pro":"no","adresse":{"street":"1","postcode":"75011","town":"Paris"},"objets":[{"quoi":"a"}]}}`))
	f.Add([]byte(`{"answers":{"pro":"yes","siret":73282932000074,"effectif":1e308}}`))
	f.Add([]byte(`{"answers":{"objets":{"quoi":1},"adresse":[1,2]}}`))
	f.Add([]byte(`{"answers":null}`))
	d := mustDef(f, threeSteps)
	today := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeSubmission(bytes.NewReader(body))
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("not a validation error: %v", err)
			}
			return
		}
		for _, strict := range []bool{true, false} {
			got, _ := d.CheckAll(req.Answers, today, strict)
			for k := range got {
				if _, ok := d.Question(k); !ok && !d.isRepeat(k) {
					t.Fatalf("unknown key %q kept", k)
				}
			}
		}
	})
}

// FuzzImport: no document makes parsing or validation panic; problems are ValidationErrors.
func FuzzImport(f *testing.F) {
	for _, name := range []string{"bulky", "terrace"} {
		b, _ := Example(name, 0)
		f.Add(b)
	}
	f.Add([]byte(`{"form":{"key":"k","title":"T","steps":[{"key":"a","title":"A","next":[{"if":{"all":[{"field":"q","op":"in"}]},"goto":"end"}],"sections":[{"key":"s","repeat":{"max":0},"questions":[{"key":"q","type":"table","label":"Q"}]}]}]}}`))
	f.Add([]byte("form: [\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		b, err := ParseBundle(doc, "")
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("not a validation error: %v", err)
			}
			return
		}
		if err := b.Form.Validate(); err == nil {
			b.Form.Path(Answers{})
			b.Form.CheckAll(map[string]any{}, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), true)
			if _, err := b.Form.Marshal("yaml"); err != nil {
				t.Fatalf("a valid form does not marshal: %v", err)
			}
		}
		if len(b.Workflow) > 0 {
			// The workflow part is read as ImportForm reads it (its validation needs the
			// binary's task types: FuzzParseDefinition in the workflow module covers it).
			if _, err := workflow.ParseDefinition(b.Workflow, "json"); err != nil {
				var wve *workflow.ValidationError
				if !errors.As(err, &wve) {
					t.Fatalf("workflow part: not a validation error: %v", err)
				}
			}
		}
	})
}
