package declarative_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/adapters/declarative"
	"github.com/userbatch/userbatch/adapters/declarative/acmetest"
	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
)

// seenReq is one request as it reached the server.
type seenReq struct {
	host, path string
	query      url.Values
	header     http.Header
	body       []byte
	mediaType  string
	boundary   string
}

// recording answers 200 {} to everything and keeps what it saw.
type recording struct {
	mu   sync.Mutex
	reqs []seenReq
}

func (rec *recording) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, seenReq{r.Host, r.URL.EscapedPath(), r.URL.Query(), r.Header.Clone(), body, mt, params["boundary"]})
	rec.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{}`)
}

func (rec *recording) all() []seenReq {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]seenReq(nil), rec.reqs...)
}

// injectSpec puts op's values in every place a value can land.
const injectSpec = `vendor: inject
config:
  token: {required: true}
columns:
  - {name: email}
  - {name: role}
auth:
  headers: [{name: X-Token, value: "{config.token}"}]
  query: [{name: email, value: "{email}"}]
actions:
  disable:
    idempotent: true
    request:
      method: POST
      path: /users/{user}/x/{role}
      json: {id: "{user}", nested: ["{email}", {role: "{role}"}], flag: true, n: 3}
  enable:
    idempotent: true
    request:
      method: POST
      path: /users/{user}
      encoding: multipart
      form: [{name: id, value: "{user}"}, {name: role, value: "{role}"}]
  toggle-status:
    idempotent: false
    request:
      method: POST
      path: /t
      form: [{name: id, value: "{user}"}, {name: "a&b=", value: "{email}"}]
  upgrade-role:
    idempotent: true
    columns: [{name: role}]
    request:
      method: POST
      path: /u
      headers: [{name: X-User, value: "{user}"}]
