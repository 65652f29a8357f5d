package scim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters/scim/scimtest"
)

const token = "fake-token-91ab"

// call sends one request to srv with the good token (unless header says
// otherwise) and decodes the JSON answer.
func call(t *testing.T, srv *httptest.Server, method, path, body string, header map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %s", method, path, raw)
		}
	}
	return resp.StatusCode, resp.Header, doc
}

func start(t *testing.T, opts scimtest.Options) (*scimtest.Server, *httptest.Server) {
	t.Helper()
	opts.Token = token
	fake := scimtest.New(opts)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv
}

// wantError checks an RFC 7644 §3.12 error: the Error schema, status as a
// string, and scimType when one is expected.
func wantError(t *testing.T, status int, doc map[string]any, wantStatus int, scimType string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d (%v)", status, wantStatus, doc)
	}
	schemas, _ := doc["schemas"].([]any)
	if len(schemas) != 1 || schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" || doc["status"] != strconv.Itoa(wantStatus) {
		t.Errorf("error body %v: want the Error schema and status %q", doc, strconv.Itoa(wantStatus))
	}
	if got, _ := doc["scimType"].(string); got != scimType {
		t.Errorf("scimType %q, want %q", got, scimType)
	}
}

const patchInactive = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`

func TestAuth(t *testing.T) {
	fake, srv := start(t, scimtest.Options{})
	fake.AddUser(scimtest.User{ID: "u1", UserName: "alice", Active: true})
	for _, auth := range []string{"", "Bearer wrong", "Basic " + token, token} {
		status, h, doc := call(t, srv, http.MethodPatch, "/Users/u1", patchInactive, map[string]string{"Authorization": auth})
		wantError(t, status, doc, http.StatusUnauthorized, "")
		if h.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
	}
	if fake.Writes("u1") != 0 {
		t.Errorf("a refused request was written")
	}
}

func TestServiceProviderConfig(t *testing.T) {
	_, srv := start(t, scimtest.Options{NoETag: true, MaxResults: 7})
	status, _, doc := call(t, srv, http.MethodGet, "/ServiceProviderConfig", "", nil)
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	supported := func(key string) any { return doc[key].(map[string]any)["supported"] }
	if supported("patch") != true || supported("etag") != false || supported("filter") != true ||
		doc["filter"].(map[string]any)["maxResults"] != float64(7) {
		t.Errorf("config %v: want patch, filter (maxResults 7), no etag", doc)
	}
}

func TestGetUser(t *testing.T) {
	fake, srv := start(t, scimtest.Options{})
	fake.AddUser(scimtest.User{ID: "a/b c", UserName: "alice", Active: true, Attributes: map[string]any{"displayName": "Alice"}})
	status, h, doc := call(t, srv, http.MethodGet, "/Users/"+url.PathEscape("a/b c"), "", nil)
	if status != http.StatusOK || h.Get("Content-Type") != "application/scim+json" {
		t.Fatalf("status %d, %s", status, h.Get("Content-Type"))
	}
	meta := doc["meta"].(map[string]any)
	if doc["id"] != "a/b c" || doc["userName"] != "alice" || doc["active"] != true || doc["displayName"] != "Alice" ||
		meta["version"] != `W/"1"` || h.Get("ETag") != `W/"1"` || meta["resourceType"] != "User" {
		t.Errorf("resource %v, ETag %q", doc, h.Get("ETag"))
	}
	status, _, doc = call(t, srv, http.MethodGet, "/Users/nobody", "", nil)
	wantError(t, status, doc, http.StatusNotFound, "")
}

func TestFilter(t *testing.T) {
	fake, srv := start(t, scimtest.Options{})
	fake.AddUser(scimtest.User{ID: "u1", UserName: `o"brien\x`, Active: true})
	fake.AddUser(scimtest.User{ID: "u2", UserName: "bob", Active: true})
	fake.AddUser(scimtest.User{ID: "u3", UserName: "BOB", Active: true})
	query := func(filter string) (int, map[string]any) {
		status, _, doc := call(t, srv, http.MethodGet, "/Users?filter="+url.QueryEscape(filter), "", nil)
		return status, doc
	}
	for filter, want := range map[string]float64{
		`userName eq "o\"brien\\x"`: 1,
		`USERNAME EQ "bob"`:         2, // attribute, operator and value are not case-exact
		`userName eq "carol"`:       0,
	} {
		status, doc := query(filter)
		if status != http.StatusOK || doc["totalResults"] != want || len(doc["Resources"].([]any)) != int(want) {
			t.Errorf("%s: %d %v, want %v results", filter, status, doc, want)
		}
	}
	for _, filter := range []string{`userName sw "b"`, `active eq true`, `userName eq bob`, `userName eq "a" and active eq true`} {
		status, doc := query(filter)
		wantError(t, status, doc, http.StatusBadRequest, "invalidFilter")
	}
	status, doc := query("")
	if status != http.StatusOK || doc["totalResults"] != float64(3) {
		t.Errorf("no filter: %d %v", status, doc)
	}
	status, _, doc = call(t, srv, http.MethodGet, "/Users?startIndex=2&count=1", "", nil)
	if res := doc["Resources"].([]any); status != http.StatusOK || len(res) != 1 || res[0].(map[string]any)["id"] != "u2" {
		t.Errorf("paging: %d %v", status, doc)
	}

	_, srv2 := start(t, scimtest.Options{NoFilter: true})
	status, _, doc = call(t, srv2, http.MethodGet, "/Users?filter="+url.QueryEscape(`userName eq "bob"`), "", nil)
	wantError(t, status, doc, http.StatusBadRequest, "invalidFilter")
}

