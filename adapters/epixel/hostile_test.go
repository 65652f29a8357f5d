package epixel_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/adapters/epixel"
	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/batch"
)

func newHostile(t testing.TB, base string, client *http.Client, secret string) batch.Adapter {
	c, err := epixel.New(epixel.Config{BaseURL: base, APIKey: secret, Token: secret, Client: client})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// TestDowngradeAlreadyBlocks: Epixel's documentation says an "already" answer to a
// downgrade with api_block_user=True did nothing, block included; the
// adapter sends the block and reports the row applied.
func TestDowngradeAlreadyBlocks(t *testing.T) {
	for _, tc := range []struct {
		role string
		op   batch.Op
	}{
		{epixeltest.Customer, batch.Op{Action: batch.DowngradeRole, Role: "Customer", Cells: []batch.Cell{{Column: "block_user", Value: "true"}}}},
		{epixeltest.PreferredCustomer, batch.Op{Action: batch.DowngradeRole, Role: "Preferred Customer", Cells: []batch.Cell{{Column: "block_user", Value: "true"}}}},
	} {
		fake := epixeltest.New(epixeltest.Options{APIKey: apiKey, Token: token})
		rec := &recorder{t: t, next: fake}
		c := newClient(t, adaptertest.Serve(t, rec))
		fake.AddUser("u1", epixeltest.User{Role: tc.role})
		op := tc.op
		op.User = "u1"
		rep, err := c.Apply(context.Background(), op)
		want := batch.Reply{HTTPStatus: http.StatusOK, Message: epixel.MessageBlockedAfterAlready}
		if err != nil || rep != want {
			t.Errorf("%s: Apply = %+v, %v; want %+v", tc.role, rep, err, want)
		}
		if got := state(fake, "u1"); got != "blocked=true role="+tc.role {
			t.Errorf("%s: state %q, want blocked with the role unchanged", tc.role, got)
		}
		if len(rec.reqs) != 2 || rec.reqs[0].path != "/downgrade/user-role/" ||
			rec.reqs[1].path != "/block/user/" || rec.reqs[1].fields["unique_id"] != "u1" {
			t.Errorf("%s: requests %+v, want the downgrade then a block of u1", tc.role, rec.reqs)
		}
	}
}

// TestDowngradeAlreadyWithoutBlock: with api_block_user=False, "already" is
// the whole answer, and nothing else is sent.
func TestDowngradeAlreadyWithoutBlock(t *testing.T) {
	fake := epixeltest.New(epixeltest.Options{APIKey: apiKey, Token: token})
	rec := &recorder{t: t, next: fake}
	c := newClient(t, adaptertest.Serve(t, rec))
	fake.AddUser("u1", epixeltest.User{Role: epixeltest.Customer})
	rep, err := c.Apply(context.Background(), batch.Op{User: "u1", Action: batch.DowngradeRole, Role: "Customer"})
	if err != nil || !rep.Already || len(rec.reqs) != 1 || state(fake, "u1") != "blocked=false role=Customer" {
		t.Errorf("Apply = %+v, %v after %d requests, state %s; want already, one request, not blocked",
			rep, err, len(rec.reqs), state(fake, "u1"))
	}
}

// TestDowngradeAlreadyBlockFails: the block's failure is the row's, with
// its own classification, and says what was being done.
func TestDowngradeAlreadyBlockFails(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		kind   batch.Kind
		code   string
		msg    string
	}{
		{401, detail(401, "Token is expired."), batch.Permanent, batch.CodeUnauthorized, "role already right; blocking the user: Token is expired."},
		{503, "", batch.Ambiguous, batch.CodeServer, "role already right; blocking the user: Service Unavailable"},
		{200, "<html>captive portal</html>", batch.Ambiguous, batch.CodeBadResponse,
			"role already right; blocking the user: not epixel's success envelope: <html>captive portal</html>"},
	} {
		block := &canned{status: tc.status, body: tc.body}
		mux := http.NewServeMux()
		mux.Handle("/downgrade/user-role/", &canned{status: 403, body: detail(403, "User already have a customer role.")})
		mux.Handle("/block/user/", block)
		c := newClient(t, adaptertest.Serve(t, mux))
		_, err := c.Apply(context.Background(), batch.Op{User: "u1", Action: batch.DowngradeRole, Role: "Customer", Cells: []batch.Cell{{Column: "block_user", Value: "true"}}})
		wantErr(t, err, tc.kind, tc.code, tc.status, tc.msg)
		if block.count() != 1 {
			t.Errorf("%d: block sent %d times, want 1", tc.status, block.count())
		}
	}
}