`

func injectAdapter(t *testing.T, h http.Handler, token string) batch.Adapter {
	t.Helper()
	spec, err := declarative.Parse("inject.yaml", []byte(injectSpec))
	if err != nil {
		t.Fatal(err)
	}
	a, err := declarative.New(spec, declarative.Settings{BaseURL: adaptertest.Serve(t, h), Config: map[string]string{"token": token}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// hostileValues would leave their place if not escaped for it.
var hostileValues = []string{
	"../../admin?x=1#f", "a/b", "..", ".", "%2e%2e%2f", "https://evil.example/", "a b+c", `x","admin":true,"y":"`,
	"a&role=admin", "é\u2028</script>", "a=b;c",
}

// TestValuesStayInTheirPlace: a value is exactly one escaped path segment,
// one query value, one JSON string, one form value; the request goes to
// base_url's host and path, whatever the value holds.
func TestValuesStayInTheirPlace(t *testing.T) {
	rec := &recording{}
	a := injectAdapter(t, rec, "tok")
	for _, v := range hostileValues {
		for _, act := range []batch.Action{batch.Disable, batch.Enable, batch.ToggleStatus} {
			op := batch.Op{User: v, Action: act, Email: v, Role: v}
			if _, err := a.Apply(context.Background(), op); err != nil {
				t.Fatalf("%s %q: %v", act, v, err)
			}
			got := rec.all()[len(rec.all())-1]
			if email := got.query["email"]; len(email) != 1 || email[0] != v || len(got.query) != 1 {
				t.Errorf("%s %q: query %v", act, v, got.query)
			}
			checkPlaced(t, act, v, got)
		}
	}
}

func checkPlaced(t *testing.T, act batch.Action, v string, got seenReq) {
	t.Helper()
	segs := strings.Split(strings.TrimPrefix(got.path, "/"), "/")
	switch act {
	case batch.Disable:
		if len(segs) != 4 || segs[0] != "users" || segs[2] != "x" || unescape(segs[1]) != v || unescape(segs[3]) != v {
			t.Errorf("%q: path %q", v, got.path)
		}
		var body struct {
			ID     string `json:"id"`
			Nested []any  `json:"nested"`
			Flag   bool   `json:"flag"`
			N      int    `json:"n"`
		}
		dec := json.NewDecoder(strings.NewReader(string(got.body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil || body.ID != v || body.Nested[0] != v || !body.Flag || body.N != 3 ||
			body.Nested[1].(map[string]any)["role"] != v {
			t.Errorf("%q: JSON body %s (%v)", v, got.body, err)
		}
	case batch.Enable:
		if len(segs) != 2 || segs[0] != "users" || unescape(segs[1]) != v {
			t.Errorf("%q: path %q", v, got.path)
		}
		form := readMultipart(t, got)
		if form["id"] != v || form["role"] != v || len(form) != 2 {
			t.Errorf("%q: multipart %v", v, form)
		}
	case batch.ToggleStatus:
		form, err := url.ParseQuery(string(got.body))
		if err != nil || form.Get("id") != v || form.Get("a&b=") != v || len(form) != 2 || got.mediaType != "application/x-www-form-urlencoded" {
			t.Errorf("%q: form %q (%v)", v, got.body, err)
		}
	}
}

func unescape(s string) string {
	u, err := url.PathUnescape(s)
	if err != nil {
		return "(bad escape " + s + ")"
	}
	return u
}

func readMultipart(t *testing.T, got seenReq) map[string]string {
	t.Helper()
	out := map[string]string{}
	mr := multipart.NewReader(strings.NewReader(string(got.body)), got.boundary)
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(p)
		out[p.FormName()] = string(b)
	}
	return out
}

// TestNothingSent: a value with CR/LF bound for a header, and a value the
// request needs and the row lacks, are refused before anything is sent.
func TestNothingSent(t *testing.T) {
	rec := &recording{}
	a := injectAdapter(t, rec, "tok")
	for _, tc := range []struct {
		op   batch.Op
		code string
	}{
		{batch.Op{User: "a\r\nX-Evil: 1", Action: batch.UpgradeRole, Role: "Member", Email: "e@x"}, httpcall.CodeRequest},
		{batch.Op{User: "a\nb", Action: batch.UpgradeRole, Role: "Member", Email: "e@x"}, httpcall.CodeRequest},
		{batch.Op{User: "u1", Action: batch.Disable, Role: "Member"}, batch.CodeValidation},       // no email for the query
		{batch.Op{User: "u1", Action: batch.Disable, Email: "e@x"}, batch.CodeValidation},         // no role for the path
		{batch.Op{User: "", Action: batch.Enable, Email: "e@x", Role: "x"}, batch.CodeValidation}, // no user
		{batch.Op{User: "u1", Action: batch.DowngradeRole, Email: "e@x"}, batch.CodeValidation},   // not described
	} {
		_, err := a.Apply(context.Background(), tc.op)
		var berr *batch.Error
		if !errors.As(err, &berr) || berr.Kind != batch.Permanent || berr.Code != tc.code {
			t.Errorf("%+v: %v, want permanent %s", tc.op, err, tc.code)
		}
	}
	if n := len(rec.all()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
	// A token holding CR/LF never reaches the header either.
	a = injectAdapter(t, rec, "tok\r\nX-Evil: 1")
	_, err := a.Apply(context.Background(), batch.Op{User: "u1", Action: batch.Disable, Email: "e@x", Role: "r"})
	var berr *batch.Error
	if !errors.As(err, &berr) || berr.Code != httpcall.CodeRequest || strings.Contains(berr.Error(), "tok") || len(rec.all()) != 0 {
		t.Errorf("a token with a newline: %v, %d requests", err, len(rec.all()))
	}
}

// TestAcme drives README's worked example against its fake: every outcome
// its rules name, the read, the identity and the undo.
func TestAcme(t *testing.T) {
	spec, err := declarative.Load("testdata/acme.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fake := acmetest.New("acme-token-1", "t-1")
	a, err := declarative.New(spec, declarative.Settings{BaseURL: adaptertest.Serve(t, fake),
		Config: map[string]string{"token": "acme-token-1", "tenant": "t-1"}})
	if err != nil {
		t.Fatal(err)
	}
	fake.AddUser("alice", false)
	fake.AddUser("bob", true)
	ctx := context.Background()
	if rep, err := a.Apply(ctx, batch.Op{User: "alice", Action: batch.Disable, Email: "hr@example.com"}); err != nil || rep.Already {
		t.Errorf("disable alice: %+v, %v", rep, err)
	}
	if s, _ := fake.Suspended("alice"); !s || strings.Join(fake.Notified("alice"), ",") != "hr@example.com" {
		t.Errorf("alice not suspended, or not notified: %v", fake.Notified("alice"))
	}
	if rep, err := a.Apply(ctx, batch.Op{User: "BOB", Action: batch.Disable}); err != nil || !rep.Already || rep.HTTPStatus != 409 {
		t.Errorf("disable bob again: %+v, %v", rep, err)
	}
	st, err := a.(batch.Reader).Read(ctx, batch.Op{User: "bob", Action: batch.Enable})
	if err != nil || st.InState || st.Current != "suspended" {
		t.Errorf("read bob: %+v, %v", st, err)
	}
	_, err = a.Apply(ctx, batch.Op{User: "ghost", Action: batch.Disable})
	wantCode(t, err, batch.Permanent, batch.CodeNotFound, 404)
	bad, _ := declarative.New(spec, declarative.Settings{BaseURL: adaptertest.Serve(t, fake), Config: map[string]string{"token": "wrong", "tenant": "t-1"}})
	_, err = bad.Apply(ctx, batch.Op{User: "alice", Action: batch.Enable})
	wantCode(t, err, batch.Permanent, batch.CodeUnauthorized, 401)
	wrongBase, _ := declarative.New(spec, declarative.Settings{BaseURL: adaptertest.Serve(t, http.NotFoundHandler()), Config: map[string]string{"token": "acme-token-1", "tenant": "t-1"}})
	_, err = wrongBase.Apply(ctx, batch.Op{User: "alice", Action: batch.Enable})
	wantCode(t, err, batch.Permanent, batch.CodeBadResponse, 404)
	if berr := (*batch.Error)(nil); !errors.As(err, &berr) || berr.Fault != batch.FaultForeign {
		t.Errorf("a 404 page from another server: %v, want it marked not the vendor's API", err)
	}
	if id := a.(*declarative.Reader).Identity(); id.Key("staff:BOB") != "bob" || id.Bare("Staff:x") != "x" {
		t.Errorf("identity: %q %q", id.Key("staff:BOB"), id.Bare("Staff:x"))
	}
	inv := a.(*declarative.Reader).Invert(batch.Op{User: "alice", Action: batch.Disable})
	if len(inv) != 1 || inv[0].Action != batch.Enable {
		t.Errorf("invert: %+v", inv)
	}
	if _, err := declarative.New(spec, declarative.Settings{BaseURL: "http://x", Config: map[string]string{"token": "t"}}); err == nil ||
		err.Error() != "acme: tenant is required (the Acme tenant id)" {
		t.Errorf("a missing key: %v", err)
	}
}

func wantCode(t *testing.T, err error, kind batch.Kind, code string, status int) {
	t.Helper()
	var berr *batch.Error
	if !errors.As(err, &berr) || berr.Kind != kind || berr.Code != code || berr.HTTPStatus != status {
		t.Errorf("error %v, want %v %s %d", err, kind, code, status)
	}
}

// TestEpixelInvert: the spec's undo matches reports/undo.go's for epixel.
func TestEpixelInvert(t *testing.T) {
	a := newSpec(t, "epixel", "http://127.0.0.1:1", nil, map[string]string{"apikey": "k", "token": "t"}).(*declarative.Adapter)
	for _, tc := range []struct {
		op   batch.Op
		want string
	}{
		{batch.Op{Action: batch.Disable}, "enable"},
		{batch.Op{Action: batch.UpgradeRole, Role: batch.RolePreferredCustomer}, "downgrade-role block_user=false role=Customer"},
		{batch.Op{Action: batch.UpgradeRole, Role: batch.RoleMember}, "downgrade-role block_user=false role= (note)"},
		{batch.Op{Action: batch.DowngradeRole, Role: batch.RolePreferredCustomer}, "upgrade-role role=Member"},
		{batch.Op{Action: batch.DowngradeRole, Role: batch.RoleCustomer, BlockUser: true}, "upgrade-role role= (note); enable"},
	} {
		var parts []string
		for _, inv := range a.Invert(tc.op) {
			s := string(inv.Action)
			for _, k := range slices.Sorted(maps.Keys(inv.Set)) {
				s += " " + k + "=" + inv.Set[k]
			}
			if inv.Note != "" {
				s += " (note)"
			}
			parts = append(parts, s)
		}
		if got := strings.Join(parts, "; "); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.op.Action, tc.op.Role, got, tc.want)
		}
	}
}

// TestMultipartBoundaryInAValue: a value holding the form's boundary gets
// a fresh one, so it cannot end its part early.
func TestMultipartBoundaryInAValue(t *testing.T) {
	rec := &recording{}
	a := injectAdapter(t, rec, "tok")
	if _, err := a.Apply(context.Background(), batch.Op{User: "u1", Action: batch.Enable, Email: "e@x", Role: "r"}); err != nil {
		t.Fatal(err)
	}
	first := rec.all()[0]
	evil := "x\r\n--" + first.boundary + "\r\nContent-Disposition: form-data; name=\"admin\"\r\n\r\ntrue"
	if _, err := a.Apply(context.Background(), batch.Op{User: "u1", Action: batch.Enable, Email: "e@x", Role: evil}); err != nil {
		t.Fatal(err)
	}
	second := rec.all()[1]
	form := readMultipart(t, second)
	if second.boundary == first.boundary || form["role"] != evil || len(form) != 2 {
		t.Errorf("boundary %q then %q; form %q", first.boundary, second.boundary, form)
	}
}

// TestLaterStepOfAToggle: when a later step of an action that is not
// idempotent fails in a way that would be retried, the earlier steps were
// carried out: the error is ambiguous, so the pipeline never sends the
// action again.
func TestLaterStepOfAToggle(t *testing.T) {
	spec, err := declarative.Parse("toggle.yaml", []byte(`vendor: t
actions:
  toggle-status:
    idempotent: false
    steps:
      - request: {method: POST, path: /flip}
      - after: [applied]
        request: {method: POST, path: /notify}
`))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/flip", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/notify", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(429) })
	a, err := declarative.New(spec, declarative.Settings{BaseURL: adaptertest.Serve(t, mux)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Apply(context.Background(), batch.Op{User: "u1", Action: batch.ToggleStatus})
	wantCode(t, err, batch.Ambiguous, batch.CodeRateLimited, 429)
}
