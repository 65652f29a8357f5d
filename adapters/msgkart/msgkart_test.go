package msgkart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/adapters/msgkart/msgkarttest"
	"github.com/userbatch/userbatch/batch"
)

// The key has characters that query-escape, so a leak in either form shows.
const (
	testKey   = "s3cr3t+K3y/=&x"
	testEmail = "ops+bot@example.com"
)

func TestConformance(t *testing.T) {
	adaptertest.Run(t, adaptertest.Fixture{
		Vendor: "msgkart",
		New:    newHostile,
		Fake: func(t *testing.T) *adaptertest.Fake {
			fake := msgkarttest.New(msgkarttest.Options{APIKey: testKey, Email: testEmail})
			base := adaptertest.Serve(t, fake)
			const wrongKey = "wrong-key-9f8e7d"
			return &adaptertest.Fake{
				Adapter:        mustNew(t, Config{BaseURL: base, APIKey: testKey, Email: testEmail}),
				BadCredentials: mustNew(t, Config{BaseURL: base, APIKey: wrongKey, Email: testEmail}),
				Secrets:        []string{testKey, wrongKey},
				Faults:         &fake.Faults,
				AddUser: func(id string, op batch.Op) {
					st := msgkarttest.StatusAvailable
					if op.Action == batch.Enable {
						st = msgkarttest.StatusDisabled
					}
					fake.AddUser(id, msgkarttest.User{Status: st})
				},
				State: func(id string) string {
					u, ok := fake.User(id)
					if !ok {
						return "(no such user)"
					}
					return u.Status
				},
				Writes: fake.Writes,
			}
		},
		Cases: []adaptertest.Case{
			{Op: batch.Op{Action: batch.Disable}, Want: "Disabled"},
			{Op: batch.Op{Action: batch.Enable}, Want: "Available"},
		},
		UnknownUserCode: batch.CodeNotFound,
	})
}

func mustNew(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// seen is what a recording handler saw of one request.
type seen struct {
	method, path, query, body string
	contentLength             int64
}

// recorder serves h and records every request it passes on.
type recorder struct {
	h    http.Handler
	mu   sync.Mutex
	reqs []seen
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(body), r.ContentLength})
	rec.mu.Unlock()
	rec.h.ServeHTTP(w, r)
}

func (rec *recorder) last(t *testing.T) seen {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) == 0 {
		t.Fatal("no request reached the server")
	}
	return rec.reqs[len(rec.reqs)-1]
}

// setup starts a fake with testKey/testEmail behind a recorder.
func setup(t *testing.T, cfg Config) (*Client, *msgkarttest.Server, *recorder) {
	t.Helper()
	fake := msgkarttest.New(msgkarttest.Options{APIKey: testKey, Email: testEmail})
	rec := &recorder{h: fake}
	cfg.BaseURL = adaptertest.Serve(t, rec)
	if cfg.APIKey == "" {
		cfg.APIKey = testKey
	}
	return mustNew(t, cfg), fake, rec
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		cfg     Config
		wantErr string // "" means New succeeds
	}{
		{Config{APIKey: "k", Email: "e@x"}, "base_url"},
		{Config{BaseURL: "  ", APIKey: "k"}, "base_url"},
		{Config{BaseURL: "alb-backend.msgkart.com", APIKey: "k"}, "base_url"},
		{Config{BaseURL: "ftp://alb-backend.msgkart.com", APIKey: "k"}, "base_url"},
		{Config{BaseURL: "https://alb-backend.msgkart.com", Email: "e@x"}, "apikey"},
		{Config{BaseURL: "https://alb-backend.msgkart.com", APIKey: "k"}, ""},
		{Config{BaseURL: "https://alb-backend.msgkart.com/prefix/", APIKey: "k", Email: "e@x"}, ""},
	} {
		_, err := New(tc.cfg)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("New(%+v): %v", tc.cfg, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.cfg, err, tc.wantErr)
		}
	}
}

