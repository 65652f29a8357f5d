package kii

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
	"github.com/userbatch/userbatch/batch"
)

const (
	appID     = "app-4f2a"
	goodToken = "admin-token-good-7c1d"
	badToken  = "admin-token-bad-0e9b"
)

func TestConformance(t *testing.T) {
	adaptertest.Run(t, adaptertest.Fixture{
		Vendor: "kii",
		New:    newHostile,
		Fake: func(t *testing.T) *adaptertest.Fake {
			fake := kiitest.New(kiitest.Options{AppID: appID, Token: goodToken})
			base := adaptertest.Serve(t, fake)
			return &adaptertest.Fake{
				Adapter:        newClient(t, base, appID, goodToken),
				BadCredentials: newClient(t, base, appID, badToken),
				Secrets:        []string{goodToken, badToken},
				Faults:         &fake.Faults,
				AddUser: func(id string, op batch.Op) {
					// In the state op changes: enabled for a disable, and back.
					fake.AddUser(id, kiitest.User{Disabled: op.Action == batch.Enable})
				},
				State:  func(id string) string { return state(fake, id) },
				Writes: fake.Writes,
			}
		},
		Cases: []adaptertest.Case{
			{Op: batch.Op{Action: batch.Disable}, Want: "disabled"},
			{Op: batch.Op{Action: batch.Enable}, Want: "enabled"},
		},
		UnknownUserCode: batch.CodeNotFound,
	})
}

func newClient(t *testing.T, base, app, token string) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: base, AppID: app, Token: token})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// newFake starts a fake holding users, and a Client for it.
func newFake(t *testing.T, users map[string]kiitest.User) (*kiitest.Server, *Client) {
	t.Helper()
	fake := kiitest.New(kiitest.Options{AppID: appID, Token: goodToken})
	for id, u := range users {
		fake.AddUser(id, u)
	}
	return fake, newClient(t, adaptertest.Serve(t, fake), appID, goodToken)
}

func state(fake *kiitest.Server, id string) string {
	u, ok := fake.User(id)
	switch {
	case !ok:
		return "missing"
	case u.Disabled:
		return "disabled"
	}
	return "enabled"
}

func op(user string, a batch.Action) batch.Op { return batch.Op{User: user, Action: a} }

// seen is what the fake was sent, recorded in front of it.
type seen struct {
	method, path string // path as escaped on the wire, base_url prefix stripped
	header       http.Header
	body         []byte
}

func recorder(next http.Handler) (http.Handler, func() []seen) {
	var mu sync.Mutex
	var got []seen
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.EscapedPath(), r.Header.Clone(), body})
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
	const user = "PHONE:+819012345678"
	const wirePath = "/api/apps/" + appID + "/users/PHONE:%2B819012345678/status"
	fake := kiitest.New(kiitest.Options{AppID: appID, Token: goodToken})
	fake.AddUser(user, kiitest.User{})
	h, requests := recorder(fake)
	c := newClient(t, adaptertest.Serve(t, h), appID, goodToken)

	ctx := context.Background()
	if _, err := c.Apply(ctx, op(user, batch.Disable)); err != nil {
		t.Fatalf("Apply disable: %v", err)
	}
	if _, err := c.Apply(ctx, op(user, batch.Enable)); err != nil {
		t.Fatalf("Apply enable: %v", err)
	}
	if _, err := c.Read(ctx, op(user, batch.Disable)); err != nil {
		t.Fatalf("Read: %v", err)
	}

	got := requests()
	want := []struct {
		method, body, contentType string
	}{
		{http.MethodPut, `{"disabled":true}`, "application/vnd.kii.UserStatusUpdateRequest+json"},
		{http.MethodPut, `{"disabled":false}`, "application/vnd.kii.UserStatusUpdateRequest+json"},
		{http.MethodGet, "", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("fake saw %d requests, want %d", len(got), len(want))
	}
	for i, w := range want {
		req := got[i]
		if req.method != w.method || req.path != wirePath {
			t.Errorf("request %d: %s %s, want %s %s", i, req.method, req.path, w.method, wirePath)
		}
		if string(req.body) != w.body {
			t.Errorf("request %d: body %q, want %q (a JSON boolean)", i, req.body, w.body)
		}
		for name, v := range map[string]string{
			"Authorization": "Bearer " + goodToken,
			"X-Kii-Appid":   appID,
			"Content-Type":  w.contentType,
		} {
			vals := req.header.Values(name)
			if (v == "" && len(vals) != 0) || (v != "" && (len(vals) != 1 || vals[0] != v)) {
				t.Errorf("request %d: header %s = %q, want %q", i, name, vals, v)
			}
		}
	}
}

