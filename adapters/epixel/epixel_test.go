package epixel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/adapters/epixel"
	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/batch"
)

const (
	apiKey   = "key-0123456789"
	token    = "tok-abcdefghij"
	badKey   = "key-wrong"
	badToken = "tok-wrong"
)

func TestConformance(t *testing.T) {
	adaptertest.Run(t, adaptertest.Fixture{
		Vendor: "epixel",
		New:    newHostile,
		Ops:    []batch.Op{{User: "u1", Action: batch.Disable}, downCust},
		Fake: func(t *testing.T) *adaptertest.Fake {
			fake := epixeltest.New(epixeltest.Options{APIKey: apiKey, Token: token})
			base := adaptertest.Serve(t, fake)
			return &adaptertest.Fake{
				Adapter:        newClient(t, base),
				BadCredentials: mustNew(t, epixel.Config{BaseURL: base, APIKey: badKey, Token: badToken}),
				Secrets:        []string{apiKey, token, badKey, badToken},
				Faults:         &fake.Faults,
				AddUser:        func(id string, op batch.Op) { fake.AddUser(id, userBefore(op)) },
				State:          func(id string) string { return state(fake, id) },
				Writes:         fake.Writes,
			}
		},
		Cases: []adaptertest.Case{
			{Op: batch.Op{Action: batch.Disable}, Want: "blocked=true role=Customer"},
			{Op: batch.Op{Action: batch.Enable}, Want: "blocked=false role=Customer"},
			{Op: batch.Op{Action: batch.UpgradeRole, Role: "Member"},
				Want: "blocked=false role=Member", AgainAlready: true},
			{Op: batch.Op{Action: batch.DowngradeRole, Role: "Customer"},
				Want: "blocked=false role=Customer", AgainAlready: true},
		},
		UnknownUserCode: batch.CodeNotFound,
	})
}

// userBefore is a user that op would change.
func userBefore(op batch.Op) epixeltest.User {
	switch op.Action {
	case batch.Enable:
		return epixeltest.User{Blocked: true, Role: epixeltest.Customer}
	case batch.DowngradeRole:
		return epixeltest.User{Role: epixeltest.Member}
	}
	return epixeltest.User{Role: epixeltest.Customer}
}

func state(fake *epixeltest.Server, id string) string {
	u, ok := fake.User(id)
	if !ok {
		return "missing"
	}
	return fmt.Sprintf("blocked=%t role=%s", u.Blocked, u.Role)
}

func mustNew(t *testing.T, cfg epixel.Config) *epixel.Client {
	t.Helper()
	c, err := epixel.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func newClient(t *testing.T, base string) *epixel.Client {
	return mustNew(t, epixel.Config{BaseURL: base, APIKey: apiKey, Token: token})
}

// newFake serves a fresh fake and returns it with a client configured for it.
func newFake(t *testing.T) (*epixeltest.Server, *epixel.Client) {
	fake := epixeltest.New(epixeltest.Options{APIKey: apiKey, Token: token})
	return fake, newClient(t, adaptertest.Serve(t, fake))
}

// seen is one request as it reached the server.
type seen struct {
	method, path string
	header       http.Header
	mediaType    string
	fields       map[string]string
}

// recorder notes every request, then hands it on to the fake unchanged.
type recorder struct {
	t    *testing.T
	next http.Handler
	mu   sync.Mutex
	reqs []seen
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rec.t.Errorf("reading the request body: %v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	s := seen{method: r.Method, path: r.URL.EscapedPath(), header: r.Header.Clone(), mediaType: mt,
		fields: multipartFields(rec.t, body, params["boundary"])}
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, s)
	rec.mu.Unlock()
	rec.next.ServeHTTP(w, r)
}

func (rec *recorder) last() seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) == 0 {
		rec.t.Fatal("no request reached the server")
	}
	return rec.reqs[len(rec.reqs)-1]
}