func TestRequestEncoding(t *testing.T) {
	c, fake, rec := setup(t, Config{Email: testEmail})
	const user = "team/a b+c"
	fake.AddUser(user, msgkarttest.User{Status: msgkarttest.StatusAvailable})

	rep, err := c.Apply(context.Background(), batch.Op{User: user, Action: batch.Disable})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if rep.HTTPStatus != 200 || rep.Message != "User disabled successfully" || rep.Already {
		t.Errorf("reply %+v", rep)
	}
	got := rec.last(t)
	// The recorder sits behind the suite's StripPrefix, so the prefix is gone.
	want := seen{method: "POST", path: "/api/v1/business/user/team%2Fa%20b%2Bc/disable",
		query: "apikey=s3cr3t%2BK3y%2F%3D%26x&email=ops%2Bbot%40example.com"}
	if got != want {
		t.Errorf("request\n got %+v\nwant %+v", got, want)
	}

	if _, err := c.Read(context.Background(), batch.Op{User: user, Action: batch.Enable}); err != nil {
		t.Fatalf("Read: %v", err)
	}
	want.method, want.path = "GET", "/api/v1/business/user/team%2Fa%20b%2Bc/status"
	if got := rec.last(t); got != want {
		t.Errorf("read request\n got %+v\nwant %+v", got, want)
	}
}

func TestRowEmailOverridesTarget(t *testing.T) {
	// The fake accepts only testEmail; the target's own email is wrong.
	c, fake, rec := setup(t, Config{Email: "someone-else@example.com"})
	fake.AddUser("u1", msgkarttest.User{Status: msgkarttest.StatusAvailable})

	_, err := c.Apply(context.Background(), batch.Op{User: "u1", Action: batch.Disable})
	wantErr(t, err, batch.Permanent, batch.CodeUnauthorized, 401, "Invalid credentials")
	if !strings.Contains(rec.last(t).query, "email=someone-else%40example.com") {
		t.Errorf("the target email was not sent: %q", rec.last(t).query)
	}

	if _, err := c.Apply(context.Background(), batch.Op{User: "u1", Action: batch.Disable, Cells: []batch.Cell{{Column: "email", Value: testEmail}}}); err != nil {
		t.Fatalf("Apply with the row's email: %v", err)
	}
	if !strings.Contains(rec.last(t).query, "email=ops%2Bbot%40example.com") {
		t.Errorf("the row email was not sent: %q", rec.last(t).query)
	}
	if u, _ := fake.User("u1"); u.Status != msgkarttest.StatusDisabled {
		t.Errorf("status %q, want Disabled", u.Status)
	}
	st, err := c.Read(context.Background(), batch.Op{User: "u1", Action: batch.Disable, Cells: []batch.Cell{{Column: "email", Value: testEmail}}})
	if err != nil || !st.InState {
		t.Errorf("Read with the row's email = %+v, %v", st, err)
	}
}

func TestNoEmail(t *testing.T) {
	c, fake, _ := setup(t, Config{})
	fake.AddUser("u1", msgkarttest.User{})
	op := batch.Op{User: "u1", Action: batch.Disable}

	_, err := c.Apply(context.Background(), op)
	wantErr(t, err, batch.Permanent, batch.CodeValidation, 0, "no email: set email on the target or in the row")
	_, err = c.Read(context.Background(), op)
	wantErr(t, err, batch.Permanent, batch.CodeValidation, 0, "no email: set email on the target or in the row")
	if n := fake.Requests(); n != 0 {
		t.Errorf("%d requests sent without an email", n)
	}
}

func TestUnsupportedAction(t *testing.T) {
	c, fake, _ := setup(t, Config{Email: testEmail})
	for _, a := range []batch.Action{batch.UpgradeRole, batch.DowngradeRole, batch.ToggleStatus} {
		op := batch.Op{User: "u1", Action: a, Role: "Member"}
		_, err := c.Apply(context.Background(), op)
		wantErr(t, err, batch.Permanent, batch.CodeValidation, 0, "msgkart cannot "+string(a)+" (supported: disable, enable)")
		_, err = c.Read(context.Background(), op)
		wantErr(t, err, batch.Permanent, batch.CodeValidation, 0, "msgkart cannot "+string(a)+" (supported: disable, enable)")
		if c.Idempotent(a) {
			t.Errorf("Idempotent(%s) = true for an action msgkart lacks", a)
		}
	}
	if n := fake.Requests(); n != 0 {
		t.Errorf("%d requests sent for unsupported actions", n)
	}
}

