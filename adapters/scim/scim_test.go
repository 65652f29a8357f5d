package scim

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
	"time"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/adapters/scim/scimtest"
	"github.com/userbatch/userbatch/batch"
)

const (
	goodToken = "scim-token-good-3f9a"
	badToken  = "scim-token-bad-77c2"
)

// TestConformance runs the suite against the fake with and without ETags;
// the hostile parts run once undiscovered (every request may meet the
// hostile answer, /ServiceProviderConfig first) and once discovered.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts scimtest.Options
		new  adaptertest.NewAdapter
		ops  []batch.Op
	}{
		{"etag", scimtest.Options{Token: goodToken}, newHostile, nil},
		{"no-etag", scimtest.Options{Token: goodToken, NoETag: true}, newDiscovered,
			[]batch.Op{op("userName:alice@example.com", batch.Disable)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			adaptertest.Run(t, fixture(tc.opts, tc.new, tc.ops))
		})
	}
}

// fixture is the suite's fixture for the scim fake with opts.
func fixture(opts scimtest.Options, newAdapter adaptertest.NewAdapter, ops []batch.Op) adaptertest.Fixture {
	return adaptertest.Fixture{
		Vendor: "scim",
		New:    newAdapter,
		Ops:    ops,
		Fake: func(t *testing.T) *adaptertest.Fake {
			fake := scimtest.New(opts)
			f := discoveredFake(t, adaptertest.Serve(t, fake), &fake.Faults)
			f.AddUser = func(id string, op batch.Op) {
				// In the state op changes: active for a disable, and back.
				fake.AddUser(scimtest.User{ID: id, UserName: "name-" + id, Active: op.Action == batch.Disable})
			}
			f.State = func(id string) string { return state(fake, id) }
			f.Writes = fake.Writes
			return f
		},
		Cases: []adaptertest.Case{
			{Op: batch.Op{Action: batch.Disable}, Want: "inactive"},
			{Op: batch.Op{Action: batch.Enable}, Want: "active"},
		},
		UnknownUserCode: batch.CodeNotFound,
	}
}

// discoveredFake is the suite's Fake for the provider at base, its users
// left to the caller. Its client discovers before the suite injects faults:
// they are meant for the user's requests.
func discoveredFake(t *testing.T, base string, faults *fakehttp.Injector) *adaptertest.Fake {
	c := newClient(t, base, goodToken)
	if _, err := c.Discover(context.Background()); err != nil {
		t.Fatalf("Discover: %v", err)
	}
	return &adaptertest.Fake{Adapter: c, BadCredentials: newClient(t, base, badToken),
		Secrets: []string{goodToken, badToken}, Faults: faults}
}

func newClient(t *testing.T, base, token string) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: base, Token: token})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func state(fake *scimtest.Server, id string) string {
	u, ok := fake.User(id)
	switch {
	case !ok:
		return "missing"
	case u.Active:
		return "active"
	}
	return "inactive"
}

func op(user string, a batch.Action) batch.Op { return batch.Op{User: user, Action: a} }

// seen is a request as the fake received it, base_url prefix stripped.
type seen struct {
	method, path, query string
	header              http.Header
	body                []byte
}

// recorder notes every request before next serves it.
func recorder(next http.Handler) (http.Handler, func() []seen) {
	var mu sync.Mutex
	var got []seen
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), body})
		mu.Unlock()
		next.ServeHTTP(w, r)
	})
	return h, func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return append([]seen(nil), got...)
	}
}

// setup starts fake (behind wrap, when given) and a Client for it.
func setup(t *testing.T, opts scimtest.Options, wrap func(http.Handler) http.Handler) (*scimtest.Server, *Client) {
	t.Helper()
	opts.Token = goodToken
	fake := scimtest.New(opts)
	var h http.Handler = fake
	if wrap != nil {
		h = wrap(fake)
	}
	return fake, newClient(t, adaptertest.Serve(t, h), goodToken)
}