// multipartFields reads every part as a plain form field; a file part or a
// repeated field is an error.
func multipartFields(t *testing.T, body []byte, boundary string) map[string]string {
	fields := map[string]string{}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return fields
		}
		if err != nil {
			t.Errorf("multipart body: %v", err)
			return fields
		}
		if p.FileName() != "" {
			t.Errorf("part %q is a file", p.FormName())
		}
		v, _ := io.ReadAll(p)
		if _, dup := fields[p.FormName()]; dup {
			t.Errorf("field %q sent twice", p.FormName())
		}
		fields[p.FormName()] = string(v)
	}
}

func TestRequestEncoding(t *testing.T) {
	fake := epixeltest.New(epixeltest.Options{APIKey: apiKey, Token: token, AutoCreate: true})
	rec := &recorder{t: t, next: fake}
	c := newClient(t, adaptertest.Serve(t, rec))
	const user = "u/1 ?&=ü"
	for _, tc := range []struct {
		op     batch.Op
		path   string
		fields map[string]string
	}{
		{batch.Op{Action: batch.Disable}, "/block/user/", map[string]string{"unique_id": user}},
		{batch.Op{Action: batch.Enable}, "/unblock/user/", map[string]string{"unique_id": user}},
		{batch.Op{Action: batch.UpgradeRole, Role: "Preferred Customer", Cells: []batch.Cell{{Column: "place_genealogy", Value: "true"}}},
			"/upgrade/user-role/", map[string]string{"unique_id": user, "upgrade_to": "Preferred Customer", "api_place_genealogy": "True"}},
		{batch.Op{Action: batch.UpgradeRole, Role: "Member"},
			"/upgrade/user-role/", map[string]string{"unique_id": user, "upgrade_to": "Member"}},
		{batch.Op{Action: batch.DowngradeRole, Role: "Preferred Customer", Cells: []batch.Cell{{Column: "block_user", Value: "true"}}},
			"/downgrade/user-role/", map[string]string{"unique_id": user, "downgrade_to": "Preferred Customer", "api_block_user": "True"}},
		{batch.Op{Action: batch.DowngradeRole, Role: "Customer"},
			"/downgrade/user-role/", map[string]string{"unique_id": user, "downgrade_to": "Customer", "api_block_user": "False"}},
	} {
		op := tc.op
		op.User = user
		if _, err := c.Apply(context.Background(), op); err != nil {
			t.Fatalf("%s %s: %v", op.Action, op.Role, err)
		}
		got := rec.last()
		// Serve routes only what arrives under its base path prefix, and
		// strips it before the recorder sees the path.
		if got.method != http.MethodPost || got.path != tc.path {
			t.Errorf("%s: %s %s, want POST %s", op.Action, got.method, got.path, tc.path)
		}
		if k, a := got.header.Get("apikey"), got.header.Get("Authorization"); k != apiKey || a != "Bearer "+token {
			t.Errorf("%s: apikey %q, Authorization %q", op.Action, k, a)
		}
		if got.mediaType != "multipart/form-data" {
			t.Errorf("%s: content type %q, want multipart/form-data", op.Action, got.mediaType)
		}
		if !reflect.DeepEqual(got.fields, tc.fields) {
			t.Errorf("%s %s: fields %q, want %q", op.Action, op.Role, got.fields, tc.fields)
		}
	}
}

func TestFlagsFalse(t *testing.T) {
	fake := epixeltest.New(epixeltest.Options{APIKey: apiKey, Token: token})
	rec := &recorder{t: t, next: fake}
	c := newClient(t, adaptertest.Serve(t, rec))
	fake.AddUser("u1", epixeltest.User{Role: epixeltest.Customer, Genealogy: true})
	op := batch.Op{User: "u1", Action: batch.UpgradeRole, Role: "Preferred Customer", Cells: nil}
	if _, err := c.Apply(context.Background(), op); err != nil {
		t.Fatal(err)
	}
	if got := rec.last().fields["api_place_genealogy"]; got != "False" {
		t.Errorf("api_place_genealogy %q, want False", got)
	}
	if u, _ := fake.User("u1"); u.Role != epixeltest.PreferredCustomer || u.Genealogy {
		t.Errorf("user %+v, want a Preferred Customer not placed in genealogy", u)
	}
}

