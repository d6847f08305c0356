package appointments

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHTTPSMS sends through the HTTP gateway implementation to a real HTTP server standing in
// for the provider: JSON body, bearer token, and failures reported (so the job retries).
func TestHTTPSMS(t *testing.T) {
	tests := []struct {
		name    string
		token   string
		status  int
		wantErr bool
	}{
		{"accepted", "secret-token", http.StatusOK, false},
		{"accepted without token", "", http.StatusAccepted, false},
		{"provider down", "secret-token", http.StatusBadGateway, true},
		{"refused", "secret-token", http.StatusUnauthorized, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got struct{ To, Text string }
			var auth, ctype string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				auth, ctype = r.Header.Get("Authorization"), r.Header.Get("Content-Type")
				if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&got) != nil {
					http.Error(w, "bad request", http.StatusBadRequest)
					return
				}
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			s := &HTTPSMS{URL: srv.URL, Token: tc.token, Client: srv.Client()}
			err := s.Send(context.Background(), "+33612345678", "Rappel : rendez-vous demain à 09:15")
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if got.To != "+33612345678" || !strings.Contains(got.Text, "09:15") || ctype != "application/json" {
				t.Errorf("gateway received %+v (%s)", got, ctype)
			}
			if want := map[bool]string{true: "Bearer " + tc.token, false: ""}[tc.token != ""]; auth != want {
				t.Errorf("Authorization %q, want %q", auth, want)
			}
		})
	}
	// An unreachable gateway is an error too.
	s := &HTTPSMS{URL: "http://127.0.0.1:1/sms", Client: http.DefaultClient}
	if err := s.Send(context.Background(), "+33612345678", "x"); err == nil {
		t.Error("unreachable gateway: no error")
	}
}
