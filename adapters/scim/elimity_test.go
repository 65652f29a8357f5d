package scim

// The adapter against a SCIM server nobody here wrote: github.com/elimity-com/scim
// does the routing, the filter parsing and validation, the PatchOp
// validation and the error bodies; the test supplies only an in-memory
// ResourceHandler and, in front, bearer-token checking (which the library
// leaves to its user) and the fault injector the conformance suite drives.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	escim "github.com/elimity-com/scim"
	eerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/adapters/scim/scimtest"
	"github.com/userbatch/userbatch/batch"
)

// memUsers is an in-memory elimity ResourceHandler for Users. Writes
// counts the PATCHes and PUTs it carried out, per id.
type memUsers struct {
	mu       sync.Mutex
	attrs    map[string]escim.ResourceAttributes
	versions map[string]int
	writes   map[string]int
}

func newMemUsers() *memUsers {
	return &memUsers{attrs: map[string]escim.ResourceAttributes{}, versions: map[string]int{}, writes: map[string]int{}}
}

func (h *memUsers) add(id, userName string, active bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attrs[id] = escim.ResourceAttributes{"userName": userName, "active": active, "displayName": "User " + id}
	h.versions[id] = 1
	h.writes[id] = 0
}

// state is "active", "inactive" or "missing", as the fixtures say it.
func (h *memUsers) state(id string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	a, ok := h.attrs[id]
	switch {
	case !ok:
		return "missing"
	case a["active"] == true:
		return "active"
	}
	return "inactive"
}

func (h *memUsers) attr(id, name string) any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.attrs[id][name]
}

func (h *memUsers) writeCount(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.writes[id]
}

// resource must be called with h.mu held.
func (h *memUsers) resource(id string) escim.Resource {
	attrs := escim.ResourceAttributes{}
	for k, v := range h.attrs[id] {
		attrs[k] = v
	}
	return escim.Resource{ID: id, Attributes: attrs, Meta: escim.Meta{Version: fmt.Sprintf(`W/"%d"`, h.versions[id])}}
}

func (h *memUsers) Create(_ *http.Request, attrs escim.ResourceAttributes) (escim.Resource, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := fmt.Sprintf("created-%d", len(h.attrs)+1)
	h.attrs[id], h.versions[id] = attrs, 1
	return h.resource(id), nil
}

func (h *memUsers) Get(_ *http.Request, id string) (escim.Resource, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.attrs[id]; !ok {
		return escim.Resource{}, eerrors.ScimErrorResourceNotFound(id)
	}
	return h.resource(id), nil
}