func TestAddressesReachTheirUser(t *testing.T) {
	users := map[string]kiitest.User{
		"LOGIN_NAME:alice":      {},
		"EMAIL:a+b@example.com": {},
		"PHONE:+819012345678":   {},
		"EMAIL:x/y@example.com": {},
		"alice":                 {}, // a bare id that must not be confused with LOGIN_NAME:alice
		"a+b@example.com":       {},
	}
	fake, c := newFake(t, users)
	targets := []string{"LOGIN_NAME:alice", "EMAIL:a+b@example.com", "PHONE:+819012345678", "EMAIL:x/y@example.com"}
	for _, id := range targets {
		if _, err := c.Apply(context.Background(), op(id, batch.Disable)); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	for id := range users {
		want := "enabled"
		for _, target := range targets {
			if id == target {
				want = "disabled"
			}
		}
		if got := state(fake, id); got != want {
			t.Errorf("%s: state %q, want %q", id, got, want)
		}
	}
}

func TestAppIDIsOneEscapedSegment(t *testing.T) {
	const odd = "team/app+1"
	fake := kiitest.New(kiitest.Options{AppID: odd, Token: goodToken})
	fake.AddUser("u1", kiitest.User{})
	c := newClient(t, adaptertest.Serve(t, fake), odd, goodToken)
	if _, err := c.Apply(context.Background(), op("u1", batch.Disable)); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got := state(fake, "u1"); got != "disabled" {
		t.Errorf("state %q, want disabled", got)
	}
}

func TestRead(t *testing.T) {
	fake, c := newFake(t, map[string]kiitest.User{"off": {Disabled: true}, "on": {}})
	for _, tc := range []struct {
		user    string
		action  batch.Action
		inState bool
		current string
	}{
		{"off", batch.Disable, true, "disabled"},
		{"off", batch.Enable, false, "disabled"},
		{"on", batch.Disable, false, "enabled"},
		{"on", batch.Enable, true, "enabled"},
	} {
		st, err := c.Read(context.Background(), op(tc.user, tc.action))
		if err != nil {
			t.Fatalf("Read %s for %s: %v", tc.user, tc.action, err)
		}
		want := batch.State{InState: tc.inState, HTTPStatus: http.StatusOK, Current: tc.current}
		if !reflect.DeepEqual(st, want) {
			t.Errorf("Read %s for %s = %+v, want %+v", tc.user, tc.action, st, want)
		}
	}
	if fake.Writes("off")+fake.Writes("on") != 0 {
		t.Error("reads were counted as writes")
	}
}

func TestSupportsAndIdempotent(t *testing.T) {
	c := newClient(t, "https://api.kii.com", appID, goodToken)
	for _, a := range batch.Actions {
		want := a == batch.Disable || a == batch.Enable
		if c.Supports(a) != want || c.Idempotent(a) != want {
			t.Errorf("%s: Supports %v Idempotent %v, want %v", a, c.Supports(a), c.Idempotent(a), want)
		}
	}
}

func TestUnsupportedActionSendsNothing(t *testing.T) {
	fake, c := newFake(t, map[string]kiitest.User{"u1": {}})
	_, err := c.Apply(context.Background(), op("u1", batch.ToggleStatus))
	wantError(t, err, batch.Permanent, batch.CodeValidation, 0, "disable, enable")
	_, err = c.Read(context.Background(), op("u1", batch.UpgradeRole))
	wantError(t, err, batch.Permanent, batch.CodeValidation, 0, "disable, enable")
	if n := fake.Requests(); n != 0 {
		t.Errorf("fake saw %d requests for unsupported actions", n)
	}
}

func TestWrongAppID(t *testing.T) {
	fake := kiitest.New(kiitest.Options{AppID: appID, Token: goodToken})
	fake.AddUser("u1", kiitest.User{})
	c := newClient(t, adaptertest.Serve(t, fake), "not-"+appID, goodToken)
	_, err := c.Apply(context.Background(), op("u1", batch.Disable))
	wantError(t, err, batch.Permanent, batch.CodeNotFound, http.StatusNotFound, "check app_id")
	_, err = c.Read(context.Background(), op("u1", batch.Disable))
	wantError(t, err, batch.Permanent, batch.CodeNotFound, http.StatusNotFound, "APP_NOT_FOUND")
	if fake.Writes("u1") != 0 || state(fake, "u1") != "enabled" {
		t.Error("a request for another app changed the user")
	}
}

func TestUnknownUserMessage(t *testing.T) {
	_, c := newFake(t, nil)
	_, err := c.Apply(context.Background(), op("LOGIN_NAME:ghost", batch.Disable))
	wantError(t, err, batch.Permanent, batch.CodeNotFound, http.StatusNotFound, "ghost")
}

// TestClassify drives each answer through real HTTP, the fake's fault
// injector answering in Kii's place.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		kind   batch.Kind // 0: applied
		code   string
		msg    string
	}{
		{name: "204", status: 204},
		{name: "200 also applies", status: 200},
		{name: "user not found", status: 404,
			body: `{"errorCode":"USER_NOT_FOUND","message":"User LOGIN_NAME:bob not found","field":"loginName","value":"bob","appID":"x"}`,
			kind: batch.Permanent, code: batch.CodeNotFound, msg: "User LOGIN_NAME:bob not found"},
		{name: "app not found", status: 404, body: `{"errorCode":"APP_NOT_FOUND","message":"The application was not found"}`,
			kind: batch.Permanent, code: batch.CodeNotFound, msg: "app not found: check app_id"},
		{name: "404 not from Kii", status: 404, body: `404 page not found`,
			kind: batch.Permanent, code: batch.CodeBadResponse, msg: "404 page not found"},
		{name: "401", status: 401, body: `{"errorCode":"UNAUTHORIZED","message":"token expired","authenticatedAppID":"x","authenticatedPrincipalID":null}`,
			kind: batch.Permanent, code: batch.CodeUnauthorized, msg: "UNAUTHORIZED: token expired"},
		{name: "403", status: 403, body: `{"errorCode":"UNAUTHORIZED","message":"not an app admin"}`,
			kind: batch.Permanent, code: batch.CodeUnauthorized, msg: "not an app admin"},
		{name: "403 without body", status: 403,
			kind: batch.Permanent, code: batch.CodeUnauthorized, msg: "Forbidden"},
		{name: "400", status: 400, body: `{"errorCode":"INVALID_INPUT_DATA","message":"disabled must be a boolean"}`,
			kind: batch.Permanent, code: batch.CodeValidation, msg: "disabled must be a boolean"},
		{name: "409 from Kii", status: 409, body: `{"errorCode":"CONFLICT","message":"busy"}`,
			kind: batch.Permanent, code: batch.CodeRefused, msg: "CONFLICT: busy"},
		{name: "418 not from Kii", status: 418, body: `teapot`,
			kind: batch.Permanent, code: batch.CodeBadResponse, msg: "teapot"},
		{name: "429 without body", status: 429, kind: batch.Retryable, code: batch.CodeRateLimited},
		{name: "503", status: 503, kind: batch.Ambiguous, code: batch.CodeServer},
		{name: "token echoed", status: 401, body: `{"errorCode":"UNAUTHORIZED","message":"bad token ` + goodToken + `"}`,
			kind: batch.Permanent, code: batch.CodeUnauthorized, msg: "bad token [redacted]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, c := newFake(t, map[string]kiitest.User{"u1": {}})
			fake.Faults.Add(fakehttp.Rule{Fault: fakehttp.Fault{Status: tc.status, Body: tc.body}})
			rep, err := c.Apply(context.Background(), op("u1", batch.Disable))
			if tc.kind == 0 {
				if err != nil || rep.HTTPStatus != tc.status || rep.Already {
					t.Errorf("got %+v, %v; want applied with status %d", rep, err, tc.status)
				}
				return
			}
			wantError(t, err, tc.kind, tc.code, tc.status, tc.msg)
		})
	}
}

