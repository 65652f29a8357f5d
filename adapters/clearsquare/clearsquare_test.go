package clearsquare

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/batch"
)

const (
	goodToken = "eyJhbGciOiJIUzI1NiJ9.good.sig"
	badToken  = "eyJhbGciOiJIUzI1NiJ9.bad.sig"
)

// TestConformance runs the suite every vendor passes; its NeverSent part
// shows a toggle that provably never left is failed, not unknown.
func TestConformance(t *testing.T) {
	adaptertest.Run(t, adaptertest.Fixture{
		Vendor: "clearsquare",
		New:    newHostile,
		Fake: func(t *testing.T) *adaptertest.Fake {
			fake := clearsquaretest.New(clearsquaretest.Options{Token: goodToken})
			base := adaptertest.Serve(t, fake)
			return &adaptertest.Fake{
				Adapter:        newClient(t, base, goodToken),
				BadCredentials: newClient(t, base, badToken),
				Secrets:        []string{goodToken, badToken},
				Faults:         &fake.Faults,
				AddUser: func(id string, _ batch.Op) {
					fake.AddUser(id, clearsquaretest.User{Active: true})
				},
				State:  func(id string) string { return state(fake, id) },
				Writes: fake.Writes,
			}
		},
		Cases:           []adaptertest.Case{{Op: batch.Op{Action: batch.ToggleStatus}, Want: "inactive"}},
		UnknownUserCode: batch.CodeUnauthorized,
	})
}

func newClient(t *testing.T, base, token string) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: base, Token: token})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func state(fake *clearsquaretest.Server, id string) string {
	u, ok := fake.User(id)
	switch {
	case !ok:
		return "missing"
	case u.Active:
		return "active"
	}
	return "inactive"
}

func toggle(user string) batch.Op { return batch.Op{User: user, Action: batch.ToggleStatus} }

// seen is what the fake was sent, recorded in front of it.
type seen struct {
	method, path string
	header       http.Header
	body         []byte
}

// recorder records every request, then hands it to next unchanged.
func recorder(next http.Handler) (http.Handler, func() []seen) {
	var mu sync.Mutex
	var got []seen
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.Path, r.Header.Clone(), body})
		mu.Unlock()
		next.ServeHTTP(w, r)
	})
	return h, func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return append([]seen(nil), got...)
	}
}

