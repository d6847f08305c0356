package portal

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"parvis.org/parvis/kernel"
)

// The page cache holds anonymous public responses as rendered bytes, plain and gzipped.
// An entry is valid while its site's generation is the one it was rendered under and its
// expiry (the site's next scheduled change, or a portlet's max age) has not passed.

type entry struct {
	site    int64
	gen     int64
	expires time.Time // zero: until the generation moves
	ctype   []string
	etag    []string
	etagGz  []string
	length  []string
	lenGz   []string
	plain   []byte
	gz      []byte
}

type pageCache struct {
	mu    sync.RWMutex
	m     map[string]*entry
	bytes int
	max   int
}

func newPageCache(max int) *pageCache { return &pageCache{m: map[string]*entry{}, max: max} }

func (c *pageCache) get(key string) *entry {
	c.mu.RLock()
	e := c.m[key]
	c.mu.RUnlock()
	return e
}

// getBytes is get for a key built in a buffer: the map lookup converts it without a copy.
func (c *pageCache) getBytes(key []byte) *entry {
	c.mu.RLock()
	e := c.m[string(key)]
	c.mu.RUnlock()
	return e
}

func (c *pageCache) drop(key string, e *entry) {
	c.mu.Lock()
	if c.m[key] == e {
		delete(c.m, key)
		c.bytes -= len(e.plain) + len(e.gz)
	}
	c.mu.Unlock()
}

func (c *pageCache) put(key string, e *entry) {
	size := len(e.plain) + len(e.gz)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[key]; old != nil {
		c.bytes -= len(old.plain) + len(old.gz)
	}
	if c.bytes+size > c.max {
		// Full: start again rather than track recency; the hot pages come back at once.
		c.m = map[string]*entry{}
		c.bytes = 0
	}
	c.m[key] = e
	c.bytes += size
}

// Len reports the number of cached responses.
func (c *pageCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

func newEntry(site, gen int64, expires time.Time, ctype string, body []byte) *entry {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(body)
	_ = zw.Close()
	sum := sha256.Sum256(body)
	tag := base64.RawURLEncoding.EncodeToString(sum[:12])
	plain := bytes.Clone(body)
	return &entry{site: site, gen: gen, expires: expires, ctype: []string{ctype},
		etag: []string{`"` + tag + `"`}, etagGz: []string{`"` + tag + `-gz"`},
		length: []string{strconv.Itoa(len(plain))}, lenGz: []string{strconv.Itoa(buf.Len())},
		plain: plain, gz: buf.Bytes()}
}

// cacheable reports whether a request may be answered from, and stored into, the
// anonymous cache: a plain GET or HEAD without query by someone not signed in.
func cacheable(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.URL.RawQuery != "" {
		return false
	}
	ctx := r.Context()
	return kernel.AgentFrom(ctx) == nil && kernel.CitizenFrom(ctx) == nil
}

func (m *Module) cacheKey(r *http.Request) string { return string(m.appendKey(nil, r)) }

// appendKey appends the cache key of r (language, host, path) to b.
func (m *Module) appendKey(b []byte, r *http.Request) []byte {
	lang := "fr"
	if m.views.Lang != nil {
		lang = m.views.Lang(r)
	}
	b = append(b, lang...)
	b = append(b, ' ')
	for i := 0; i < len(r.Host); i++ {
		c := r.Host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return append(b, r.URL.Path...)
}

var (
	varyHdr  = []string{"Accept-Encoding, Accept-Language, Cookie"}
	ccPublic = []string{"no-cache"}
	gzipHdr  = []string{"gzip"}
	hitHdr   = []string{"hit"}
	missHdr  = []string{"miss"}
)

// Middleware answers anonymous requests for cached pages before any routing or rendering.
func (m *Module) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !cacheable(r) {
			next.ServeHTTP(w, r)
			return
		}
		var buf [256]byte
		key := m.appendKey(buf[:0], r)
		e := m.cache.getBytes(key)
		if e == nil {
			next.ServeHTTP(w, r)
			return
		}
		if s := m.st.Load().byID[e.site]; s == nil || s.Generation != e.gen || (!e.expires.IsZero() && !m.clock.Now().Before(e.expires)) {
			m.cache.drop(string(key), e)
			next.ServeHTTP(w, r)
			return
		}
		m.writeEntry(w, r, e, hitHdr)
	})
}

func (m *Module) writeEntry(w http.ResponseWriter, r *http.Request, e *entry, src []string) {
	h := w.Header()
	h["Content-Type"] = e.ctype
	h["Vary"] = varyHdr
	h["Cache-Control"] = ccPublic
	h["X-Parvis-Cache"] = src
	body, etag, length := e.plain, e.etag, e.length
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body, etag, length = e.gz, e.etagGz, e.lenGz
		h["Content-Encoding"] = gzipHdr
	}
	h["Etag"] = etag
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, etag[0]) {
		delete(h, "Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Length"] = length
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// acceptsGzip parses Accept-Encoding enough to honour "gzip;q=0" and "*".
func acceptsGzip(ae string) bool {
	if ae == "" {
		return false
	}
	for part := range strings.SplitSeq(ae, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != "gzip" && name != "*" {
			continue
		}
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		return q > 0
	}
	return false
}

func etagMatch(header, etag string) bool {
	for part := range strings.SplitSeq(header, ",") {
		p := strings.TrimPrefix(strings.TrimSpace(part), "W/")
		if p == etag || p == "*" {
			return true
		}
	}
	return false
}

// capture records a rendered response so it can be stored in the cache.
type capture struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

func newCapture() *capture { return &capture{h: http.Header{}} }

func (c *capture) Header() http.Header { return c.h }
func (c *capture) WriteHeader(s int) {
	if c.status == 0 {
		c.status = s
	}
}
func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.buf.Write(b)
}

// respond sends a rendered response and, when the request is cacheable, the response a
// 200 and the site unchanged since rendering began, keeps it.
func (m *Module) respond(w http.ResponseWriter, r *http.Request, c *capture, site *Site, gen int64, expires time.Time, store bool) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if store && c.status == http.StatusOK && cacheable(r) {
		if cur := m.st.Load().byID[site.ID]; cur != nil && cur.Generation == gen {
			e := newEntry(site.ID, gen, expires, c.h.Get("Content-Type"), c.buf.Bytes())
			m.cache.put(m.cacheKey(r), e)
			m.writeEntry(w, r, e, missHdr)
			return
		}
	}
	for k, v := range c.h {
		w.Header()[k] = v
	}
	if !cacheable(r) {
		// Never let a shared cache keep what a signed-in person sees.
		w.Header().Set("Cache-Control", "private, no-store")
	}
	w.WriteHeader(c.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(c.buf.Bytes())
	}
}