func TestPatch(t *testing.T) {
	fake, srv := start(t, scimtest.Options{})
	fake.AddUser(scimtest.User{ID: "u1", UserName: "alice", Active: true})
	status, h, doc := call(t, srv, http.MethodPatch, "/Users/u1", patchInactive, map[string]string{"If-Match": `W/"1"`})
	if status != http.StatusOK || doc["active"] != false || h.Get("ETag") != `W/"2"` {
		t.Fatalf("PATCH: %d %v ETag %q", status, doc, h.Get("ETag"))
	}
	// The same write again is a write: a new version, counted.
	status, _, _ = call(t, srv, http.MethodPatch, "/Users/u1", patchInactive, nil)
	if status != http.StatusOK || fake.Version("u1") != `W/"3"` || fake.Writes("u1") != 2 {
		t.Errorf("repeat: %d, version %s, %d writes", status, fake.Version("u1"), fake.Writes("u1"))
	}
	status, _, doc = call(t, srv, http.MethodPatch, "/Users/u1", patchInactive, map[string]string{"If-Match": `W/"1"`})
	wantError(t, status, doc, http.StatusPreconditionFailed, "")
	if fake.Writes("u1") != 2 {
		t.Errorf("a 412 was written")
	}
	pathless := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","value":{"active":true}}]}`
	if status, _, doc = call(t, srv, http.MethodPatch, "/Users/u1", pathless, nil); status != http.StatusOK || doc["active"] != true {
		t.Errorf("path-less replace: %d %v", status, doc)
	}
	for body, scimType := range map[string]string{
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false},{"op":"replace","path":"active","value":true}]}`: "invalidValue",
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":"false"}]}`:                                             "invalidValue",
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[]}`:                                                                                             "invalidValue",
		`{"Operations":[{"op":"replace","path":"active","value":false}]}`:                                                                                                           "invalidSyntax",
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"id","value":"x"}]}`:                                                     "mutability",
	} {
		status, _, doc := call(t, srv, http.MethodPatch, "/Users/u1", body, nil)
		wantError(t, status, doc, http.StatusBadRequest, scimType)
	}
	status, _, doc = call(t, srv, http.MethodPatch, "/Users/u1", patchInactive, map[string]string{"Content-Type": "text/plain"})
	wantError(t, status, doc, http.StatusUnsupportedMediaType, "")
	status, _, doc = call(t, srv, http.MethodPatch, "/Users/nobody", patchInactive, nil)
	wantError(t, status, doc, http.StatusNotFound, "")
	if fake.Writes("u1") != 3 {
		t.Errorf("%d writes, want 3: refused requests are not writes", fake.Writes("u1"))
	}

	_, srv2 := start(t, scimtest.Options{NoPatch: true})
	status, _, doc = call(t, srv2, http.MethodPatch, "/Users/u1", patchInactive, nil)
	wantError(t, status, doc, http.StatusNotImplemented, "")
}

