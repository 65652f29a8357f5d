// Package adaptertest is the conformance suite every vendor adapter passes,
// run against that vendor's fake over real HTTP on loopback.
package adaptertest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/batch"
)

// Fixture is one vendor's fake and adapters, fresh for each subtest.
type Fixture struct {
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
	// Cases has one op per supported action, each changing a user just added.
	Cases []Case
	// UnknownUserCode is the error_code an op on a missing user gets
	// (batch.CodeNotFound, unless the vendor cannot tell it from bad credentials).
	UnknownUserCode string
}

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

// Run runs the suite. newFixture is called once per subtest.
func Run(t *testing.T, newFixture func(t *testing.T) *Fixture) {
	t.Run("Supports", func(t *testing.T) { testSupports(t, newFixture(t)) })
	t.Run("Apply", func(t *testing.T) { testApply(t, newFixture(t)) })
	t.Run("PathEscaping", func(t *testing.T) { testEscaping(t, newFixture(t)) })
	t.Run("UnknownUser", func(t *testing.T) { testUnknownUser(t, newFixture(t)) })
	t.Run("BadCredentials", func(t *testing.T) { testBadCredentials(t, newFixture(t)) })
	t.Run("RateLimited", func(t *testing.T) { testRateLimited(t, newFixture(t)) })
	t.Run("ServerError", func(t *testing.T) { testServerError(t, newFixture(t)) })
	t.Run("ResetBeforeProcessing", func(t *testing.T) { testReset(t, newFixture(t)) })
	t.Run("DroppedAfterApplying", func(t *testing.T) { testDropAfter(t, newFixture(t)) })
	t.Run("Timeout", func(t *testing.T) { testTimeout(t, newFixture(t)) })
	t.Run("Read", func(t *testing.T) { testRead(t, newFixture(t)) })
}

func opFor(c Case, user string) batch.Op {
	op := c.Op
	op.User = user
	return op
}

func testSupports(t *testing.T, f *Fixture) {
	covered := map[batch.Action]bool{}
	for _, c := range f.Cases {
		covered[c.Op.Action] = true
	}
	for _, a := range batch.Actions {
		if got := f.Adapter.Supports(a); got != covered[a] {
			t.Errorf("Supports(%s) = %v; the cases say %v", a, got, covered[a])
		}
	}
}

func testApply(t *testing.T, f *Fixture) {
	for i, c := range f.Cases {
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

func testEscaping(t *testing.T, f *Fixture) {
	for _, user := range []string{"../x?y=1", "a/b#c", "+81 90%2F", "..", "EMAIL:a+b@example.com"} {
		c := f.Cases[0]
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
func wantError(t *testing.T, f *Fixture, err error, kind batch.Kind, code string) *batch.Error {
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
func testUnknownUser(t *testing.T, f *Fixture) {
	for _, c := range f.Cases {
		_, err := f.Adapter.Apply(context.Background(), opFor(c, "nobody-here"))
		berr := wantError(t, f, err, batch.Permanent, f.UnknownUserCode)
		if berr.Fault != batch.FaultNone {
			t.Errorf("%s: the vendor's own answer is marked %v", c.Op.Action, berr.Fault)
		}
	}
}

// testBadCredentials: a refusal of the credentials is Permanent
// CodeUnauthorized for every action and for a read, whatever the vendor's
// wording, so that the pipeline's circuit breaker can count it; and nothing
// is changed.
func testBadCredentials(t *testing.T, f *Fixture) {
	for i, c := range f.Cases {
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

func testRateLimited(t *testing.T, f *Fixture) {
	f.AddUser("u1", f.Cases[0].Op)
	when := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, ra := range []struct {
		header string
		min    time.Duration
		max    time.Duration
	}{{"7", 7 * time.Second, 7 * time.Second}, {when, 60 * time.Second, 91 * time.Second}} {
		f.Faults.Add(fakehttp.Rule{Times: 1, Fault: fakehttp.Fault{Status: 429, RetryAfter: ra.header}})
		_, err := f.Adapter.Apply(context.Background(), opFor(f.Cases[0], "u1"))
		berr := wantError(t, f, err, batch.Retryable, batch.CodeRateLimited)
		if berr.RetryAfter < ra.min || berr.RetryAfter > ra.max {
			t.Errorf("Retry-After %q read as %v, want %v..%v", ra.header, berr.RetryAfter, ra.min, ra.max)
		}
	}
	if f.Writes("u1") != 0 {
		t.Errorf("a 429 changed state")
	}
}

func testServerError(t *testing.T, f *Fixture) {
	f.AddUser("u1", f.Cases[0].Op)
	f.Faults.Add(fakehttp.Rule{Times: 1, Fault: fakehttp.Fault{Status: 503}})
	_, err := f.Adapter.Apply(context.Background(), opFor(f.Cases[0], "u1"))
	wantError(t, f, err, batch.Ambiguous, batch.CodeServer)
}

func testReset(t *testing.T, f *Fixture) {
	f.AddUser("u1", f.Cases[0].Op)
	f.Faults.Add(fakehttp.Rule{Times: 1, Fault: fakehttp.Fault{Reset: true}})
	_, err := f.Adapter.Apply(context.Background(), opFor(f.Cases[0], "u1"))
	wantError(t, f, err, batch.Ambiguous, batch.CodeNetwork)
	if f.Writes("u1") != 0 {
		t.Errorf("a reset request changed state")
	}
}

func testDropAfter(t *testing.T, f *Fixture) {
	c := f.Cases[0]
	f.AddUser("u1", c.Op)
	f.Faults.Add(fakehttp.Rule{Times: 1, Fault: fakehttp.Fault{DropAfter: true}})
	_, err := f.Adapter.Apply(context.Background(), opFor(c, "u1"))
	wantError(t, f, err, batch.Ambiguous, batch.CodeNetwork)
	if f.Writes("u1") != 1 || f.State("u1") != c.Want {
		t.Errorf("the fake should have applied before dropping: writes %d state %q", f.Writes("u1"), f.State("u1"))
	}
}

func testTimeout(t *testing.T, f *Fixture) {
	f.AddUser("u1", f.Cases[0].Op)
	f.Faults.Add(fakehttp.Rule{Times: 1, Fault: fakehttp.Fault{Delay: time.Minute}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := f.Adapter.Apply(ctx, opFor(f.Cases[0], "u1"))
	wantError(t, f, err, batch.Ambiguous, batch.CodeTimeout)
}

func testRead(t *testing.T, f *Fixture) {
	r, ok := f.Adapter.(batch.Reader)
	if !ok {
		t.Skip("this vendor cannot read state")
	}
	for i, c := range f.Cases {
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
	_, err := r.Read(context.Background(), opFor(f.Cases[0], "nobody-here"))
	wantError(t, f, err, batch.Permanent, f.UnknownUserCode)
}