func (h *memUsers) GetAll(_ *http.Request, params escim.ListRequestParams) (escim.Page, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]string, 0, len(h.attrs))
	for id, a := range h.attrs {
		if params.FilterValidator == nil || params.FilterValidator.PassesFilter(a) == nil {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	page := escim.Page{TotalResults: len(ids), Resources: []escim.Resource{}}
	start := min(max(params.StartIndex-1, 0), len(ids))
	for _, id := range ids[start:min(start+params.Count, len(ids))] {
		page.Resources = append(page.Resources, h.resource(id))
	}
	return page, nil
}

func (h *memUsers) Replace(_ *http.Request, id string, attrs escim.ResourceAttributes) (escim.Resource, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.attrs[id]; !ok {
		return escim.Resource{}, eerrors.ScimErrorResourceNotFound(id)
	}
	h.attrs[id] = attrs
	h.versions[id]++
	h.writes[id]++
	return h.resource(id), nil
}

func (h *memUsers) Delete(_ *http.Request, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.attrs[id]; !ok {
		return eerrors.ScimErrorResourceNotFound(id)
	}
	delete(h.attrs, id)
	return nil
}

func (h *memUsers) Patch(_ *http.Request, id string, ops []escim.PatchOperation) (escim.Resource, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	a, ok := h.attrs[id]
	if !ok {
		return escim.Resource{}, eerrors.ScimErrorResourceNotFound(id)
	}
	for _, op := range ops {
		if op.Path == nil { // the value names the attributes (RFC 7644 §3.5.2.3)
			values, ok := op.Value.(map[string]interface{})
			if !ok || op.Op == escim.PatchOperationRemove {
				return escim.Resource{}, eerrors.ScimErrorNoTarget
			}
			for k, v := range values {
				a[k] = v
			}
			continue
		}
		switch op.Op {
		case escim.PatchOperationAdd, escim.PatchOperationReplace:
			a[op.Path.String()] = op.Value
		case escim.PatchOperationRemove:
			delete(a, op.Path.String())
		}
	}
	h.versions[id]++
	h.writes[id]++
	return h.resource(id), nil
}

// elimityServer is the library's server for Users, with PATCH or without.
func elimityServer(t testing.TB, users *memUsers, patch bool) http.Handler {
	t.Helper()
	srv, err := escim.NewServer(&escim.ServerArgs{
		ServiceProviderConfig: &escim.ServiceProviderConfig{SupportFiltering: true, SupportPatch: patch, MaxResults: 50},
		ResourceTypes: []escim.ResourceType{{
			ID:       optional.NewString("User"),
			Name:     "User",
			Endpoint: "/Users",
			Schema:   schema.CoreUserSchema(),
			Handler:  users,
		}},
	})
	if err != nil {
		t.Fatalf("elimity NewServer: %v", err)
	}
	return srv
}

// front is what a provider puts before its SCIM server: bearer tokens, and
// here the fault injector. It also undoes the library's one deviation
// found: it unescapes an id that net/http has already unescaped (so
// "a%2Fb" reaches the handler as "a/b" but "90%252F" as "90/", not
// "90%2F"); handing it the escaped path makes ids arrive as sent.
func front(next http.Handler, faults *fakehttp.Injector) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		id, _ := strings.CutPrefix(r.URL.Path, "/Users/")
		after := faults.Before(w, r, id)
		if after == nil {
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+goodToken {
			w.Header().Set("Content-Type", "application/scim+json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"401","detail":"invalid token"}`)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = r.URL.EscapedPath(), ""
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r2)
		if !after.Answer(w) {
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

func TestConformanceElimity(t *testing.T) {
	f := fixture(scimtest.Options{}, newHostile, nil)
	f.Fake = func(t *testing.T) *adaptertest.Fake {
		users := newMemUsers()
		faults := &fakehttp.Injector{}
		fake := discoveredFake(t, adaptertest.Serve(t, front(elimityServer(t, users, true), faults)), faults)
		fake.AddUser = func(id string, op batch.Op) { users.add(id, "name-"+id, op.Action == batch.Disable) }
		fake.State, fake.Writes = users.state, users.writeCount
		return fake
	}
	adaptertest.Run(t, f)
}

func elimitySetup(t *testing.T, patch bool) (*memUsers, *Client) {
	t.Helper()
	users := newMemUsers()
	base := adaptertest.Serve(t, front(elimityServer(t, users, patch), &fakehttp.Injector{}))
	return users, newClient(t, base, goodToken)
}

// TestElimity runs each behaviour the adapter relies on against the
// library's server.
func TestElimity(t *testing.T) {
	ctx := context.Background()
	t.Run("discovery", func(t *testing.T) {
		_, c := elimitySetup(t, true)
		f, err := c.discover(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := (Features{Patch: true, Filter: true, MaxResults: 50}); f != want {
			t.Errorf("Features %+v, want %+v", f, want)
		}
	})
	t.Run("disable, enable, already, verify", func(t *testing.T) {
		users, c := elimitySetup(t, true)
		users.add("u1", "alice@example.com", true)
		for _, a := range []batch.Action{batch.Disable, batch.Enable} {
			st, err := c.Read(ctx, op("u1", a))
			if err != nil || st.InState {
				t.Fatalf("%s: Read = %+v, %v; want not in state", a, st, err)
			}
			if rep, err := c.Apply(ctx, op("u1", a)); err != nil || rep.Already {
				t.Fatalf("%s: Apply = %+v, %v", a, rep, err)
			}
			// verify: read back
			if st, err = c.Read(ctx, op("u1", a)); err != nil || !st.InState {
				t.Fatalf("%s: read back = %+v, %v; want in state", a, st, err)
			}
		}
		if users.writeCount("u1") != 2 || users.attr("u1", "displayName") != "User u1" {
			t.Errorf("%d writes, displayName %v; want 2 and untouched", users.writeCount("u1"), users.attr("u1", "displayName"))
		}
	})
	t.Run("not found", func(t *testing.T) {
		_, c := elimitySetup(t, true)
		_, err := c.Read(ctx, op("nobody", batch.Enable))
		berr := mustError(t, err, batch.Permanent, batch.CodeNotFound)
		if !strings.Contains(berr.Message, "Resource nobody not found") {
			t.Errorf("message %q lacks the SCIM error's detail", berr.Message)
		}
		_, err = c.Apply(ctx, op("nobody", batch.Enable))
		mustError(t, err, batch.Permanent, batch.CodeNotFound)
	})
	t.Run("userName lookup", func(t *testing.T) {
		users, c := elimitySetup(t, true)
		// No '"' or '\' in the name: the library's filter parser
		// (scim2/filter-parser) strips the quotes of a compValue without
		// unescaping it, where RFC 7644 §3.4.2.2 makes it a JSON string;
		// the adapter escapes as the RFC says, and scimtest unescapes.
		users.add("u1", "o'brien+x y&z@example.com", true)
		users.add("u2", "bob@example.com", true)
		users.add("u3", "carol@example.com", true)
		users.add("u4", "carol@example.com", true)
		st, err := c.Read(ctx, op("userName:o'brien+x y&z@example.com", batch.Disable))
		if err != nil || st.InState {
			t.Fatalf("Read by a userName that needs URL escaping = %+v, %v", st, err)
		}
		if _, err := c.Apply(ctx, op("userName:o'brien+x y&z@example.com", batch.Disable)); err != nil {
			t.Fatal(err)
		}
		if users.state("u1") != "inactive" || users.state("u2") != "active" {
			t.Errorf("u1 %s, u2 %s; want only u1 inactive", users.state("u1"), users.state("u2"))
		}
		if st, err := c.Read(ctx, op("userName:BOB@example.com", batch.Enable)); err != nil || !st.InState {
			t.Errorf("Read in another case = %+v, %v; want found (userName is not case-exact)", st, err)
		}
		_, err = c.Read(ctx, op("userName:carol@example.com", batch.Disable))
		mustError(t, err, batch.Permanent, CodeAmbiguous)
		_, err = c.Read(ctx, op("userName:dave@example.com", batch.Disable))
		mustError(t, err, batch.Permanent, batch.CodeNotFound)
	})
	t.Run("PUT without PATCH", func(t *testing.T) {
		users, c := elimitySetup(t, false)
		users.add("u1", "alice@example.com", true)
		if _, err := c.Apply(ctx, op("u1", batch.Disable)); err != nil {
			t.Fatalf("Apply by PUT: %v", err)
		}
		if users.state("u1") != "inactive" || users.attr("u1", "userName") != "alice@example.com" || users.attr("u1", "displayName") != "User u1" {
			t.Errorf("after PUT: %s, userName %v, displayName %v", users.state("u1"), users.attr("u1", "userName"), users.attr("u1", "displayName"))
		}
	})
	t.Run("dry run and run", func(t *testing.T) {
		users, c := elimitySetup(t, true)
		users.add("u1", "u1@example.com", true)
		users.add("u2", "u2@example.com", false)
		ops := []batch.Op{
			{Target: "app", User: "u1", Action: batch.Disable},
			{Target: "app", User: "userName:u2@example.com", Action: batch.Disable},
			{Target: "app", User: "u3", Action: batch.Disable},
		}
		want := map[bool][]batch.Outcome{
			true:  {batch.Planned, batch.Planned, batch.Failed},
			false: {batch.Applied, batch.Already, batch.Failed},
		}
		for _, dry := range []bool{true, false} {
			res := runOps(t, c, ops, dry, nil)
			for i, r := range res {
				if r.Outcome != want[dry][i] {
					t.Errorf("dry=%v row %d: %s (%s %s), want %s", dry, i, r.Outcome, r.Detail, r.Message, want[dry][i])
				}
			}
			if dry && users.writeCount("u1") != 0 {
				t.Errorf("the dry run wrote")
			}
		}
		if users.state("u1") != "inactive" || users.writeCount("u1") != 1 || users.writeCount("u2") != 0 {
			t.Errorf("u1 %s after %d writes, u2 %d writes", users.state("u1"), users.writeCount("u1"), users.writeCount("u2"))
		}
	})
}

// TestFakeAgreesWithElimity sends the same raw requests to scimtest and to
// the library's server, holding the same users, and compares what the
// adapter depends on: the status, the error schema, the list's
// totalResults and the user's "active". Where they differed, RFC 7644
// decided, and the fake was fixed or the library's deviation is noted in
// the test above. Left out on purpose: filters other than eq (the fake
// refuses them, as AWS does), several operations on "active" in one PATCH
// (the fake refuses it, as AWS does), ETags (the library's
// ServiceProviderConfig always says unsupported), and methods an endpoint
// does not serve (the library answers DELETE /ServiceProviderConfig with
// the document; the fake says 405).
func TestFakeAgreesWithElimity(t *testing.T) {
	const (
		patchOp = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[`
		user    = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],`
	)
	requests := []struct {
		method, path, body string
	}{
		{"GET", "/ServiceProviderConfig", ""},
		{"GET", "/Users/u1", ""},
		{"GET", "/Users/nobody", ""},
		{"GET", "/Users?filter=" + filterQuery("alice@example.com")[len("filter="):], ""},
		{"GET", "/Users?filter=" + filterQuery("ALICE@EXAMPLE.COM")[len("filter="):], ""},
		{"GET", "/Users?filter=" + filterQuery("nobody@example.com")[len("filter="):], ""},
		{"GET", "/Users?filter=userName%20eq", ""},
		{"PATCH", "/Users/u1", patchOp + `{"op":"replace","path":"active","value":false}]}`},
		{"PATCH", "/Users/u2", patchOp + `{"op":"replace","value":{"active":true}}]}`},
		{"PATCH", "/Users/u1", patchOp + `]}`},
		{"PATCH", "/Users/u1", `{"schemas":["urn:x"],"Operations":[{"op":"replace","path":"active","value":true}]}`},
		{"PATCH", "/Users/u1", patchOp + `{"op":"replace","path":"active","value":"yes"}]}`},
		{"PATCH", "/Users/u1", patchOp + `{"op":"replace","path":"id","value":"x"}]}`},
		{"PATCH", "/Users/nobody", patchOp + `{"op":"replace","path":"active","value":false}]}`},
		{"PUT", "/Users/u2", user + `"id":"u2","userName":"bob@example.com","active":false}`},
		{"PUT", "/Users/u2", user + `"active":true}`},
		{"PUT", "/Users/nobody", user + `"userName":"x@example.com","active":true}`},
	}
	users := newMemUsers()
	users.add("u1", "alice@example.com", true)
	users.add("u2", "bob@example.com", false)
	lib := httptest.NewServer(front(elimityServer(t, users, true), &fakehttp.Injector{}))
	t.Cleanup(lib.Close)
	fake := scimtest.New(scimtest.Options{Token: goodToken})
	fake.AddUser(scimtest.User{ID: "u1", UserName: "alice@example.com", Active: true})
	fake.AddUser(scimtest.User{ID: "u2", UserName: "bob@example.com", Active: false})
	ours := httptest.NewServer(fake)
	t.Cleanup(ours.Close)

	for _, rq := range requests {
		a, b := rawCall(t, lib.URL, rq.method, rq.path, rq.body), rawCall(t, ours.URL, rq.method, rq.path, rq.body)
		t.Logf("%s %s: %s", rq.method, rq.path, b)
		if a != b {
			t.Errorf("%s %s %s:\n  elimity  %s\n  scimtest %s", rq.method, rq.path, rq.body, a, b)
		}
	}
}

// rawCall sends one request and sums up the answer as the adapter reads it.
func rawCall(t *testing.T, base, method, path, body string) string {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+goodToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Schemas      []string `json:"schemas"`
		Status       any      `json:"status"`
		TotalResults *int     `json:"totalResults"`
		Active       *bool    `json:"active"`
		ID           string   `json:"id"`
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &doc)
	sum := fmt.Sprintf("%d", resp.StatusCode)
	switch {
	case resp.StatusCode >= 400:
		sum += fmt.Sprintf(" schemas=%v status=%#v", doc.Schemas, doc.Status)
	case doc.TotalResults != nil:
		sum += fmt.Sprintf(" totalResults=%d", *doc.TotalResults)
	case doc.Active != nil:
		sum += fmt.Sprintf(" id=%s active=%v", doc.ID, *doc.Active)
	}
	return sum
}
