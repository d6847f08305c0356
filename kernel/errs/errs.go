// Package errs holds the error codes of Parvis domain code. Domain code returns these
// (wrapped with %w and a short prefix); the HTTP edge maps them to a status and a translated
// message in one place (web.Fail), so no domain package returns HTTP errors or text for users.
package errs

import (
	"errors"
	"fmt"
)

// Code is a kind of failure.
type Code string

const (
	NotFound  Code = "not_found"
	Invalid   Code = "invalid"
	Conflict  Code = "conflict"
	Forbidden Code = "forbidden"
	// Unauthenticated: nobody is signed in, or the credentials are wrong.
	Unauthenticated Code = "unauthenticated"
	// TooMany: a rate limit or throttle refused the attempt.
	TooMany Code = "too_many"
	// Unavailable: a dependency (an outside API) is down; try later.
	Unavailable Code = "unavailable"
)

// Error is a domain error with a code and a locale key for the message shown to people.
type Error struct {
	Code  Code
	Key   string // locale key, e.g. "auth.error.bad_credentials"
	Args  []any  // placeholder name/value pairs for Key
	Field string // the input at fault, if any
	Err   error  // cause, for logs
}

func (e *Error) Error() string {
	s := string(e.Code) + ": " + e.Key
	if e.Field != "" {
		s += " (" + e.Field + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error.
func New(code Code, key string, args ...any) *Error { return &Error{Code: code, Key: key, Args: args} }

// OnField returns an *Error tied to an input field.
func OnField(code Code, field, key string, args ...any) *Error {
	return &Error{Code: code, Key: key, Args: args, Field: field}
}

// CodeOf returns the code of err, or "" for an unexpected error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Wrap prefixes err, keeping its code.
func Wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