func TestReadStatuses(t *testing.T) {
	c, fake, _ := setup(t, Config{Email: testEmail})
	for _, status := range []string{"Available", "Busy", "InCall", "Away", "Disabled"} {
		fake.AddUser("u1", msgkarttest.User{Status: status})
		disabled := status == "Disabled"
		for _, a := range []batch.Action{batch.Enable, batch.Disable} {
			st, err := c.Read(context.Background(), batch.Op{User: "u1", Action: a})
			if err != nil {
				t.Fatalf("%s, %s: %v", status, a, err)
			}
			want := batch.State{InState: disabled == (a == batch.Disable), HTTPStatus: 200, Current: "userStatus=" + status}
			if !reflect.DeepEqual(st, want) {
				t.Errorf("%s, %s: Read = %+v, want %+v", status, a, st, want)
			}
		}
	}
}

func TestEnableKeepsBusy(t *testing.T) {
	c, fake, _ := setup(t, Config{Email: testEmail})
	fake.AddUser("u1", msgkarttest.User{Status: msgkarttest.StatusBusy})
	st, err := c.Read(context.Background(), batch.Op{User: "u1", Action: batch.Enable})
	if err != nil || !st.InState {
		t.Fatalf("a Busy user should read as enabled: %+v, %v", st, err)
	}
	if _, err := c.Apply(context.Background(), batch.Op{User: "u1", Action: batch.Enable}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if u, _ := fake.User("u1"); u.Status != msgkarttest.StatusBusy {
		t.Errorf("enable changed Busy to %q", u.Status)
	}
}

// TestErrorMapping injects every answer the contract mentions (and a few it
// does not) and checks how each is classified.
func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		kind   batch.Kind
		code   string
		msg    string
	}{
		{"missing params", 400, `{"message":"apikey and email are required"}`, batch.Permanent, batch.CodeValidation, "apikey and email are required"},
		{"400 unknown user", 400, `{"message":"User not found"}`, batch.Permanent, batch.CodeNotFound, "User not found"},
		{"400 user does not exist", 400, `{"message":"User does not exist for this business"}`, batch.Permanent, batch.CodeNotFound, "User does not exist for this business"},
		{"400 invalid user id", 400, `{"message":"Invalid userId"}`, batch.Permanent, batch.CodeValidation, "Invalid userId"},
		{"400 error key", 400, `{"error":"Bad Request"}`, batch.Permanent, batch.CodeValidation, "Bad Request"},
		{"400 plain text", 400, "bad request", batch.Permanent, batch.CodeValidation, "bad request"},
		{"401", 401, `{"message":"Invalid credentials"}`, batch.Permanent, batch.CodeUnauthorized, "Invalid credentials"},
		{"401 empty", 401, "", batch.Permanent, batch.CodeUnauthorized, "Unauthorized"},
		{"403", 403, `{"message":"Access denied"}`, batch.Permanent, batch.CodeUnauthorized, "Access denied"},
		{"404", 404, `{"message":"User not found"}`, batch.Permanent, batch.CodeNotFound, "User not found"},
		{"404 empty: not msgkart's", 404, "", batch.Permanent, batch.CodeBadResponse, "unexpected answer: (empty body)"},
		{"404 page: not msgkart's", 404, "404 page not found\n", batch.Permanent, batch.CodeBadResponse, "unexpected answer: 404 page not found"},
		{"400 HTML page: not msgkart's", 400, "<html><body>400 Bad Request</body></html>", batch.Permanent, batch.CodeBadResponse, "unexpected answer: <html><body>400 Bad Request</body></html>"},
		{"429", 429, "", batch.Retryable, batch.CodeRateLimited, "rate limited"},
		{"429 with message", 429, `{"message":"Too many requests"}`, batch.Retryable, batch.CodeRateLimited, "Too many requests"},
		{"500", 500, `{"message":"Internal server error"}`, batch.Ambiguous, batch.CodeServer, "Internal server error"},
		{"502 html", 502, "<html><body>\n<h1>502 Bad Gateway</h1>\n</body></html>", batch.Ambiguous, batch.CodeServer, "<html><body> <h1>502 Bad Gateway</h1> </body></html>"},
		{"503 empty", 503, "", batch.Ambiguous, batch.CodeServer, "Service Unavailable"},
		{"418", 418, `{"message":"teapot"}`, batch.Permanent, batch.CodeBadResponse, `unexpected answer: {"message":"teapot"}`},
		{"302", 302, "", batch.Permanent, batch.CodeBadResponse, "unexpected answer: (empty body)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, fake, _ := setup(t, Config{Email: testEmail})
			fake.AddUser("u1", msgkarttest.User{Status: msgkarttest.StatusDisabled})
			for _, call := range []struct {
				method string
				do     func() error
			}{
				{"POST", func() error {
					_, err := c.Apply(context.Background(), batch.Op{User: "u1", Action: batch.Enable})
					return err
				}},
				{"GET", func() error {
					_, err := c.Read(context.Background(), batch.Op{User: "u1", Action: batch.Enable})
					return err
				}},
			} {
				fake.Faults.Add(fakehttp.Rule{Times: 1, Fault: fakehttp.Fault{Status: tc.status, Body: tc.body}})
				wantErr(t, call.do(), tc.kind, tc.code, tc.status, tc.msg)
			}
			if n := fake.Writes("u1"); n != 0 {
				t.Errorf("an injected error changed state: %d writes", n)
			}
		})
	}
}

