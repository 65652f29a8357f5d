// Package adaptertest is the conformance suite every vendor adapter passes,
// run against that vendor's fake over real HTTP on loopback.
package adaptertest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/batch"
)

// Fixture is what the suite needs of one vendor. Every vendor in the
// registry (adapters.Vendors) runs Run with one, from its own tests; a test
// in package adapters fails when one does not.
type Fixture struct {
	// Vendor is the vendor's name in the registry.
	Vendor string
	// New builds the adapter against base, sending through client, with
	// secret as every credential it holds. The suite's hostile parts point
	// it at servers of their own: proxies, closed ports, foreign servers.
	New NewAdapter
	// Ops are what the hostile parts send, each in turn (User set). Empty:
	// the first case's op for user "u1".
	Ops []batch.Op
	// Fake starts a fresh fake vendor for one subtest, with adapters
	// configured against it.
	Fake func(t *testing.T) *Fake
	// Cases has one op per supported action, each changing a user just added.
	Cases []Case
	// UnknownUserCode is the error_code an op on a missing user gets
	// (batch.CodeNotFound, unless the vendor cannot tell it from bad credentials).
	UnknownUserCode string
}

// Fake is one vendor's fake and the adapters pointed at it, fresh for each
// subtest.
type Fake struct {
	// Adapter is configured against the fake with valid credentials.
	Adapter batch.Adapter
	// BadCredentials is configured against the same fake with wrong ones.
	BadCredentials batch.Adapter
	// Secrets are every credential value in use; no error may contain one.
	Secrets []string
	// Faults is the fake's fault injector.
	Faults *fakehttp.Injector
	// AddUser creates a user in a state that op would change (a blocked user
	// for an enable, a Customer for an upgrade to Member, ...).
	AddUser func(id string, op batch.Op)
	// State describes a user's state at the fake, in the fixture's own words.
	State func(id string) string
	// Writes counts the state-changing requests the fake processed for id.
	Writes func(id string) int
}

// NewAdapter returns a vendor's adapter for base, sending through client,
// with secret as every credential it holds (apikey, token...).
type NewAdapter func(t testing.TB, base string, client *http.Client, secret string) batch.Adapter

// Case is one supported action applied to a fresh user.
type Case struct {
	Op batch.Op // User is filled in by the suite
	// Want is State after the op.
	Want string
	// AgainAlready says whether applying the same op again reports Already.
	AgainAlready bool
}

// Serve starts h on loopback under a non-empty base path, as a customer's
// proxy would put it, and returns the base_url to configure.
func Serve(t testing.TB, h http.Handler) string {
	t.Helper()
	const prefix = "/proxy/v9"
	mux := http.NewServeMux()
	mux.Handle(prefix+"/", http.StripPrefix(prefix, h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + prefix
}

// Raw sends one request, as a client with no adapter would, to a fresh
// loopback server of h and returns the answer's status, Content-Type and
// body: the fakes' own tests use it for requests no adapter sends.
func Raw(t testing.TB, h http.Handler, method, path, auth, contentType, body string) (status int, ctype string, raw []byte) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), raw
}

// Run runs the whole suite for one vendor: the adapter against its fake
// (every supported action, escaping, the vendor's own refusals, faults,
// reads), then each of f.Ops against servers that are not the vendor's
// (never sent, foreign answers, secrets echoed in bodies).
func Run(t *testing.T, f Fixture) {
	t.Helper()
	if f.Vendor == "" || f.New == nil || f.Fake == nil || len(f.Cases) == 0 {
		t.Fatalf("adaptertest.Run: the fixture needs Vendor, New, Fake and Cases (got vendor %q)", f.Vendor)
	}
	s := &suite{Fixture: f}
	for _, part := range []struct {
		name string
		test func(*testing.T, *suite, *Fake)
	}{
		{"Supports", testSupports},
		{"Apply", testApply},
		{"PathEscaping", testEscaping},
		{"UnknownUser", testUnknownUser},
		{"BadCredentials", testBadCredentials},
		{"RateLimited", testRateLimited},
		{"ServerError", testServerError},
		{"ResetBeforeProcessing", testReset},
		{"DroppedAfterApplying", testDropAfter},
		{"Timeout", testTimeout},
		{"Read", testRead},
	} {
		t.Run(part.name, func(t *testing.T) { part.test(t, s, f.Fake(t)) })
	}
	for _, op := range s.hostileOps() {
		name := strings.TrimSpace(string(op.Action) + " " + op.User)
		t.Run("NeverSent/"+name, func(t *testing.T) { neverSent(t, op, f.New) })
		t.Run("Foreign/"+name, func(t *testing.T) { foreign(t, op, f.New) })
		t.Run("SecretsInBodies/"+name, func(t *testing.T) { secretsInBodies(t, op, f.New) })
	}
}

