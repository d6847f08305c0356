package web

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"
)

func contextWith(r *http.Request, k, v any) context.Context {
	return context.WithValue(r.Context(), k, v)
}

type reqIDKey struct{}

// RequestID gives every request an ID (from X-Request-ID when well-formed, else a
// per-process random prefix and a counter: unique, cheap, and not meant to be secret),
// echoed in the response and carried in the context for logs.
func RequestID(next http.Handler) http.Handler {
	var prefix [16]byte // 8 random bytes naming this process, then the counter
	_, _ = rand.Read(prefix[:8])
	var seq atomic.Uint64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id string
		if v := r.Header["X-Request-Id"]; len(v) > 0 { // Get would canonicalise the key each time
			id = v[0]
		}
		if len(id) < 8 || len(id) > 64 || strings.ContainsFunc(id, func(c rune) bool { return c < '!' || c > '~' }) {
			b := prefix
			binary.BigEndian.PutUint64(b[8:], seq.Add(1))
			var out [32]byte
			hex.Encode(out[:], b[:])
			id = string(out[:])
		}
		ri := &requestInfo{id: id, remoteAddr: r.RemoteAddr}
		// Canonical key set directly (Header.Set would canonicalise it on every request), its
		// value held in ri (one allocation for both; capacity 1, so an Add copies).
		ri.idHdr[0] = id
		w.Header()["X-Request-Id"] = ri.idHdr[:]
		if v := r.Header["X-Forwarded-For"]; len(v) > 0 {
			ri.forwardedFor = v[len(v)-1]
		}
		next.ServeHTTP(w, r.WithContext(contextWith(r, reqIDKey{}, ri)))
	})
}

// requestInfo is what RequestID puts in the context; Observe keeps the route pattern in it
// too, and the client's address is kept for ClientIPFrom: one context value (and one copy
// of the request) serves them all.
type requestInfo struct {
	id           string
	pattern      string
	remoteAddr   string
	forwardedFor string // the last X-Forwarded-For header line
	idHdr        [1]string
	csrf         *csrfSeed // set by CSRF.Protect (pointing at csrfState)
	csrfState    csrfSeed
	sw           StatusWriter // Observe's, allocated with the rest
}

// RequestIDFrom returns the request ID of ctx.
func RequestIDFrom(ctx context.Context) string {
	if ri, _ := ctx.Value(reqIDKey{}).(*requestInfo); ri != nil {
		return ri.id
	}
	return ""
}

// StatusWriter records the status and size written.
type StatusWriter struct {
	http.ResponseWriter
	Status int
	Bytes  int64
}

func (s *StatusWriter) WriteHeader(code int) {
	if s.Status == 0 {
		s.Status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *StatusWriter) Write(b []byte) (int, error) {
	if s.Status == 0 {
		s.Status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.Bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *StatusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

type patternKey struct{}

// RecordPattern wraps the router: once it has matched, the route pattern is passed back to
// Observe (which sees an earlier copy of the request).
func RecordPattern(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if p, ok := r.Context().Value(patternKey{}).(*string); ok {
			*p = r.Pattern
		} else if ri, ok := r.Context().Value(reqIDKey{}).(*requestInfo); ok {
			ri.pattern = r.Pattern
		}
	})
}

// Observe wraps next, calling done after each request with its matched route pattern,
// status and duration: the access log and the metrics hang on it.
func Observe(next http.Handler, done func(r *http.Request, pattern string, status int, d time.Duration)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var sw *StatusWriter
		var pattern *string
		if ri, ok := r.Context().Value(reqIDKey{}).(*requestInfo); ok && ri.sw.ResponseWriter == nil {
			pattern = &ri.pattern // RecordPattern writes there
			ri.sw.ResponseWriter = w
			sw = &ri.sw
		} else {
			sw = &StatusWriter{ResponseWriter: w}
			pattern = new(string)
			r = r.WithContext(context.WithValue(r.Context(), patternKey{}, pattern))
		}
		next.ServeHTTP(sw, r)
		if sw.Status == 0 {
			sw.Status = http.StatusOK
		}
		done(r, *pattern, sw.Status, time.Since(start))
	})
}

// Recover turns a panic in a handler into a logged 500, never a stack trace to the user.
func Recover(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic", "err", p, "path", r.URL.Path, "request_id", RequestIDFrom(r.Context()), "stack", string(debug.Stack()))
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// LimitBody refuses bodies larger than n bytes (handlers see a *http.MaxBytesError).
func LimitBody(n int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody { // GET requests: nothing to limit
			r.Body = http.MaxBytesReader(w, r.Body, n)
		}
		next.ServeHTTP(w, r)
	})
}

// ClientIP returns the client address; behind a trusted proxy, the last X-Forwarded-For hop.
func ClientIP(r *http.Request, trustProxy bool) string {
	xff := ""
	if v := r.Header["X-Forwarded-For"]; len(v) > 0 {
		xff = v[len(v)-1]
	}
	return clientIP(r.RemoteAddr, xff, trustProxy)
}

// ClientIPFrom returns the client address of the request ctx belongs to (as ClientIP), or
// "" outside a request. It is computed on demand: most requests never need it.
func ClientIPFrom(ctx context.Context, trustProxy bool) string {
	ri, _ := ctx.Value(reqIDKey{}).(*requestInfo)
	if ri == nil {
		return ""
	}
	return clientIP(ri.remoteAddr, ri.forwardedFor, trustProxy)
}

// clientIP: the last hop of the last X-Forwarded-For line when the proxy is trusted (it
// appends the address it saw; earlier hops are the client's say), else the peer address.
func clientIP(remoteAddr, xff string, trustProxy bool) string {
	if trustProxy && xff != "" {
		if i := strings.LastIndexByte(xff, ','); i >= 0 {
			xff = xff[i+1:]
		}
		if ip := net.ParseIP(strings.TrimSpace(xff)); ip != nil {
			return ip.String()
		}
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}