func TestSuccessBodies(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		msg    string
	}{
		{200, "User enabled successfully", ""}, // not JSON: still a success
		{200, `{"message":"User enabled successfully","userStatus":"Available"}`, "User enabled successfully"},
		{201, "", ""},
		{204, "", ""},
	} {
		c, fake, _ := setup(t, Config{Email: testEmail})
		fake.AddUser("u1", msgkarttest.User{Status: msgkarttest.StatusDisabled})
		fake.Faults.Add(fakehttp.Rule{Times: 1, Fault: fakehttp.Fault{Status: tc.status, Body: tc.body}})
		rep, err := c.Apply(context.Background(), batch.Op{User: "u1", Action: batch.Enable})
		if err != nil {
			t.Errorf("%d %q: %v", tc.status, tc.body, err)
			continue
		}
		if want := (batch.Reply{HTTPStatus: tc.status, Message: tc.msg}); rep != want {
			t.Errorf("%d %q: reply %+v, want %+v", tc.status, tc.body, rep, want)
		}
	}
}

func TestReadBadAnswer(t *testing.T) {
	for _, body := range []string{"", "Available", `{"status":"Available"}`, `{"userStatus":""}`, `{"userStatus":7}`} {
		c, fake, _ := setup(t, Config{Email: testEmail})
		fake.AddUser("u1", msgkarttest.User{})
		fake.Faults.Add(fakehttp.Rule{Times: 1, Fault: fakehttp.Fault{Status: 200, Body: body}})
		_, err := c.Read(context.Background(), batch.Op{User: "u1", Action: batch.Enable})
		berr := wantErr(t, err, batch.Permanent, batch.CodeBadResponse, 200, "")
		if berr != nil && !strings.HasPrefix(berr.Message, "status answer without userStatus") {
			t.Errorf("body %q: message %q", body, berr.Message)
		}
	}
}

func TestFakeErrorsCarryVendorText(t *testing.T) {
	c, _, _ := setup(t, Config{Email: testEmail})
	_, err := c.Apply(context.Background(), batch.Op{User: "ghost", Action: batch.Disable})
	wantErr(t, err, batch.Permanent, batch.CodeNotFound, 404, "User not found")
	_, err = c.Read(context.Background(), batch.Op{User: "ghost", Action: batch.Disable})
	wantErr(t, err, batch.Permanent, batch.CodeNotFound, 404, "User not found")
}