func TestDowngradeBlocks(t *testing.T) {
	fake, c := newFake(t)
	fake.AddUser("u1", epixeltest.User{Role: epixeltest.Member})
	op := batch.Op{User: "u1", Action: batch.DowngradeRole, Role: "Preferred Customer", Cells: []batch.Cell{{Column: "block_user", Value: "true"}}}
	if _, err := c.Apply(context.Background(), op); err != nil {
		t.Fatal(err)
	}
	if got := state(fake, "u1"); got != "blocked=true role=Preferred Customer" {
		t.Errorf("state %q", got)
	}
}

// wantErr checks that err is a *batch.Error of this kind, code, status and message.
func wantErr(t *testing.T, err error, kind batch.Kind, code string, status int, msg string) {
	t.Helper()
	var berr *batch.Error
	if !errors.As(err, &berr) {
		t.Fatalf("error %v (%T), want *batch.Error", err, err)
	}
	if berr.Kind != kind || berr.Code != code || berr.HTTPStatus != status || berr.Message != msg {
		t.Errorf("got %v %q %d %q, want %v %q %d %q",
			berr.Kind, berr.Code, berr.HTTPStatus, berr.Message, kind, code, status, msg)
	}
}

// TestRoleRefusals drives every documented role 403 through the fake.
func TestRoleRefusals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		role    string // the user's role before
		op      batch.Op
		already bool
		code    string // when not already
		msg     string
	}{
		{"upgrade Member on Member", epixeltest.Member,
			batch.Op{Action: batch.UpgradeRole, Role: "Member"}, true, "", "User already have a member role."},
		{"upgrade PC on PC", epixeltest.PreferredCustomer,
			batch.Op{Action: batch.UpgradeRole, Role: "Preferred Customer", Cells: []batch.Cell{{Column: "place_genealogy", Value: "true"}}}, true, "", "User already have a preferred customer role."},
		{"upgrade PC on Member", epixeltest.Member,
			batch.Op{Action: batch.UpgradeRole, Role: "Preferred Customer"}, false, batch.CodeConflict, "User role is already upgraded."},
		{"downgrade Customer on Customer", epixeltest.Customer,
			batch.Op{Action: batch.DowngradeRole, Role: "Customer"}, true, "", "User already have a customer role."},
		{"downgrade PC on PC", epixeltest.PreferredCustomer,
			batch.Op{Action: batch.DowngradeRole, Role: "Preferred Customer"}, true, "", "User already have a preferred customer role."},
		{"downgrade PC on Customer", epixeltest.Customer,
			batch.Op{Action: batch.DowngradeRole, Role: "Preferred Customer"}, false, batch.CodeConflict, "User already have a downgraded role."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, c := newFake(t)
			fake.AddUser("u1", epixeltest.User{Role: tc.role})
			op := tc.op
			op.User = "u1"
			rep, err := c.Apply(context.Background(), op)
			if tc.already {
				want := batch.Reply{Already: true, HTTPStatus: http.StatusForbidden, Message: tc.msg}
				if err != nil || rep != want {
					t.Errorf("Apply = %+v, %v; want %+v", rep, err, want)
				}
			} else {
				wantErr(t, err, batch.Permanent, tc.code, http.StatusForbidden, tc.msg)
			}
			if u, _ := fake.User("u1"); u.Role != tc.role {
				t.Errorf("role changed to %q", u.Role)
			}
		})
	}
}