func TestRequestEncoding(t *testing.T) {
	fake := clearsquaretest.New(clearsquaretest.Options{Token: goodToken})
	fake.AddUser("634441cecbb5901d133039f8", clearsquaretest.User{Active: true})
	h, requests := recorder(fake)
	c := newClient(t, adaptertest.Serve(t, h), goodToken)

	if _, err := c.Apply(context.Background(), toggle("634441cecbb5901d133039f8")); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	got := requests()
	if len(got) != 1 {
		t.Fatalf("fake saw %d requests, want 1", len(got))
	}
	req := got[0]
	if req.method != http.MethodPost || req.path != "/api/users/manage-status" {
		t.Errorf("request %s %s, want POST /api/users/manage-status", req.method, req.path)
	}
	for name, want := range map[string]string{
		"Authorization": "Bearer " + goodToken,
		"Content-Type":  "application/json",
		"Accept":        "application/json",
	} {
		if v := req.header.Values(name); len(v) != 1 || v[0] != want {
			t.Errorf("header %s = %q, want %q", name, v, want)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(req.body, &body); err != nil {
		t.Fatalf("body %s: %v", req.body, err)
	}
	want := map[string]any{"id": "634441cecbb5901d133039f8", "token": goodToken}
	if len(body) != len(want) || body["id"] != want["id"] || body["token"] != want["token"] {
		t.Errorf("body %s, want exactly %v", req.body, want)
	}
}

func TestOnlyToggleNeverIdempotent(t *testing.T) {
	c := newClient(t, "https://admin.example.com", goodToken)
	for _, a := range batch.Actions {
		if c.Idempotent(a) {
			t.Errorf("Idempotent(%s) = true; a toggle must never be resent", a)
		}
		if got, want := c.Supports(a), a == batch.ToggleStatus; got != want {
			t.Errorf("Supports(%s) = %v, want %v", a, got, want)
		}
	}
	if _, ok := any(c).(batch.Reader); ok {
		t.Error("Client is a batch.Reader, but clearsquare cannot read state")
	}
}

func TestApplyTogglesBackAndForth(t *testing.T) {
	fake := clearsquaretest.New(clearsquaretest.Options{Token: goodToken})
	fake.AddUser("u1", clearsquaretest.User{Active: true})
	c := newClient(t, adaptertest.Serve(t, fake), goodToken)

	for i, want := range []string{"inactive", "active"} {
		rep, err := c.Apply(context.Background(), toggle("u1"))
		if err != nil {
			t.Fatalf("Apply #%d: %v", i+1, err)
		}
		if rep.Already || rep.HTTPStatus != http.StatusOK || rep.Message != "User status updated successfully" {
			t.Errorf("Apply #%d: reply %+v", i+1, rep)
		}
		if got := state(fake, "u1"); got != want {
			t.Errorf("after Apply #%d: state %q, want %q", i+1, got, want)
		}
	}
	if got := fake.Writes("u1"); got != 2 {
		t.Errorf("writes %d, want 2", got)
	}
}

func TestUnsupportedActionSendsNothing(t *testing.T) {
	fake := clearsquaretest.New(clearsquaretest.Options{Token: goodToken})
	c := newClient(t, adaptertest.Serve(t, fake), goodToken)
	_, err := c.Apply(context.Background(), batch.Op{User: "u1", Action: batch.Disable})
	wantError(t, err, batch.Permanent, batch.CodeValidation, 0, "toggle-status")
	if n := fake.Requests(); n != 0 {
		t.Errorf("fake saw %d requests for an unsupported action", n)
	}
}

// TestClassify drives every answer through real HTTP, the fake's fault
// injector answering in the vendor's place.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		applied bool
		kind    batch.Kind
		code    string
		msg     string // the error or reply message contains this
	}{
		{name: "documented success", status: 200, body: `{"message":"User status updated successfully","status":"success"}`,
			applied: true, msg: "User status updated successfully"},
		{name: "empty 200", status: 200, applied: true},
		{name: "200 saying error", status: 200, body: `{"message":"User is locked","status":"error"}`,
			kind: batch.Permanent, code: batch.CodeRefused, msg: "User is locked"},
		{name: "200 not JSON", status: 200, body: `<html>login</html>`,
			kind: batch.Ambiguous, code: batch.CodeBadResponse, msg: "<html>login</html>"},
		{name: "200 JSON without the envelope", status: 200, body: `{"ok":true}`,
			kind: batch.Ambiguous, code: batch.CodeBadResponse, msg: `{"ok":true}`},
		{name: "400 without the envelope", status: 400, body: "Bad Request",
			kind: batch.Permanent, code: batch.CodeBadResponse, msg: "Bad Request"},
		{name: "documented 401", status: 401, body: `{"message":"Invalid token or user ID","status":"error"}`,
			kind: batch.Permanent, code: batch.CodeUnauthorized, msg: "Invalid token or user ID (bad token, or no such user)"},
		{name: "401 without body", status: 401,
			kind: batch.Permanent, code: batch.CodeUnauthorized, msg: "no such user"},
		{name: "403", status: 403, body: `{"message":"Admins only","status":"error"}`,
			kind: batch.Permanent, code: batch.CodeUnauthorized, msg: "Admins only"},
		{name: "400", status: 400, body: `{"message":"id is required","status":"error"}`,
			kind: batch.Permanent, code: batch.CodeValidation, msg: "id is required"},
		{name: "404 page", status: 404, body: `<h1>Not Found</h1>`,
			kind: batch.Permanent, code: batch.CodeBadResponse, msg: "Not Found"},
		{name: "409 with message", status: 409, body: `{"message":"Busy","status":"error"}`,
			kind: batch.Permanent, code: batch.CodeRefused, msg: "Busy"},
		{name: "429", status: 429, kind: batch.Retryable, code: batch.CodeRateLimited},
		{name: "502 with message", status: 502, body: `{"message":"upstream down","status":"error"}`,
			kind: batch.Ambiguous, code: batch.CodeServer, msg: "upstream down"},
		{name: "token echoed", status: 400, body: `{"message":"bad token ` + goodToken + `","status":"error"}`,
			kind: batch.Permanent, code: batch.CodeValidation, msg: "bad token [redacted]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := clearsquaretest.New(clearsquaretest.Options{Token: goodToken})
			fake.AddUser("u1", clearsquaretest.User{Active: true})
			fake.Faults.Add(fakehttp.Rule{Fault: fakehttp.Fault{Status: tc.status, Body: tc.body}})
			c := newClient(t, adaptertest.Serve(t, fake), goodToken)
			rep, err := c.Apply(context.Background(), toggle("u1"))
			if tc.applied {
				if err != nil || rep.HTTPStatus != tc.status || !strings.Contains(rep.Message, tc.msg) {
					t.Errorf("got %+v, %v; want applied with message %q", rep, err, tc.msg)
				}
				return
			}
			wantError(t, err, tc.kind, tc.code, tc.status, tc.msg)
		})
	}
}

func TestConnectionRefusedIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	c := newClient(t, base, goodToken)
	_, err := c.Apply(context.Background(), toggle("u1"))
	wantError(t, err, batch.Retryable, batch.CodeNetwork, 0, "")
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Token: goodToken}, "base_url"},
		{Config{BaseURL: "admin.example.com", Token: goodToken}, "base_url"},
		{Config{BaseURL: "https://admin.example.com"}, "token"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), goodToken) {
			t.Errorf("New error %q contains the token", err)
		}
	}
}

func wantError(t *testing.T, err error, kind batch.Kind, code string, status int, msg string) {
	t.Helper()
	var berr *batch.Error
	if !errors.As(err, &berr) {
		t.Fatalf("error %v (%T), want *batch.Error", err, err)
	}
	if berr.Kind != kind || berr.Code != code || berr.HTTPStatus != status {
		t.Errorf("error %v: kind %v code %q status %d, want %v %q %d", berr, berr.Kind, berr.Code, berr.HTTPStatus, kind, code, status)
	}
	if !strings.Contains(berr.Message, msg) {
		t.Errorf("message %q, want it to contain %q", berr.Message, msg)
	}
	if strings.Contains(err.Error(), goodToken) {
		t.Errorf("error %q contains the token", err)
	}
}