// TestReadAnswers checks what Read accepts as a 200, from a stub server:
// the fake always answers correctly.
func TestReadAnswers(t *testing.T) {
	for _, tc := range []struct {
		contentType, body string
		ok                bool
	}{
		{"application/vnd.kii.UserStatusRetrievalResponse+json", `{"disabled":true}`, true},
		{"application/json", `{"disabled":true}`, true},
		{"application/json; charset=utf-8", `{"disabled":true}`, true},
		{"text/html", `{"disabled":true}`, false},
		{"application/json", `{"disabled":"true"}`, false},
		{"application/json", `{}`, false},
		{"application/json", `<html>`, false},
	} {
		stub := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", tc.contentType)
			_, _ = io.WriteString(w, tc.body)
		})
		c := newClient(t, adaptertest.Serve(t, stub), appID, goodToken)
		st, err := c.Read(context.Background(), op("u1", batch.Disable))
		if tc.ok {
			if err != nil || !st.InState || st.Current != "disabled" {
				t.Errorf("%s %s: Read = %+v, %v; want disabled", tc.contentType, tc.body, st, err)
			}
			continue
		}
		wantError(t, err, batch.Permanent, batch.CodeBadResponse, http.StatusOK, "")
	}
}

func TestConnectionRefusedIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	c := newClient(t, base, appID, goodToken)
	_, err := c.Apply(context.Background(), op("u1", batch.Disable))
	wantError(t, err, batch.Retryable, batch.CodeNetwork, 0, "")
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{AppID: appID, Token: goodToken}, "base_url"},
		{Config{BaseURL: "api.kii.com", AppID: appID, Token: goodToken}, "base_url"},
		{Config{BaseURL: "https://api.kii.com", Token: goodToken}, "app_id"},
		{Config{BaseURL: "https://api.kii.com", AppID: appID}, "token"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.cfg, err, tc.want)
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