func TestValidationFromFake(t *testing.T) {
	fake, c := newFake(t)
	_, err := c.Apply(context.Background(), batch.Op{User: "ghost", Action: batch.Disable})
	wantErr(t, err, batch.Permanent, batch.CodeNotFound, http.StatusBadRequest, "User not exist or invalid unique id.")

	_, err = c.Apply(context.Background(), batch.Op{User: strings.Repeat("x", 256), Action: batch.Enable})
	wantErr(t, err, batch.Permanent, batch.CodeValidation, http.StatusBadRequest,
		"unique_id: Ensure this field has no more than 255 characters.")

	_, err = c.Apply(context.Background(), batch.Op{User: " ", Action: batch.Enable})
	wantErr(t, err, batch.Permanent, batch.CodeValidation, http.StatusBadRequest,
		"unique_id: This field is required and its may not be blank.")
	if fake.Writes(" ") != 0 || fake.Writes("ghost") != 0 {
		t.Error("the fake counted a rejected request as a write")
	}
}

func TestBadCredentialsMessage(t *testing.T) {
	fake := epixeltest.New(epixeltest.Options{APIKey: apiKey, Token: token})
	fake.AddUser("u1", epixeltest.User{})
	c := mustNew(t, epixel.Config{BaseURL: adaptertest.Serve(t, fake), APIKey: apiKey, Token: badToken})
	_, err := c.Apply(context.Background(), batch.Op{User: "u1", Action: batch.Disable})
	wantErr(t, err, batch.Permanent, batch.CodeUnauthorized, http.StatusUnauthorized, "Invalid API key or token.")
}

// canned serves one fixed answer and counts the requests.
type canned struct {
	status int
	header map[string]string
	body   string
	mu     sync.Mutex
	n      int
}

func (h *canned) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.n++
	h.mu.Unlock()
	for k, v := range h.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(h.status)
	_, _ = io.WriteString(w, h.body)
}

func (h *canned) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

func applyCanned(t *testing.T, h *canned, op batch.Op) (batch.Reply, error) {
	t.Helper()
	c := newClient(t, adaptertest.Serve(t, h))
	if op.User == "" {
		op.User = "u1"
	}
	return c.Apply(context.Background(), op)
}

func env(status int, errs string) string {
	return fmt.Sprintf(`{"status_code":%d,"errors":%s,"data":{}}`, status, errs)
}

func detail(status int, msg string) string {
	return env(status, fmt.Sprintf(`{"detail":%q}`, msg))
}

var (
	upMember   = batch.Op{Action: batch.UpgradeRole, Role: "Member"}
	upPC       = batch.Op{Action: batch.UpgradeRole, Role: "Preferred Customer"}
	downCust   = batch.Op{Action: batch.DowngradeRole, Role: "Customer"}
	downPC     = batch.Op{Action: batch.DowngradeRole, Role: "Preferred Customer"}
	disableOp  = batch.Op{Action: batch.Disable}
	freeGenMsg = "Free user place genealogy disabled, can't upgrade user role."
)

