// Package mailtest is an SMTP server for tests: a real SMTP conversation (go-smtp, the
// library the mail module's counterpart speaks to) on a loopback port, AUTH PLAIN with fixed
// credentials, every message kept and readable part by part.
package mailtest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// The credentials the server accepts (URL puts them in PARVIS_SMTP's form).
const (
	User     = "agent"
	Password = "s3cret"
)

// Server is a running SMTP server; it stops when the test ends.
type Server struct {
	srv  *smtp.Server
	addr string
	mu   sync.Mutex
	got  []Message
}

// Message is one message received: the authenticated user, the envelope and the raw data.
type Message struct {
	User, From string
	To         []string
	Data       []byte
}

// New starts a server on a free loopback port.
func New(t testing.TB) *Server { return Listen(t, "127.0.0.1:0") }

// Listen starts a server on addr (to bring a server back on the address a test stopped).
func Listen(t testing.TB, addr string) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{addr: ln.Addr().String()}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL is the server as PARVIS_SMTP names it, with the credentials, without TLS.
func (s *Server) URL() string { return "smtp://" + User + ":" + Password + "@" + s.addr + "?tls=none" }

// Close stops the server (a test of deliveries while it is down).
func (s *Server) Close() error { return s.srv.Close() }

// Messages returns the messages received so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.got...)
}

// WaitFor waits up to timeout for a message matching ok and returns it; the test fails
// naming what when none comes.
func (s *Server) WaitFor(t testing.TB, what string, timeout time.Duration, ok func(Message) bool) Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, m := range s.Messages() {
			if ok(m) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no such mail arrived over SMTP", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }

type session struct {
	s   *Server
	cur Message
}

func (x *session) AuthMechanisms() []string { return []string{sasl.Plain} }
func (x *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != User || pass != Password {
			return errors.New("bad credentials")
		}
		x.cur.User = user
		return nil
	}), nil
}
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.cur.User == "" {
		return smtp.ErrAuthRequired
	}
	x.cur.From = from
	return nil
}
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.cur.To = append(x.cur.To, to)
	return nil
}
func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.cur.Data = b
	x.s.mu.Lock()
	x.s.got = append(x.s.got, x.cur)
	x.s.mu.Unlock()
	x.cur = Message{User: x.cur.User}
	return nil
}
func (x *session) Reset()        { x.cur = Message{User: x.cur.User} }
func (x *session) Logout() error { return nil }

// Part is one leaf of a MIME message, its transfer encoding undone.
type Part struct {
	Type, Filename string
	Body           []byte
}

// Parts returns the message's leaf parts in order (nil when it is not a MIME message).
func (m Message) Parts() []Part {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return nil
	}
	return walk(msg.Header, msg.Body)
}

type header interface{ Get(string) string }

func walk(h header, body io.Reader) []Part {
	mt, params, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if strings.HasPrefix(mt, "multipart/") {
		var out []Part
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				return out
			}
			out = append(out, walk(p.Header, p)...)
		}
	}
	var r io.Reader = body
	switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	}
	b, _ := io.ReadAll(r)
	_, dp, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	name := dp["filename"]
	if name == "" {
		name = params["name"]
	}
	return []Part{{Type: mt, Filename: name, Body: b}}
}

// Text returns the message's first text/plain part.
func (m Message) Text() string {
	for _, p := range m.Parts() {
		if p.Type == "text/plain" {
			return string(p.Body)
		}
	}
	return ""
}

// Attachment returns the body of the part named name, or nil.
func (m Message) Attachment(name string) []byte {
	for _, p := range m.Parts() {
		if p.Filename == name {
			return p.Body
		}
	}
	return nil
}