// suite is a fixture while the suite runs.
type suite struct{ Fixture }

func (s *suite) hostileOps() []batch.Op {
	if len(s.Ops) > 0 {
		return s.Ops
	}
	return []batch.Op{opFor(s.Cases[0], "u1")}
}

func opFor(c Case, user string) batch.Op {
	op := c.Op
	op.User = user
	return op
}

func testSupports(t *testing.T, s *suite, f *Fake) {
	covered := map[batch.Action]bool{}
	for _, c := range s.Cases {
		covered[c.Op.Action] = true
	}
	for _, a := range batch.Actions {
		if got := f.Adapter.Supports(a); got != covered[a] {
			t.Errorf("Supports(%s) = %v; the cases say %v", a, got, covered[a])
		}
	}
}

func testApply(t *testing.T, s *suite, f *Fake) {
	for i, c := range s.Cases {
		user := "user-" + string(rune('a'+i))
		f.AddUser(user, c.Op)
		rep, err := f.Adapter.Apply(context.Background(), opFor(c, user))
		if err != nil {
			t.Fatalf("%s: Apply: %v", c.Op.Action, err)
		}
		if rep.Already || rep.HTTPStatus/100 != 2 {
			t.Errorf("%s: reply %+v, want a fresh 2xx change", c.Op.Action, rep)
		}
		if got := f.State(user); got != c.Want {
			t.Errorf("%s: state %q, want %q", c.Op.Action, got, c.Want)
		}
		if got := f.Writes(user); got != 1 {
			t.Errorf("%s: fake processed %d writes, want 1", c.Op.Action, got)
		}
		if !f.Adapter.Idempotent(c.Op.Action) {
			continue // sending a toggle again is a new change, not a repeat
		}
		rep, err = f.Adapter.Apply(context.Background(), opFor(c, user))
		if err != nil {
			t.Fatalf("%s again: %v", c.Op.Action, err)
		}
		if rep.Already != c.AgainAlready {
			t.Errorf("%s again: Already = %v, want %v", c.Op.Action, rep.Already, c.AgainAlready)
		}
		if got := f.State(user); got != c.Want {
			t.Errorf("%s again: state %q, want %q", c.Op.Action, got, c.Want)
		}
	}
}

func testEscaping(t *testing.T, s *suite, f *Fake) {
	for _, user := range []string{"../x?y=1", "a/b#c", "+81 90%2F", "..", "EMAIL:a+b@example.com"} {
		c := s.Cases[0]
		f.AddUser(user, c.Op)
		if _, err := f.Adapter.Apply(context.Background(), opFor(c, user)); err != nil {
			t.Fatalf("user %q: %v", user, err)
		}
		if got := f.State(user); got != c.Want {
			t.Errorf("user %q: state %q, want %q", user, got, c.Want)
		}
	}
}

// wantError checks err's kind and code and that it leaks no secret.
func wantError(t *testing.T, f *Fake, err error, kind batch.Kind, code string) *batch.Error {
	t.Helper()
	var berr *batch.Error
	if !errors.As(err, &berr) {
		t.Fatalf("error %v (%T), want *batch.Error", err, err)
	}
	if berr.Kind != kind || berr.Code != code {
		t.Errorf("error %v: kind %v code %q, want %v %q", berr, berr.Kind, berr.Code, kind, code)
	}
	for _, s := range f.Secrets {
		if s != "" && (strings.Contains(err.Error(), s) || strings.Contains(berr.Message, s)) {
			t.Errorf("error %q contains a secret", err.Error())
		}
	}
	return berr
}

// testUnknownUser: the vendor's own answer for a missing user is its
// code, and not counted against the target (no batch.Fault).
func testUnknownUser(t *testing.T, s *suite, f *Fake) {
	for _, c := range s.Cases {
		_, err := f.Adapter.Apply(context.Background(), opFor(c, "nobody-here"))
		berr := wantError(t, f, err, batch.Permanent, s.UnknownUserCode)
		if berr.Fault != batch.FaultNone {
			t.Errorf("%s: the vendor's own answer is marked %v", c.Op.Action, berr.Fault)
		}
	}
}

// testBadCredentials: a refusal of the credentials is Permanent
// CodeUnauthorized for every action and for a read, whatever the vendor's
// wording, so that the pipeline's circuit breaker can count it; and nothing
// is changed.
func testBadCredentials(t *testing.T, s *suite, f *Fake) {
	for i, c := range s.Cases {
		user := "cred-" + string(rune('a'+i))
		f.AddUser(user, c.Op)
		_, err := f.BadCredentials.Apply(context.Background(), opFor(c, user))
		berr := wantError(t, f, err, batch.Permanent, batch.CodeUnauthorized)
		if berr.HTTPStatus != http.StatusUnauthorized && berr.HTTPStatus != http.StatusForbidden {
			t.Errorf("%s: status %d, want 401 (or an auth 403)", c.Op.Action, berr.HTTPStatus)
		}
		if f.Writes(user) != 0 {
			t.Errorf("%s: fake processed a write with bad credentials", c.Op.Action)
		}
		if r, ok := f.BadCredentials.(batch.Reader); ok {
			_, err := r.Read(context.Background(), opFor(c, user))
			wantError(t, f, err, batch.Permanent, batch.CodeUnauthorized)
		}
	}
}

