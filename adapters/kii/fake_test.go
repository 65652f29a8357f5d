package kii_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
)

const (
	app   = "app1"
	token = "tok-1"
	media = "application/vnd.kii.UserStatusUpdateRequest+json"
)

type answer struct {
	status      int
	contentType string
	body        map[string]any
}

// call sends one raw request to a fresh server of fake and decodes the answer.
func call(t *testing.T, fake *kiitest.Server, method, path, auth, contentType, body string) answer {
	t.Helper()
	status, ctype, raw := adaptertest.Raw(t, fake, method, path, auth, contentType, body)
	a := answer{status: status, contentType: ctype}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Fatalf("answer %d %q is not a JSON object: %v", status, raw, err)
		}
	}
	return a
}

func newServer(opts kiitest.Options) *kiitest.Server {
	if opts.AppID == "" {
		opts.AppID = app
	}
	if opts.Token == "" {
		opts.Token = token
	}
	s := kiitest.New(opts)
	s.AddUser("LOGIN_NAME:alice", kiitest.User{})
	s.AddUser("a/b", kiitest.User{Disabled: true})
	return s
}

const alice = "/api/apps/" + app + "/users/LOGIN_NAME:alice/status"

func TestPutAndGet(t *testing.T) {
	s := newServer(kiitest.Options{})
	a := call(t, s, http.MethodPut, alice, "Bearer "+token, media, `{"disabled":true}`)
	if a.status != http.StatusNoContent || a.body != nil {
		t.Fatalf("PUT: %+v, want 204 with no body", a)
	}
	if u, _ := s.User("LOGIN_NAME:alice"); !u.Disabled || s.Writes("LOGIN_NAME:alice") != 1 {
		t.Errorf("after PUT: %+v, writes %d", u, s.Writes("LOGIN_NAME:alice"))
	}
	a = call(t, s, http.MethodGet, alice, "bearer "+token, "", "")
	if a.status != http.StatusOK || a.contentType != "application/vnd.kii.UserStatusRetrievalResponse+json" || a.body["disabled"] != true {
		t.Errorf("GET: %+v", a)
	}
	if s.Writes("LOGIN_NAME:alice") != 1 {
		t.Errorf("GET counted as a write")
	}
}

func TestEscapedSlashStaysInSegment(t *testing.T) {
	s := newServer(kiitest.Options{})
	a := call(t, s, http.MethodGet, "/api/apps/"+app+"/users/a%2Fb/status", "Bearer "+token, "", "")
	if a.status != http.StatusOK || a.body["disabled"] != true {
		t.Errorf("GET a%%2Fb: %+v, want user a/b (disabled)", a)
	}
}

func TestRejections(t *testing.T) {
	for _, tc := range []struct {
		name, method, path, auth, contentType, body string
		status                                      int
		contentTypeOut                              string
		fields                                      map[string]any
	}{
		{name: "string boolean", method: http.MethodPut, path: alice, auth: "Bearer " + token, contentType: media,
			body: `{"disabled":"true"}`, status: 400, contentTypeOut: "application/json"},
		{name: "missing disabled", method: http.MethodPut, path: alice, auth: "Bearer " + token, contentType: media,
			body: `{}`, status: 400},
		{name: "plain JSON content type", method: http.MethodPut, path: alice, auth: "Bearer " + token,
			contentType: "application/json", body: `{"disabled":true}`, status: 400},
		{name: "no token", method: http.MethodPut, path: alice, contentType: media, body: `{"disabled":true}`,
			status: 401, contentTypeOut: "application/vnd.kii.UnauthorizedAccessException+json",
			fields: map[string]any{"errorCode": "UNAUTHORIZED", "authenticatedAppID": app, "authenticatedPrincipalID": nil}},
		{name: "wrong token", method: http.MethodGet, path: alice, auth: "Bearer nope", status: 401},
		{name: "wrong app", method: http.MethodGet, path: "/api/apps/other/users/LOGIN_NAME:alice/status",
			auth: "Bearer " + token, status: 404, fields: map[string]any{"errorCode": "APP_NOT_FOUND"}},
		{name: "unknown user", method: http.MethodPut, path: "/api/apps/" + app + "/users/EMAIL:bob@example.com/status",
			auth: "Bearer " + token, contentType: media, body: `{"disabled":true}`,
			status: 404, contentTypeOut: "application/vnd.kii.UserNotFoundException+json",
			fields: map[string]any{"errorCode": "USER_NOT_FOUND", "field": "emailAddress", "value": "bob@example.com", "appID": app}},
		{name: "method", method: http.MethodDelete, path: alice, auth: "Bearer " + token, status: 405},
		{name: "path", method: http.MethodGet, path: "/api/apps/" + app + "/users/LOGIN_NAME:alice", auth: "Bearer " + token, status: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(kiitest.Options{})
			a := call(t, s, tc.method, tc.path, tc.auth, tc.contentType, tc.body)
			if a.status != tc.status {
				t.Errorf("status %d, want %d (%v)", a.status, tc.status, a.body)
			}
			if tc.contentTypeOut != "" && a.contentType != tc.contentTypeOut {
				t.Errorf("content type %q, want %q", a.contentType, tc.contentTypeOut)
			}
			if msg, _ := a.body["message"].(string); msg == "" {
				t.Errorf("answer %v has no message", a.body)
			}
			for k, v := range tc.fields {
				if got, ok := a.body[k]; !ok || got != v {
					t.Errorf("%s = %v, want %v", k, got, v)
				}
			}
			if u, _ := s.User("LOGIN_NAME:alice"); u.Disabled || s.Writes("LOGIN_NAME:alice") != 0 {
				t.Errorf("a rejected request changed alice: %+v, writes %d", u, s.Writes("LOGIN_NAME:alice"))
			}
			if s.Requests() != 1 {
				t.Errorf("Requests() = %d, want 1", s.Requests())
			}
		})
	}
}

func TestAutoCreate(t *testing.T) {
	s := newServer(kiitest.Options{AutoCreate: true})
	const path = "/api/apps/" + app + "/users/PHONE:%2B819012345678/status"
	if a := call(t, s, http.MethodGet, path, "Bearer "+token, "", ""); a.status != 200 || a.body["disabled"] != false {
		t.Errorf("GET on a new user: %+v, want enabled", a)
	}
	if a := call(t, s, http.MethodPut, path, "Bearer "+token, media, `{"disabled":true}`); a.status != 204 {
		t.Errorf("PUT: %+v", a)
	}
	if u, ok := s.User("PHONE:+819012345678"); !ok || !u.Disabled {
		t.Errorf("user %+v %v, want created and disabled", u, ok)
	}
}

// BenchmarkPut measures the handler alone, in parallel: load benchmarks
// drive the fake at about 20k requests a second.
func BenchmarkPut(b *testing.B) {
	s := kiitest.New(kiitest.Options{AppID: app, Token: token, AutoCreate: true})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPut, alice, strings.NewReader(`{"disabled":true}`))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", media)
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != http.StatusNoContent {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}