func mustError(t *testing.T, err error, kind batch.Kind, code string) *batch.Error {
	t.Helper()
	var berr *batch.Error
	if !errors.As(err, &berr) {
		t.Fatalf("error %v (%T), want *batch.Error", err, err)
	}
	if berr.Kind != kind || berr.Code != code {
		t.Fatalf("error %v: kind %v code %q, want %v %q", berr, berr.Kind, berr.Code, kind, code)
	}
	if strings.Contains(berr.Error(), goodToken) {
		t.Fatalf("error %q holds the token", berr.Error())
	}
	return berr
}

func TestRequestEncoding(t *testing.T) {
	var record func() []seen
	fake, c := setup(t, scimtest.Options{}, func(h http.Handler) http.Handler {
		var rec http.Handler
		rec, record = recorder(h)
		return rec
	})
	fake.AddUser(scimtest.User{ID: "2819c223-7f76", UserName: `o"brien\ x+y@example.com`, Active: true})
	ctx := context.Background()
	o := op(`userName:o"brien\ x+y@example.com`, batch.Disable)
	st, err := c.Read(ctx, o)
	if err != nil || st.InState {
		t.Fatalf("Read = %+v, %v; want not in state", st, err)
	}
	if _, err := c.Apply(ctx, o); err != nil {
		t.Fatalf("Apply: %v", err)
	}

	got := record()
	if len(got) != 3 {
		t.Fatalf("fake saw %d requests, want discovery, lookup, PATCH: %+v", len(got), got)
	}
	if got[0].method != http.MethodGet || got[0].path != "/ServiceProviderConfig" {
		t.Errorf("request 0: %s %s, want GET /ServiceProviderConfig", got[0].method, got[0].path)
	}
	const wantQuery = `filter=userName%20eq%20%22o%5C%22brien%5C%5C%20x%2By%40example.com%22`
	if got[1].method != http.MethodGet || got[1].path != "/Users" || got[1].query != wantQuery {
		t.Errorf("lookup: %s %s?%s, want GET /Users?%s", got[1].method, got[1].path, got[1].query, wantQuery)
	}
	patch := got[2]
	const wantBody = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`
	if patch.method != http.MethodPatch || patch.path != "/Users/2819c223-7f76" || string(patch.body) != wantBody {
		t.Errorf("write: %s %s %s, want PATCH /Users/2819c223-7f76 %s", patch.method, patch.path, patch.body, wantBody)
	}
	for name, want := range map[string]string{
		"Authorization": "Bearer " + goodToken,
		"Content-Type":  "application/scim+json",
		"If-Match":      `W/"1"`,
	} {
		if v := patch.header.Get(name); v != want {
			t.Errorf("PATCH %s = %q, want %q", name, v, want)
		}
	}
	for i, req := range got[:2] {
		if req.header.Get("Content-Type") != "" || len(req.body) != 0 {
			t.Errorf("GET %d carries a body or Content-Type", i)
		}
	}
	if u, _ := fake.User("2819c223-7f76"); u.Active || fake.Writes("2819c223-7f76") != 1 {
		t.Errorf("user after disable: %+v, %d writes; want inactive after 1", u, fake.Writes("2819c223-7f76"))
	}
}

func TestDiscoveryOncePerClient(t *testing.T) {
	var record func() []seen
	fake, c := setup(t, scimtest.Options{}, func(h http.Handler) http.Handler {
		var rec http.Handler
		rec, record = recorder(h)
		return rec
	})
	if c.Features() != "" {
		t.Errorf("Features before discovery = %q, want empty", c.Features())
	}
	// The first discovery fails; the next call tries again.
	fake.Faults.Add(fakehttp.Rule{Times: 1, Fault: fakehttp.Fault{Status: 503}})
	fake.AddUser(scimtest.User{ID: "u1", UserName: "u1", Active: true})
	_, err := c.Read(context.Background(), op("u1", batch.Disable))
	mustError(t, err, batch.Ambiguous, batch.CodeServer)

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Read(context.Background(), op("u1", batch.Disable)); err != nil {
				t.Errorf("Read: %v", err)
			}
		}()
	}
	wg.Wait()
	discoveries := 0
	for _, req := range record() {
		if req.path == "/ServiceProviderConfig" {
			discoveries++
		}
	}
	if discoveries != 2 {
		t.Errorf("%d discovery requests, want 2 (one failed, one for all later calls)", discoveries)
	}
	if want := "patch=true etag=true filter=true maxResults=100 bulk=false"; c.Features() != want {
		t.Errorf("Features = %q, want %q", c.Features(), want)
	}
}

func TestDiscoveryNotFound(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL+"/not-scim", goodToken)
	_, err := c.Read(context.Background(), op("u1", batch.Disable))
	berr := mustError(t, err, batch.Permanent, batch.CodeBadResponse)
	if !strings.Contains(berr.Message, "SCIM root") {
		t.Errorf("message %q does not say base_url must be the SCIM root", berr.Message)
	}
}

// TestChangedSinceRead covers the 412 paths: the user changed between
// the read and the write.
func TestChangedSinceRead(t *testing.T) {
	ctx := context.Background()
	t.Run("still to change", func(t *testing.T) {
		fake, c := setup(t, scimtest.Options{}, nil)
		fake.AddUser(scimtest.User{ID: "u1", UserName: "u1", Active: true})
		if _, err := c.Read(ctx, op("u1", batch.Disable)); err != nil {
			t.Fatal(err)
		}
		fake.Change("u1", func(u *scimtest.User) { u.Attributes = map[string]any{"displayName": "Renamed"} })
		rep, err := c.Apply(ctx, op("u1", batch.Disable))
		if err != nil || rep.Already {
			t.Fatalf("Apply = %+v, %v; want applied after reading again", rep, err)
		}
		if state(fake, "u1") != "inactive" || fake.Writes("u1") != 1 {
			t.Errorf("state %s, %d writes; want inactive after 1", state(fake, "u1"), fake.Writes("u1"))
		}
	})
	t.Run("now in state", func(t *testing.T) {
		fake, c := setup(t, scimtest.Options{}, nil)
		fake.AddUser(scimtest.User{ID: "u1", UserName: "u1", Active: true})
		if _, err := c.Read(ctx, op("u1", batch.Disable)); err != nil {
			t.Fatal(err)
		}
		fake.Change("u1", func(u *scimtest.User) { u.Active = false })
		rep, err := c.Apply(ctx, op("u1", batch.Disable))
		if err != nil || !rep.Already {
			t.Fatalf("Apply = %+v, %v; want Already", rep, err)
		}
		if fake.Writes("u1") != 0 {
			t.Errorf("%d writes, want none: the user already was inactive", fake.Writes("u1"))
		}
	})
	t.Run("changed twice", func(t *testing.T) {
		var fake *scimtest.Server
		fake, c := setup(t, scimtest.Options{}, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPatch { // someone else always writes first
					fake.Change("u1", func(*scimtest.User) {})
				}
				h.ServeHTTP(w, r)
			})
		})
		fake.AddUser(scimtest.User{ID: "u1", UserName: "u1", Active: true})
		if _, err := c.Read(ctx, op("u1", batch.Disable)); err != nil {
			t.Fatal(err)
		}
		_, err := c.Apply(ctx, op("u1", batch.Disable))
		berr := mustError(t, err, batch.Permanent, batch.CodeConflict)
		if berr.HTTPStatus != http.StatusPreconditionFailed || fake.Writes("u1") != 0 {
			t.Errorf("status %d, %d writes; want 412 and none", berr.HTTPStatus, fake.Writes("u1"))
		}
	})
}

// TestResendAfterDrop: a write that landed but whose answer was lost is
// resent under the same If-Match, found changed (412), read again, and not
// written twice.
func TestResendAfterDrop(t *testing.T) {
	fake, c := setup(t, scimtest.Options{}, nil)
	fake.AddUser(scimtest.User{ID: "u1", UserName: "u1", Active: true})
	ctx := context.Background()
	if _, err := c.Read(ctx, op("u1", batch.Disable)); err != nil {
		t.Fatal(err)
	}
	fake.Faults.Add(fakehttp.Rule{Method: http.MethodPatch, Times: 1, Fault: fakehttp.Fault{DropAfter: true}})
	_, err := c.Apply(ctx, op("u1", batch.Disable))
	mustError(t, err, batch.Ambiguous, batch.CodeNetwork)
	rep, err := c.Apply(ctx, op("u1", batch.Disable))
	if err != nil || !rep.Already {
		t.Fatalf("resend = %+v, %v; want Already", rep, err)
	}
	if fake.Writes("u1") != 1 {
		t.Errorf("%d writes, want 1", fake.Writes("u1"))
	}
}

func TestPutFallback(t *testing.T) {
	var record func() []seen
	fake, c := setup(t, scimtest.Options{NoPatch: true}, func(h http.Handler) http.Handler {
		var rec http.Handler
		rec, record = recorder(h)
		return rec
	})
	attrs := map[string]any{"displayName": "Babs Jensen", "emails": []any{map[string]any{"value": "bjensen@example.com", "primary": true}}}
	fake.AddUser(scimtest.User{ID: "u1", UserName: "bjensen", Active: true, Attributes: attrs})
	fake.AddUser(scimtest.User{ID: "u2", UserName: "jsmith", Active: false})
	ctx := context.Background()
	if _, err := c.Read(ctx, op("u1", batch.Disable)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, op("u1", batch.Disable)); err != nil {
		t.Fatalf("Apply after Read: %v", err)
	}
	// Without a Read, Apply reads first: a PUT needs the whole resource.
	if _, err := c.Apply(ctx, op("u2", batch.Enable)); err != nil {
		t.Fatalf("Apply without Read: %v", err)
	}
	u1, _ := fake.User("u1")
	if u1.Active || u1.UserName != "bjensen" || u1.Attributes["displayName"] != "Babs Jensen" || u1.Attributes["emails"] == nil {
		t.Errorf("u1 after PUT: %+v; want inactive with its other attributes kept", u1)
	}
	if state(fake, "u2") != "active" {
		t.Errorf("u2 is %s, want active", state(fake, "u2"))
	}
	var methods []string
	for _, req := range record() {
		methods = append(methods, req.method+" "+req.path)
		if req.method == http.MethodPut {
			if req.header.Get("If-Match") == "" {
				t.Errorf("PUT without If-Match")
			}
			var body map[string]any
			if err := json.Unmarshal(req.body, &body); err != nil || body["meta"] != nil || body["active"] == nil {
				t.Errorf("PUT body %s: want the resource with active and without meta", req.body)
			}
		}
	}
	want := "GET /ServiceProviderConfig,GET /Users/u1,PUT /Users/u1,GET /Users/u2,PUT /Users/u2"
	if got := strings.Join(methods, ","); got != want {
		t.Errorf("requests %s, want %s", got, want)
	}
}

func TestUserNameLookup(t *testing.T) {
	ctx := context.Background()
	fake, c := setup(t, scimtest.Options{}, nil)
	fake.AddUser(scimtest.User{ID: "a1", UserName: "alice@example.com", Active: true})
	fake.AddUser(scimtest.User{ID: "b1", UserName: "bob@example.com", Active: true})
	fake.AddUser(scimtest.User{ID: "b2", UserName: "BOB@example.com", Active: true})

	if _, err := c.Apply(ctx, op("userName:alice@example.com", batch.Disable)); err != nil {
		t.Fatalf("Apply by userName: %v", err)
	}
	if state(fake, "a1") != "inactive" {
		t.Errorf("a1 is %s, want inactive", state(fake, "a1"))
	}
	rep, err := c.Apply(ctx, op("USERNAME:Alice@Example.com", batch.Disable))
	if err != nil || !rep.Already {
		t.Errorf("again, in another case: %+v, %v; want Already (userName is not case-exact)", rep, err)
	}
	_, err = c.Read(ctx, op("userName:bob@example.com", batch.Disable))
	mustError(t, err, batch.Permanent, CodeAmbiguous)
	_, err = c.Apply(ctx, op("userName:carol@example.com", batch.Enable))
	mustError(t, err, batch.Permanent, batch.CodeNotFound)
	_, err = c.Read(ctx, op("userName:", batch.Enable))
	mustError(t, err, batch.Permanent, batch.CodeValidation)

	fake2, c2 := setup(t, scimtest.Options{NoFilter: true}, nil)
	fake2.AddUser(scimtest.User{ID: "a1", UserName: "alice@example.com", Active: true})
	_, err = c2.Read(ctx, op("userName:alice@example.com", batch.Disable))
	mustError(t, err, batch.Permanent, batch.CodeValidation)
	if fake2.Requests() != 1 {
		t.Errorf("%d requests, want only discovery: the filter is known unsupported", fake2.Requests())
	}
}

func TestHiddenInactive(t *testing.T) {
	ctx := context.Background()
	opts := scimtest.Options{Token: goodToken, HideInactive: true}
	fake := scimtest.New(opts)
	base := adaptertest.Serve(t, fake)
	fake.AddUser(scimtest.User{ID: "gone", UserName: "gone", Active: false})

	plain := newClient(t, base, goodToken)
	for _, user := range []string{"gone", "userName:gone"} {
		_, err := plain.Read(ctx, op(user, batch.Disable))
		berr := mustError(t, err, batch.Permanent, batch.CodeNotFound)
		if strings.Contains(berr.Message+berr.Hint, "hides inactive users") {
			t.Errorf("%s: not_found without hides_inactive mentions hidden users: %q / %q", user, berr.Message, berr.Hint)
		}
	}

	c, err := New(Config{BaseURL: base, Token: goodToken, HidesInactive: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Read(ctx, op("userName:gone", batch.Disable))
	berr := mustError(t, err, batch.Permanent, batch.CodeNotFound)
	if !strings.Contains(berr.Message, "hides inactive users") || !strings.Contains(berr.Hint, "inactive") {
		t.Errorf("not_found of a userName at a provider hiding inactive users: %q / %q, want both to say it may be inactive", berr.Message, berr.Hint)
	}
	st, err := c.Read(ctx, op("gone", batch.Enable))
	if err != nil || st.InState || st.Current != CurrentHidden {
		t.Fatalf("Read hidden = %+v, %v; want not in state, %q", st, err, CurrentHidden)
	}
	if _, err := c.Apply(ctx, op("gone", batch.Enable)); err != nil {
		t.Fatalf("enable a hidden user: %v", err)
	}
	if state(fake, "gone") != "active" {
		t.Errorf("user is %s, want active", state(fake, "gone"))
	}
	if _, err := c.Read(ctx, op("nobody", batch.Enable)); err != nil {
		t.Fatalf("Read of a missing user at a hiding provider: %v", err)
	}
	_, err = c.Apply(ctx, op("nobody", batch.Enable))
	mustError(t, err, batch.Permanent, batch.CodeNotFound)
}

// scimAnswer serves one canned answer to every /Users request, and a
// plain discovery document.
func scimAnswer(status int, header http.Header, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/scim+json")
		if r.URL.Path == "/ServiceProviderConfig" {
			_, _ = io.WriteString(w, `{"patch":{"supported":true},"etag":{"supported":false},"filter":{"supported":true}}`)
			return
		}
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

func TestClassify(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	reset := func(v string) http.Header { return http.Header{"X-Rate-Limit-Reset": {v}} }
	scimErr := func(status, scimType, detail string) string {
		b, _ := json.Marshal(map[string]string{"schemas": "", "status": status, "scimType": scimType, "detail": detail})
		return strings.Replace(string(b), `"schemas":""`, `"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"]`, 1)
	}
	for _, tc := range []struct {
		name       string
		status     int
		header     http.Header
		body       string
		kind       batch.Kind
		code       string
		retryAfter time.Duration
		message    string
	}{
		{"401", 401, nil, scimErr("401", "", "token expired"), batch.Permanent, batch.CodeUnauthorized, 0, "token expired"},
		{"403", 403, nil, `{"detail":"not an admin"}`, batch.Permanent, batch.CodeUnauthorized, 0, "not an admin"},
		{"404", 404, nil, scimErr("404", "", "Resource u1 not found"), batch.Permanent, batch.CodeNotFound, 0, "not found"},
		{"400 mutability", 400, nil, scimErr("400", "mutability", "active is read-only"), batch.Permanent, batch.CodeValidation, 0, "mutability: active is read-only"},
		{"409 uniqueness", 409, nil, scimErr("409", "uniqueness", "taken"), batch.Permanent, batch.CodeConflict, 0, "uniqueness"},
		{"429 Retry-After", 429, http.Header{"Retry-After": {"12"}}, "", batch.Retryable, batch.CodeRateLimited, 12 * time.Second, ""},
		{"429 reset epoch", 429, reset("1796040030"), "", batch.Retryable, batch.CodeRateLimited, 30 * time.Second, ""},
		{"429 reset seconds", 429, http.Header{"X-Ratelimit-Reset": {"45"}}, "", batch.Retryable, batch.CodeRateLimited, 45 * time.Second, ""},
		{"429 both", 429, http.Header{"Retry-After": {"3"}, "X-Rate-Limit-Reset": {"1796040030"}}, "", batch.Retryable, batch.CodeRateLimited, 3 * time.Second, ""},
		{"500", 500, nil, scimErr("500", "", "boom"), batch.Ambiguous, batch.CodeServer, 0, "boom"},
		{"501", 501, nil, scimErr("501", "", "PATCH is not supported"), batch.Permanent, batch.CodeRefused, 0, "PATCH"},
		{"echoed token", 400, nil, scimErr("400", "invalidValue", "bad header Bearer "+goodToken), batch.Permanent, batch.CodeValidation, 0, "[redacted]"},
		{"html", 418, nil, "<html>teapot " + goodToken + "</html>", batch.Permanent, batch.CodeBadResponse, 0, "teapot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(scimAnswer(tc.status, tc.header, tc.body))
			t.Cleanup(srv.Close)
			c, err := New(Config{BaseURL: srv.URL, Token: goodToken, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Apply(context.Background(), op("u1", batch.Disable))
			berr := mustError(t, err, tc.kind, tc.code)
			if berr.HTTPStatus != tc.status || berr.RetryAfter != tc.retryAfter || !strings.Contains(berr.Message, tc.message) {
				t.Errorf("got status %d retry %v message %q; want %d %v containing %q",
					berr.HTTPStatus, berr.RetryAfter, berr.Message, tc.status, tc.retryAfter, tc.message)
			}
		})
	}
}

func TestReadBadAnswers(t *testing.T) {
	for name, body := range map[string]string{
		"no active":     `{"id":"u1","userName":"a"}`,
		"string active": `{"id":"u1","userName":"a","active":"maybe"}`,
		"no id":         `{"userName":"a","active":true}`,
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(scimAnswer(200, nil, body))
			t.Cleanup(srv.Close)
			_, err := newClient(t, srv.URL, goodToken).Read(context.Background(), op("u1", batch.Disable))
			mustError(t, err, batch.Permanent, batch.CodeBadResponse)
		})
	}
	// Booleans quoted as strings are read: some providers send them so.
	srv := httptest.NewServer(scimAnswer(200, nil, `{"id":"u1","userName":"a","active":"False"}`))
	t.Cleanup(srv.Close)
	st, err := newClient(t, srv.URL, goodToken).Read(context.Background(), op("u1", batch.Disable))
	if err != nil || !st.InState {
		t.Errorf(`Read of "active":"False" = %+v, %v; want in state for a disable`, st, err)
	}
}

func TestNew(t *testing.T) {
	for _, cfg := range []Config{
		{Token: goodToken},
		{BaseURL: "ftp://x", Token: goodToken},
		{BaseURL: "https://api.example.com/scim/v2"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		} else if strings.Contains(err.Error(), goodToken) {
			t.Errorf("error %q holds the token", err)
		}
	}
	c := newClient(t, "https://api.example.com/scim/v2", goodToken)
	_, err := c.Apply(context.Background(), batch.Op{User: "u1", Action: batch.UpgradeRole, Role: "Member"})
	mustError(t, err, batch.Permanent, batch.CodeValidation)
}

// TestPatchNoContent: RFC 7644 §3.5.2 lets a provider answer a PATCH 204
// with no body.
func TestPatchNoContent(t *testing.T) {
	srv := httptest.NewServer(scimAnswer(http.StatusNoContent, nil, ""))
	t.Cleanup(srv.Close)
	rep, err := newClient(t, srv.URL, goodToken).Apply(context.Background(), op("u1", batch.Enable))
	if err != nil || rep.HTTPStatus != http.StatusNoContent || rep.Already {
		t.Errorf("Apply = %+v, %v; want a 204 change", rep, err)
	}
}