func testRateLimited(t *testing.T, s *suite, f *Fake) {
	f.AddUser("u1", s.Cases[0].Op)
	when := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, ra := range []struct {
		header string
		min    time.Duration
		max    time.Duration
	}{{"7", 7 * time.Second, 7 * time.Second}, {when, 60 * time.Second, 91 * time.Second}} {
		f.Faults.Add(fakehttp.Rule{Times: 1, Fault: fakehttp.Fault{Status: 429, RetryAfter: ra.header}})
		_, err := f.Adapter.Apply(context.Background(), opFor(s.Cases[0], "u1"))
		berr := wantError(t, f, err, batch.Retryable, batch.CodeRateLimited)
		if berr.RetryAfter < ra.min || berr.RetryAfter > ra.max {
			t.Errorf("Retry-After %q read as %v, want %v..%v", ra.header, berr.RetryAfter, ra.min, ra.max)
		}
	}
	if f.Writes("u1") != 0 {
		t.Errorf("a 429 changed state")
	}
}

func testServerError(t *testing.T, s *suite, f *Fake) {
	f.AddUser("u1", s.Cases[0].Op)
	f.Faults.Add(fakehttp.Rule{Times: 1, Fault: fakehttp.Fault{Status: 503}})
	_, err := f.Adapter.Apply(context.Background(), opFor(s.Cases[0], "u1"))
	wantError(t, f, err, batch.Ambiguous, batch.CodeServer)
}

func testReset(t *testing.T, s *suite, f *Fake) {
	f.AddUser("u1", s.Cases[0].Op)
	f.Faults.Add(fakehttp.Rule{Times: 1, Fault: fakehttp.Fault{Reset: true}})
	_, err := f.Adapter.Apply(context.Background(), opFor(s.Cases[0], "u1"))
	wantError(t, f, err, batch.Ambiguous, batch.CodeNetwork)
	if f.Writes("u1") != 0 {
		t.Errorf("a reset request changed state")
	}
}

func testDropAfter(t *testing.T, s *suite, f *Fake) {
	c := s.Cases[0]
	f.AddUser("u1", c.Op)
	f.Faults.Add(fakehttp.Rule{Times: 1, Fault: fakehttp.Fault{DropAfter: true}})
	_, err := f.Adapter.Apply(context.Background(), opFor(c, "u1"))
	wantError(t, f, err, batch.Ambiguous, batch.CodeNetwork)
	if f.Writes("u1") != 1 || f.State("u1") != c.Want {
		t.Errorf("the fake should have applied before dropping: writes %d state %q", f.Writes("u1"), f.State("u1"))
	}
}

func testTimeout(t *testing.T, s *suite, f *Fake) {
	f.AddUser("u1", s.Cases[0].Op)
	f.Faults.Add(fakehttp.Rule{Times: 1, Fault: fakehttp.Fault{Delay: time.Minute}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := f.Adapter.Apply(ctx, opFor(s.Cases[0], "u1"))
	wantError(t, f, err, batch.Ambiguous, batch.CodeTimeout)
}

func testRead(t *testing.T, s *suite, f *Fake) {
	r, ok := f.Adapter.(batch.Reader)
	if !ok {
		t.Skip("this vendor cannot read state")
	}
	for i, c := range s.Cases {
		user := "reader-" + string(rune('a'+i))
		f.AddUser(user, c.Op)
		op := opFor(c, user)
		st, err := r.Read(context.Background(), op)
		if err != nil {
			t.Fatalf("%s: Read: %v", c.Op.Action, err)
		}
		if st.InState {
			t.Errorf("%s: a fresh user reads as already in state (%+v)", c.Op.Action, st)
		}
		if _, err := f.Adapter.Apply(context.Background(), op); err != nil {
			t.Fatalf("%s: Apply: %v", c.Op.Action, err)
		}
		if st, err = r.Read(context.Background(), op); err != nil || !st.InState {
			t.Errorf("%s: after applying, Read = %+v, %v; want in state", c.Op.Action, st, err)
		}
		if got := f.Writes(user); got != 1 {
			t.Errorf("%s: reads counted as writes: %d", c.Op.Action, got)
		}
	}
	_, err := r.Read(context.Background(), opFor(s.Cases[0], "nobody-here"))
	wantError(t, f, err, batch.Permanent, s.UnknownUserCode)
}