// TestKeyNeverLeaks covers the paths where the key could surface: transport
// errors, which come from a URL that holds it, and vendor answers that echo
// the request.
func TestKeyNeverLeaks(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		c := mustNew(t, Config{BaseURL: "http://" + addr + "/p", APIKey: testKey, Email: testEmail})
		_, err = c.Apply(context.Background(), batch.Op{User: "u1", Action: batch.Disable})
		wantErr(t, err, batch.Retryable, batch.CodeNetwork, 0, "")
		noKey(t, err)
		_, err = c.Read(context.Background(), batch.Op{User: "u1", Action: batch.Disable})
		wantErr(t, err, batch.Retryable, batch.CodeNetwork, 0, "")
		noKey(t, err)
	})
	t.Run("echoed by the vendor", func(t *testing.T) {
		// A server that quotes the request URL in every answer, raw and decoded.
		echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.Method {
			case http.MethodPost:
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"message":"bad request %s apikey=%s"}`, r.URL.String(), r.URL.Query().Get("apikey"))
			default:
				w.WriteHeader(http.StatusBadGateway)
				fmt.Fprintf(w, "<html>upstream failed for %s</html>", r.URL.RequestURI())
			}
		})
		c := mustNew(t, Config{BaseURL: adaptertest.Serve(t, echo), APIKey: testKey, Email: testEmail})
		_, err := c.Apply(context.Background(), batch.Op{User: "u1", Action: batch.Disable})
		berr := wantErr(t, err, batch.Permanent, batch.CodeValidation, 400, "")
		noKey(t, err)
		if berr != nil && !strings.Contains(berr.Message, httpcall.Redacted) {
			t.Errorf("message %q: the echo should show as %s", berr.Message, httpcall.Redacted)
		}
		_, err = c.Read(context.Background(), batch.Op{User: "u1", Action: batch.Disable})
		wantErr(t, err, batch.Ambiguous, batch.CodeServer, 502, "")
		noKey(t, err)
	})
}

func TestRedirectNotFollowed(t *testing.T) {
	other := &recorder{h: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
	elsewhere := adaptertest.Serve(t, other)
	moved := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere+r.URL.RequestURI(), http.StatusFound)
	})
	c := mustNew(t, Config{BaseURL: adaptertest.Serve(t, moved), APIKey: testKey, Email: testEmail})
	_, err := c.Apply(context.Background(), batch.Op{User: "u1", Action: batch.Disable})
	wantErr(t, err, batch.Permanent, batch.CodeBadResponse, 302, "")
	noKey(t, err)
	// Apply is synchronous: a followed redirect would have been recorded by now.
	other.mu.Lock()
	defer other.mu.Unlock()
	if len(other.reqs) != 0 {
		t.Errorf("the redirect was followed, key and all: %+v", other.reqs)
	}
}

// noKey fails when the key shows, in either spelling, anywhere in err's chain.
func noKey(t *testing.T, err error) {
	t.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		for _, text := range []string{e.Error(), fmt.Sprintf("%+v", e)} {
			for _, key := range []string{testKey, "s3cr3t%2BK3y%2F%3D%26x", "s3cr3t"} {
				if strings.Contains(text, key) {
					t.Errorf("error text %q holds the key", text)
				}
			}
		}
	}
}

// wantErr checks err's classification; msg "" skips the message check.
func wantErr(t *testing.T, err error, kind batch.Kind, code string, status int, msg string) *batch.Error {
	t.Helper()
	var berr *batch.Error
	if !errors.As(err, &berr) {
		t.Errorf("error %v (%T), want *batch.Error", err, err)
		return nil
	}
	if berr.Kind != kind || berr.Code != code || berr.HTTPStatus != status {
		t.Errorf("error %v: %v %s HTTP %d, want %v %s HTTP %d", berr, berr.Kind, berr.Code, berr.HTTPStatus, kind, code, status)
	}
	if msg != "" && berr.Message != msg {
		t.Errorf("message %q, want %q", berr.Message, msg)
	}
	return berr
}