func TestPut(t *testing.T) {
	fake, srv := start(t, scimtest.Options{})
	fake.AddUser(scimtest.User{ID: "u1", UserName: "alice", Active: true, Attributes: map[string]any{"displayName": "Alice", "title": "CEO"}})
	body := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"other","userName":"alice2","active":false,"displayName":"Alice B","meta":{"version":"W/\"9\""}}`
	status, _, doc := call(t, srv, http.MethodPut, "/Users/u1", body, map[string]string{"If-Match": `W/"1"`})
	if status != http.StatusOK || doc["id"] != "u1" {
		t.Fatalf("PUT: %d %v", status, doc)
	}
	u, _ := fake.User("u1")
	if u.UserName != "alice2" || u.Active || u.Attributes["displayName"] != "Alice B" || u.Attributes["title"] != nil {
		t.Errorf("after PUT: %+v; want every attribute replaced, id and meta ignored", u)
	}
	status, _, doc = call(t, srv, http.MethodPut, "/Users/u1", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"active":true}`, nil)
	wantError(t, status, doc, http.StatusBadRequest, "invalidValue")
	status, _, doc = call(t, srv, http.MethodPut, "/Users/u1", body, map[string]string{"If-Match": `W/"1"`})
	wantError(t, status, doc, http.StatusPreconditionFailed, "")
}

func TestHideInactive(t *testing.T) {
	fake, srv := start(t, scimtest.Options{HideInactive: true})
	fake.AddUser(scimtest.User{ID: "on", UserName: "on", Active: true})
	fake.AddUser(scimtest.User{ID: "off", UserName: "off", Active: false})
	status, _, doc := call(t, srv, http.MethodGet, "/Users", "", nil)
	if status != http.StatusOK || doc["totalResults"] != float64(1) {
		t.Errorf("list: %d %v; want only the active user", status, doc)
	}
	status, _, doc = call(t, srv, http.MethodGet, "/Users/off", "", nil)
	wantError(t, status, doc, http.StatusNotFound, "")
	enable := strings.Replace(patchInactive, "false", "true", 1)
	if status, _, doc = call(t, srv, http.MethodPatch, "/Users/off", enable, nil); status != http.StatusOK || doc["active"] != true {
		t.Errorf("enable a hidden user: %d %v", status, doc)
	}
	if status, _, _ = call(t, srv, http.MethodGet, "/Users/off", "", nil); status != http.StatusOK {
		t.Errorf("active again but still hidden: %d", status)
	}
}

func TestChangeAndAutoCreate(t *testing.T) {
	fake, srv := start(t, scimtest.Options{AutoCreate: true})
	status, _, doc := call(t, srv, http.MethodGet, "/Users/new-1", "", nil)
	if status != http.StatusOK || doc["active"] != true {
		t.Fatalf("auto-created: %d %v", status, doc)
	}
	if !fake.Change("new-1", func(u *scimtest.User) { u.Active = false }) || fake.Version("new-1") != `W/"2"` || fake.Writes("new-1") != 0 {
		t.Errorf("Change: version %s, %d writes", fake.Version("new-1"), fake.Writes("new-1"))
	}
}
