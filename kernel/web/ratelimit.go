package web

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimiter is a token bucket per key (a client address, an account, a service), for
// routes that attract abuse: login, booking, sign-up. It is per node: with N nodes the
// effective limit is N times higher, which is acceptable for abuse control; limits that
// must hold across nodes (login throttling) are kept in the database instead.
type RateLimiter struct {
	every time.Duration
	burst int
	mu    sync.Mutex
	keys  map[string]*limiterEntry
	now   func() time.Time
	// OnLimit answers a refused request; defaults to a plain 429.
	OnLimit http.Handler
}

type limiterEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewRateLimiter allows burst requests at once, then one per every.
func NewRateLimiter(every time.Duration, burst int) *RateLimiter {
	return &RateLimiter{every: every, burst: burst, keys: map[string]*limiterEntry{}, now: time.Now}
}

// Allow reports whether one more request for key may go through now.
func (l *RateLimiter) Allow(key string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.keys[key]
	if !ok {
		if len(l.keys) > 100_000 {
			l.sweep(now)
		}
		e = &limiterEntry{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.keys[key] = e
	}
	e.seen = now
	return e.lim.AllowN(now, 1)
}

// sweep forgets keys idle long enough for their bucket to be full again.
func (l *RateLimiter) sweep(now time.Time) {
	idle := l.every * time.Duration(l.burst+1)
	for k, e := range l.keys {
		if now.Sub(e.seen) > idle {
			delete(l.keys, k)
		}
	}
}

// Limit wraps next, keyed by key(r) (typically the client address). Only methods in
// methods are counted (all when empty): a login page may be shown freely, only its POST limited.
func (l *RateLimiter) Limit(key func(*http.Request) string, next http.Handler, methods ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		counted := len(methods) == 0
		for _, m := range methods {
			counted = counted || r.Method == m
		}
		if counted && !l.Allow(key(r)) {
			w.Header().Set("Retry-After", strconv.Itoa(int(l.every.Seconds())+1))
			if l.OnLimit != nil {
				l.OnLimit.ServeHTTP(w, r)
				return
			}
			http.Error(w, "too many requests; try again later", http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}