// TestForbiddenMessages covers every 403 message the documentation lists, and
// variations of the ones that decide already versus conflict.
func TestForbiddenMessages(t *testing.T) {
	type want struct {
		already bool
		code    string
		msg     string
	}
	for _, tc := range []struct {
		op   batch.Op
		body string
		want want
	}{
		{upMember, detail(403, "User already have a member role."), want{true, "", "User already have a member role."}},
		{upMember, detail(403, "  user ALREADY have a  member role "), want{true, "", "user ALREADY have a member role"}},
		{upMember, detail(403, "User already has a member role"), want{true, "", "User already has a member role"}},
		{upPC, detail(403, "User already have a preferred customer role."), want{true, "", "User already have a preferred customer role."}},
		{downPC, detail(403, "User already have a Preferred Customer role"), want{true, "", "User already have a Preferred Customer role"}},
		{downCust, detail(403, "User already have a customer role."), want{true, "", "User already have a customer role."}},
		{upPC, detail(403, "User role is already upgraded."), want{false, batch.CodeConflict, "User role is already upgraded."}},
		{upPC, detail(403, "user role is already upgraded"), want{false, batch.CodeConflict, "user role is already upgraded"}},
		{downPC, detail(403, "User already have a downgraded role."), want{false, batch.CodeConflict, "User already have a downgraded role."}},
		// an "already" naming a role other than the one asked for is a conflict
		{upPC, detail(403, "User already have a member role."), want{false, batch.CodeConflict, "User already have a member role."}},
		{downPC, detail(403, "User already have a customer role."), want{false, batch.CodeConflict, "User already have a customer role."}},
		{downCust, detail(403, "User already have a preferred customer role."), want{false, batch.CodeConflict, "User already have a preferred customer role."}},
		// not about the role: refused
		{upPC, detail(403, freeGenMsg), want{false, batch.CodeRefused, freeGenMsg}},
		{upMember, detail(403, "Free package for user role upgrade is not created."), want{false, batch.CodeRefused, "Free package for user role upgrade is not created."}},
		{upMember, detail(403, "User role upgrade option not found."), want{false, batch.CodeRefused, "User role upgrade option not found."}},
		{upPC, detail(403, "Created free package is not a customer privilaged package."), want{false, batch.CodeRefused, "Created free package is not a customer privilaged package."}},
		{upMember, detail(403, "Created free package is not a member privilaged package."), want{false, batch.CodeRefused, "Created free package is not a member privilaged package."}},
		{downCust, detail(403, "Somthing went wrong."), want{false, batch.CodeRefused, "Somthing went wrong."}},
		// a role message on a block is not about the block
		{disableOp, detail(403, "User already have a member role."), want{false, batch.CodeRefused, "User already have a member role."}},
		// a bare framework body, and no body at all
		{upMember, `{"detail":"User already have a member role."}`, want{true, "", "User already have a member role."}},
		{upMember, ``, want{false, batch.CodeRefused, "(empty body)"}},
	} {
		rep, err := applyCanned(t, &canned{status: 403, body: tc.body}, tc.op)
		name := fmt.Sprintf("%s %s <- %s", tc.op.Action, tc.op.Role, tc.body)
		if tc.want.already {
			want := batch.Reply{Already: true, HTTPStatus: 403, Message: tc.want.msg}
			if err != nil || rep != want {
				t.Errorf("%s: %+v, %v; want %+v", name, rep, err, want)
			}
			continue
		}
		var berr *batch.Error
		if !errors.As(err, &berr) || berr.Kind != batch.Permanent || berr.Code != tc.want.code ||
			berr.HTTPStatus != 403 || berr.Message != tc.want.msg {
			t.Errorf("%s: %+v, %v; want permanent %s %q", name, rep, err, tc.want.code, tc.want.msg)
		}
	}
}

func TestStatusMapping(t *testing.T) {
	for _, tc := range []struct {
		name   string
		h      *canned
		kind   batch.Kind
		code   string
		msg    string
		status int
	}{
		{"400 unknown user", &canned{status: 400, body: env(400, `{"unique_id":["User not exist or invalid unique id."]}`)},
			batch.Permanent, batch.CodeNotFound, "User not exist or invalid unique id.", 400},
		{"400 unknown user, variant", &canned{status: 400, body: `{"unique_id":"user not exist or invalid unique id"}`},
			batch.Permanent, batch.CodeNotFound, "user not exist or invalid unique id", 400},
		{"400 several fields", &canned{status: 400, body: env(400,
			`{"upgrade_to":["Invalid upgrade option, Choose a valid one."],"api_place_genealogy":["Choose a valid option."]}`)},
			batch.Permanent, batch.CodeValidation,
			"api_place_genealogy: Choose a valid option.; upgrade_to: Invalid upgrade option, Choose a valid one.", 400},
		{"400 HTML page", &canned{status: 400, body: "<html>Bad Request</html>"},
			batch.Permanent, batch.CodeBadResponse, "unexpected answer: <html>Bad Request</html>", 400},
		{"401 detail", &canned{status: 401, body: detail(401, "Token is expired.")},
			batch.Permanent, batch.CodeUnauthorized, "Token is expired.", 401},
		{"401 no body", &canned{status: 401},
			batch.Permanent, batch.CodeUnauthorized, "credentials refused", 401},
		{"429", &canned{status: 429, header: map[string]string{"Retry-After": "3"}},
			batch.Retryable, batch.CodeRateLimited, "rate limited", 429},
		{"502 with detail", &canned{status: 502, body: detail(502, "Upstream down.")},
			batch.Ambiguous, batch.CodeServer, "Upstream down.", 502},
		{"404 wrong base_url", &canned{status: 404, body: "<h1>Not Found</h1>"},
			batch.Permanent, batch.CodeBadResponse, "unexpected answer: <h1>Not Found</h1>", 404},
		{"redirect not followed", &canned{status: 302, header: map[string]string{"Location": "http://127.0.0.1:1/elsewhere"}},
			batch.Permanent, batch.CodeBadResponse, "unexpected answer: (empty body)", 302},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := applyCanned(t, tc.h, upMember)
			wantErr(t, err, tc.kind, tc.code, tc.status, tc.msg)
			if tc.h.count() != 1 {
				t.Errorf("server saw %d requests, want 1", tc.h.count())
			}
		})
	}
}

