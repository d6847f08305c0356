package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"parvis.org/parvis/kernel/errs"
)

// Form carries what the user posted and the errors found in it, so a page can be shown
// again with an error summary at the top and every other answer kept.
type Form struct {
	Values url.Values
	Errors []FieldError
}

// FieldError is one problem with one field. Message is a locale key, Args its placeholders.
type FieldError struct {
	Field   string
	Message string
	Args    []any
}

// NewForm returns a form over values (nil allowed).
func NewForm(values url.Values) *Form {
	if values == nil {
		values = url.Values{}
	}
	return &Form{Values: values}
}

// Get returns the trimmed value of a field.
func (f *Form) Get(name string) string { return strings.TrimSpace(f.Values.Get(name)) }

// Fail records an error on field.
func (f *Form) Fail(field, msgKey string, args ...any) {
	f.Errors = append(f.Errors, FieldError{Field: field, Message: msgKey, Args: args})
}

// Require records "kernel.error.required" on each named field that is empty.
func (f *Form) Require(fields ...string) {
	for _, n := range fields {
		if f.Get(n) == "" {
			f.Fail(n, "kernel.error.required")
		}
	}
}

// MaxLen records an error when a field is longer than n characters.
func (f *Form) MaxLen(field string, n int) {
	if len([]rune(f.Get(field))) > n {
		f.Fail(field, "kernel.error.too_long", "max", n)
	}
}

// Valid reports whether no error was recorded.
func (f *Form) Valid() bool { return len(f.Errors) == 0 }

// ErrorFor returns the first error key recorded on field.
func (f *Form) ErrorFor(field string) string {
	for _, e := range f.Errors {
		if e.Field == field {
			return e.Message
		}
	}
	return ""
}

func (f *Form) argsFor(field string) []any {
	for _, e := range f.Errors {
		if e.Field == field {
			return e.Args
		}
	}
	return nil
}

// ErrBodyTooLarge is returned by ParseForm and DecodeJSON past the body limit.
var ErrBodyTooLarge = errors.New("request body too large")

// ParseForm parses a url-encoded or multipart body. It returns ErrBodyTooLarge when the
// body limit set by the LimitBody middleware was hit, so the caller can answer 413.
func ParseForm(r *http.Request) (*Form, error) {
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		err = r.ParseMultipartForm(8 << 20)
	} else {
		err = r.ParseForm()
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, ErrBodyTooLarge
		}
		return nil, fmt.Errorf("malformed form: %w", err)
	}
	return NewForm(r.PostForm), nil
}

// APIError is the JSON body of every API error.
type APIError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// WriteJSONError writes an APIError.
func WriteJSONError(w http.ResponseWriter, status int, code, message, field string) {
	WriteJSON(w, status, APIError{Code: code, Message: message, Field: field})
}

// DecodeJSON decodes the body into v, refusing unknown fields and trailing data. On error it
// writes a 400 (or 413) JSON body naming the offending field and returns false.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON document")
	}
	if err == nil {
		if _, e := dec.Token(); e != io.EOF {
			err = errors.New("trailing data after the JSON document")
		}
	}
	if err == nil {
		return true
	}
	var (
		mbe  *http.MaxBytesError
		ute  *json.UnmarshalTypeError
		se   *json.SyntaxError
		code = "invalid_json"
		fld  string
		msg  = err.Error()
	)
	switch {
	case errors.As(err, &mbe):
		WriteJSONError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the request body is larger than %d bytes", mbe.Limit), "")
		return false
	case errors.As(err, &ute):
		code, fld = "invalid_type", ute.Field
		msg = fmt.Sprintf("field %q must be a %s, not a JSON %s", ute.Field, ute.Type.Kind(), ute.Value)
	case errors.As(err, &se):
		msg = fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		code = "unknown_field"
		fld = strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		msg = fmt.Sprintf("unknown field %q", fld)
	case errors.Is(err, io.EOF):
		msg = "the request body is empty; a JSON document is expected"
	}
	WriteJSONError(w, http.StatusBadRequest, code, msg, fld)
	return false
}

// StatusOf maps a domain error to an HTTP status: 404, 400, 409, 403, 401, 429, 503, else 500.
func StatusOf(err error) int {
	switch errs.CodeOf(err) {
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Invalid:
		return http.StatusBadRequest
	case errs.Conflict:
		return http.StatusConflict
	case errs.Forbidden:
		return http.StatusForbidden
	case errs.Unauthenticated:
		return http.StatusUnauthorized
	case errs.TooMany:
		return http.StatusTooManyRequests
	case errs.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
