package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewRateLimiter(time.Minute, 3)
	l.now = func() time.Time { return now }
	h := l.Limit(func(r *http.Request) string { return r.RemoteAddr }, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), http.MethodPost)
	status := func(method, addr string) int {
		req := httptest.NewRequest(method, "/login", nil)
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for i := 0; i < 3; i++ {
		if c := status("POST", "1.1.1.1:1"); c != 200 {
			t.Fatalf("attempt %d refused", i)
		}
	}
	if c := status("POST", "1.1.1.1:1"); c != http.StatusTooManyRequests {
		t.Fatalf("4th attempt = %d, want 429", c)
	}
	if c := status("GET", "1.1.1.1:1"); c != 200 {
		t.Fatalf("GET counted: %d", c)
	}
	if c := status("POST", "2.2.2.2:1"); c != 200 {
		t.Fatalf("other address refused: %d", c)
	}
	now = now.Add(time.Minute)
	if c := status("POST", "1.1.1.1:1"); c != 200 {
		t.Fatalf("after a minute = %d, want 200", c)
	}
}

func TestDecodeJSONErrors(t *testing.T) {
	type body struct {
		Name string `json:"name"`
		Age  int    `json:"age"`
	}
	cases := []struct {
		in        string
		status    int
		code, fld string
	}{
		{`{"name":"a","age":3}`, 200, "", ""},
		{`{"name":"a","age":"three"}`, 400, "invalid_type", "age"},
		{`{"name":"a","colour":"red"}`, 400, "unknown_field", "colour"},
		{`{"name":`, 400, "invalid_json", ""},
		{``, 400, "invalid_json", ""},
		{`{"name":"a"} {"name":"b"}`, 400, "invalid_json", ""},
		{`{"name":"` + strings.Repeat("x", 2000) + `"}`, 413, "body_too_large", ""},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/api/x", strings.NewReader(c.in))
		req.Body = http.MaxBytesReader(rec, req.Body, 1024)
		var b body
		ok := DecodeJSON(rec, req, &b)
		if c.status == 200 {
			if !ok {
				t.Errorf("%q refused: %s", c.in, rec.Body)
			}
			continue
		}
		out, _ := io.ReadAll(rec.Body)
		if ok || rec.Code != c.status || !strings.Contains(string(out), `"code":"`+c.code+`"`) || !strings.Contains(string(out), c.fld) {
			t.Errorf("%.40q: %d %s; want %d %s %s", c.in, rec.Code, out, c.status, c.code, c.fld)
		}
	}
}

func TestLimitBody(t *testing.T) {
	h := LimitBody(10, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := ParseForm(r); err == ErrBodyTooLarge {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
		}
	}))
	for _, c := range []struct {
		body string
		want int
	}{{"a=b", 200}, {"a=" + strings.Repeat("b", 50), 413}} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("body of %d bytes: %d, want %d", len(c.body), rec.Code, c.want)
		}
	}
}

func TestCSRF(t *testing.T) {
	c := NewCSRF("0123456789abcdef0123456789abcdef", false)
	var token string
	h := c.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { token = c.Token(r) }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	cookie := rec.Result().Cookies()[0]
	post := func(tok string, hdr map[string]string) int {
		req := httptest.NewRequest("POST", "/", strings.NewReader("csrf="+tok))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(cookie)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if got := post(token, nil); got != 200 {
		t.Errorf("valid token: %d", got)
	}
	if got := post("forged", nil); got != 403 {
		t.Errorf("forged token: %d", got)
	}
	if got := post("", nil); got != 403 {
		t.Errorf("no token: %d", got)
	}
	if got := post(token, map[string]string{"Sec-Fetch-Site": "cross-site"}); got != 403 {
		t.Errorf("cross-site with valid token: %d", got)
	}
}

// TestRequestIDAndPattern: generated request IDs are distinct, a well-formed incoming one
// is kept, and Observe still learns the matched route pattern through RequestID's context.
func TestRequestIDAndPattern(t *testing.T) {
	mux := http.NewServeMux()
	var seen string
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) { seen = RequestIDFrom(r.Context()) })
	var pattern string
	h := RequestID(Observe(RecordPattern(mux), func(_ *http.Request, p string, _ int, _ time.Duration) { pattern = p }))
	ids := map[string]bool{}
	for _, in := range []string{"", "", "short", "req-0123456789"} {
		req := httptest.NewRequest("GET", "/items/7", nil)
		if in != "" {
			req.Header.Set("X-Request-ID", in)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		id := rec.Header().Get("X-Request-ID")
		if id != seen || len(id) < 8 {
			t.Errorf("in %q: header %q, context %q", in, id, seen)
		}
		if in == "req-0123456789" && id != in {
			t.Errorf("well-formed incoming ID replaced by %q", id)
		}
		if ids[id] {
			t.Errorf("request ID %q given twice", id)
		}
		ids[id] = true
		if pattern != "GET /items/{id}" {
			t.Errorf("Observe saw pattern %q", pattern)
		}
	}
}

// TestClientIP: the peer address, or behind a trusted proxy the hop the proxy appended (the
// last one); a forged or malformed X-Forwarded-For never wins when the proxy is not trusted.
func TestClientIP(t *testing.T) {
	for _, tc := range []struct {
		name  string
		xff   []string
		trust bool
		want  string
	}{
		{"no proxy", nil, false, "198.51.100.7"},
		{"untrusted header ignored", []string{"203.0.113.1"}, false, "198.51.100.7"},
		{"trusted proxy", []string{"203.0.113.1"}, true, "203.0.113.1"},
		{"last hop of a chain", []string{"10.0.0.1, 203.0.113.2"}, true, "203.0.113.2"},
		{"last line of several", []string{"10.0.0.1", "203.0.113.3"}, true, "203.0.113.3"},
		{"malformed: peer address", []string{"not-an-ip"}, true, "198.51.100.7"},
		{"IPv6 normalised", []string{"2001:DB8::1"}, true, "2001:db8::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = "198.51.100.7:40000"
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := ClientIP(r, tc.trust); got != tc.want {
				t.Errorf("ClientIP = %q, want %q", got, tc.want)
			}
			var fromCtx string
			RequestID(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				fromCtx = ClientIPFrom(r.Context(), tc.trust)
			})).ServeHTTP(httptest.NewRecorder(), r)
			if fromCtx != tc.want {
				t.Errorf("ClientIPFrom = %q, want %q", fromCtx, tc.want)
			}
		})
	}
	if got := ClientIPFrom(context.Background(), true); got != "" {
		t.Errorf("ClientIPFrom outside a request = %q, want empty", got)
	}
}