func TestRetryAfterUsesClock(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	h := &canned{status: 429, header: map[string]string{"Retry-After": now.Add(42 * time.Second).Format(http.TimeFormat)}}
	c := mustNew(t, epixel.Config{BaseURL: adaptertest.Serve(t, h), APIKey: apiKey, Token: token,
		Now: func() time.Time { return now }})
	_, err := c.Apply(context.Background(), batch.Op{User: "u1", Action: batch.Disable})
	var berr *batch.Error
	if !errors.As(err, &berr) || berr.RetryAfter != 42*time.Second {
		t.Errorf("error %v, want a 42s Retry-After", err)
	}
}

func TestSuccessBodies(t *testing.T) {
	for _, body := range []string{
		env(200, `{}`), `{"status_code":200,"errors":{},"data":{"id":7}}`, `{"status_code":200}`,
		`{"status_code":200,"errors":null,"data":{}}`, `{"status_code":201,"errors":[]}`,
	} {
		rep, err := applyCanned(t, &canned{status: 200, body: body}, disableOp)
		if err != nil || rep != (batch.Reply{HTTPStatus: 200}) {
			t.Errorf("200 %q: %+v, %v; want applied", body, rep, err)
		}
	}
}

// TestNonEnvelope2xxIsAmbiguous: a 2xx that is not epixel's envelope may come
// from something that never forwarded the request (a captive portal, a
// misrouted proxy) or from the vendor after acting: never applied, never a
// plain failure, and the message shows the body's start, redacted.
func TestNonEnvelope2xxIsAmbiguous(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		msg    string
	}{
		{200, "<html>captive portal</html>", "not epixel's success envelope: <html>captive portal</html>"},
		{200, "", "not epixel's success envelope: (empty body)"},
		{204, "", "not epixel's success envelope: (empty body)"},
		{200, "OK", "not epixel's success envelope: OK"},
		{200, `{"unexpected":true}`, `not epixel's success envelope: {"unexpected":true}`},
		{200, `null`, `not epixel's success envelope: null`},
		{200, `[]`, `not epixel's success envelope: []`},
		{200, `{"status_code":"200"}`, `not epixel's success envelope: {"status_code":"200"}`},
		{200, env(400, `{"unique_id":["User not exist or invalid unique id."]}`),
			`not epixel's success envelope: {"status_code":400,"errors":{"unique_id":["User not exist or invalid unique id."]},"data":{}}`},
		{200, env(200, `{"detail":"Somthing went wrong."}`),
			`not epixel's success envelope: {"status_code":200,"errors":{"detail":"Somthing went wrong."},"data":{}}`},
		{200, "<html>login as " + apiKey + " with " + token + "</html>",
			"not epixel's success envelope: <html>login as [redacted] with [redacted]</html>"},
	} {
		h := &canned{status: tc.status, body: tc.body}
		_, err := applyCanned(t, h, downCust)
		wantErr(t, err, batch.Ambiguous, batch.CodeBadResponse, tc.status, tc.msg)
	}
}

