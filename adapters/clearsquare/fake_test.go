package clearsquare_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
)

const (
	token    = "jwt-1"
	endpoint = "/api/users/manage-status"
)

type answer struct {
	status      int
	contentType string
	body        map[string]string
}

func call(t *testing.T, fake *clearsquaretest.Server, method, auth, contentType, body string) answer {
	t.Helper()
	status, ctype, raw := adaptertest.Raw(t, fake, method, endpoint, auth, contentType, body)
	a := answer{status: status, contentType: ctype}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("answer %d %q is not the vendor's JSON envelope: %v", status, raw, err)
	}
	return a
}

func TestToggle(t *testing.T) {
	s := clearsquaretest.New(clearsquaretest.Options{Token: token})
	s.AddUser("u1", clearsquaretest.User{Active: true})
	for i, want := range []bool{false, true} {
		a := call(t, s, http.MethodPost, "Bearer "+token, "application/json", `{"id":"u1","token":"`+token+`"}`)
		if a.status != 200 || a.contentType != "application/json" ||
			a.body["message"] != "User status updated successfully" || a.body["status"] != "success" {
			t.Fatalf("toggle %d: %+v", i+1, a)
		}
		if u, _ := s.User("u1"); u.Active != want {
			t.Errorf("toggle %d: active %v, want %v", i+1, u.Active, want)
		}
	}
	if s.Writes("u1") != 2 || s.Requests() != 2 {
		t.Errorf("writes %d requests %d, want 2 and 2", s.Writes("u1"), s.Requests())
	}
}

func TestRejections(t *testing.T) {
	good := `{"id":"u1","token":"` + token + `"}`
	for _, tc := range []struct {
		name, method, auth, contentType, body string
		status                                int
		message                               string
	}{
		{"bad header token", http.MethodPost, "Bearer nope", "application/json", good, 401, "Invalid token or user ID"},
		{"no header", http.MethodPost, "", "application/json", good, 401, "Invalid token or user ID"},
		{"bad body token", http.MethodPost, "Bearer " + token, "application/json", `{"id":"u1","token":"nope"}`, 401, "Invalid token or user ID"},
		{"unknown user", http.MethodPost, "Bearer " + token, "application/json", `{"id":"u2","token":"` + token + `"}`, 401, "Invalid token or user ID"},
		{"missing id", http.MethodPost, "Bearer " + token, "application/json", `{"token":"` + token + `"}`, 400, ""},
		{"id not a string", http.MethodPost, "Bearer " + token, "application/json", `{"id":7,"token":"` + token + `"}`, 400, ""},
		{"malformed", http.MethodPost, "Bearer " + token, "application/json", `{"id":`, 400, ""},
		{"form body", http.MethodPost, "Bearer " + token, "application/x-www-form-urlencoded", "id=u1", 400, ""},
		{"GET", http.MethodGet, "Bearer " + token, "", "", 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := clearsquaretest.New(clearsquaretest.Options{Token: token})
			s.AddUser("u1", clearsquaretest.User{Active: true})
			a := call(t, s, tc.method, tc.auth, tc.contentType, tc.body)
			if a.status != tc.status || a.body["status"] != "error" || a.body["message"] == "" {
				t.Errorf("answer %+v, want %d with an error envelope", a, tc.status)
			}
			if tc.message != "" && a.body["message"] != tc.message {
				t.Errorf("message %q, want %q", a.body["message"], tc.message)
			}
			if u, _ := s.User("u1"); !u.Active || s.Writes("u1") != 0 {
				t.Errorf("a rejected request toggled u1")
			}
		})
	}
}

func TestAutoCreate(t *testing.T) {
	s := clearsquaretest.New(clearsquaretest.Options{Token: token, AutoCreate: true})
	a := call(t, s, http.MethodPost, "Bearer "+token, "application/json", `{"id":"new","token":"`+token+`"}`)
	if a.status != 200 {
		t.Fatalf("answer %+v", a)
	}
	if u, ok := s.User("new"); !ok || u.Active {
		t.Errorf("user %+v %v, want created active, then toggled to inactive", u, ok)
	}
}

// BenchmarkToggle measures the handler alone, in parallel: load benchmarks
// drive the fake at about 20k requests a second.
func BenchmarkToggle(b *testing.B) {
	s := clearsquaretest.New(clearsquaretest.Options{Token: token, AutoCreate: true})
	body := `{"id":"u1","token":"` + token + `"}`
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}