func TestMessagesNeverCarryCredentials(t *testing.T) {
	for _, status := range []int{400, 401, 403, 500} {
		h := &canned{status: status, body: detail(status, "bad apikey "+apiKey+" with Bearer "+token)}
		_, err := applyCanned(t, h, disableOp)
		if err == nil {
			t.Fatalf("%d: no error", status)
		}
		if strings.Contains(err.Error(), apiKey) || strings.Contains(err.Error(), token) {
			t.Errorf("%d: error %q carries a credential", status, err)
		}
	}
}

func TestUnsendableOps(t *testing.T) {
	fake, c := newFake(t)
	fake.AddUser("u1", epixeltest.User{})
	for _, op := range []batch.Op{
		{Action: batch.ToggleStatus},
		{Action: batch.UpgradeRole, Role: "Customer"},
		{Action: batch.UpgradeRole},
		{Action: batch.DowngradeRole, Role: "Member"},
	} {
		op.User = "u1"
		_, err := c.Apply(context.Background(), op)
		var berr *batch.Error
		if !errors.As(err, &berr) || berr.Kind != batch.Permanent || berr.Code != batch.CodeValidation {
			t.Errorf("%s %q: error %v, want permanent validation", op.Action, op.Role, err)
		}
	}
	if n := fake.Requests(); n != 0 {
		t.Errorf("%d requests sent for ops epixel cannot express", n)
	}
}

func TestRoleCaseIsCanonicalised(t *testing.T) {
	fake := epixeltest.New(epixeltest.Options{APIKey: apiKey, Token: token})
	rec := &recorder{t: t, next: fake}
	c := newClient(t, adaptertest.Serve(t, rec))
	fake.AddUser("u1", epixeltest.User{})
	op := batch.Op{User: "u1", Action: batch.UpgradeRole, Role: "preferred customer", Cells: []batch.Cell{{Column: "place_genealogy", Value: "true"}}}
	if _, err := c.Apply(context.Background(), op); err != nil {
		t.Fatal(err)
	}
	if got := rec.last().fields["upgrade_to"]; got != "Preferred Customer" {
		t.Errorf("upgrade_to %q", got)
	}
}

func TestSupportsAndIdempotent(t *testing.T) {
	c := newClient(t, "https://shop.example.com/api/v2")
	for _, a := range batch.Actions {
		want := a != batch.ToggleStatus
		if c.Supports(a) != want || c.Idempotent(a) != want {
			t.Errorf("%s: Supports %v Idempotent %v, want %v", a, c.Supports(a), c.Idempotent(a), want)
		}
	}
	if _, ok := any(c).(batch.Reader); ok {
		t.Error("epixel cannot read another user's state, yet Client is a batch.Reader")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := epixel.Config{BaseURL: "https://shop.example.com/api/v2", APIKey: apiKey, Token: token}
	for _, tc := range []struct {
		edit func(*epixel.Config)
		key  string
	}{
		{func(c *epixel.Config) { c.BaseURL = "" }, "base_url"},
		{func(c *epixel.Config) { c.BaseURL = "shop.example.com/api" }, "base_url"},
		{func(c *epixel.Config) { c.BaseURL = "ftp://shop.example.com" }, "base_url"},
		{func(c *epixel.Config) { c.BaseURL = "https://shop.example.com/%zz" }, "base_url"},
		{func(c *epixel.Config) { c.APIKey = "" }, "apikey"},
		{func(c *epixel.Config) { c.Token = "" }, "token"},
	} {
		cfg := good
		tc.edit(&cfg)
		_, err := epixel.New(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("New(%+v): %v, want an error naming %s", cfg.BaseURL, err, tc.key)
			continue
		}
		if strings.Contains(err.Error(), apiKey) || strings.Contains(err.Error(), token) {
			t.Errorf("error %q carries a credential", err)
		}
	}
	if _, err := epixel.New(good); err != nil {
		t.Errorf("New(good): %v", err)
	}
}
