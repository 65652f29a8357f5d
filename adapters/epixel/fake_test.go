package epixel_test

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/adapters/fakehttp"
)

const (
	key = "the-key"
	tok = "the-token"
	ok  = `{"status_code":200,"errors":{},"data":{}}`
)

type answer struct {
	status      int
	contentType string
	body        string
}

type client struct {
	t    *testing.T
	base string
}

func serve(t *testing.T, opts epixeltest.Options) (*epixeltest.Server, client) {
	fake := epixeltest.New(opts)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, client{t: t, base: srv.URL}
}

func startFake(t *testing.T) (*epixeltest.Server, client) {
	return serve(t, epixeltest.Options{APIKey: key, Token: tok})
}

// multipartBody encodes fields (name, value pairs) as multipart/form-data.
func multipartBody(t *testing.T, fields ...string) (io.Reader, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		if err := mw.WriteField(fields[i], fields[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

// do sends one request with the given headers ("apikey", "Authorization" ...).
func (c client) do(method, path string, body io.Reader, contentType string, header map[string]string) answer {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

var goodAuth = map[string]string{"apikey": key, "Authorization": "Bearer " + tok}

// post sends fields as multipart with valid credentials.
func (c client) post(path string, fields ...string) answer {
	c.t.Helper()
	body, ct := multipartBody(c.t, fields...)
	return c.do(http.MethodPost, path, body, ct, goodAuth)
}

func want(t *testing.T, got answer, status int, body string) {
	t.Helper()
	if got.status != status || got.body != body || got.contentType != "application/json" {
		t.Errorf("got %d %q %s, want %d application/json %s", got.status, got.contentType, got.body, status, body)
	}
}

func fieldErr(field, msg string) string {
	return fmt.Sprintf(`{"status_code":400,"errors":{%q:[%q]},"data":{}}`, field, msg)
}

func TestCredentials(t *testing.T) {
	fake, c := startFake(t)
	fake.AddUser("u1", epixeltest.User{})
	for _, h := range []map[string]string{
		{},
		{"apikey": key},
		{"Authorization": "Bearer " + tok},
		{"apikey": "nope", "Authorization": "Bearer " + tok},
		{"apikey": key, "Authorization": "Bearer nope"},
		{"apikey": key, "Authorization": "Beare " + tok}, // the documentation's typo
		{"apikey": key, "Authorization": tok},
	} {
		body, ct := multipartBody(t, "unique_id", "u1")
		want(t, c.do(http.MethodPost, "/block/user/", body, ct, h), 401, detail(401, "Invalid API key or token."))
	}
	if u, _ := fake.User("u1"); u.Blocked || fake.Writes("u1") != 0 {
		t.Errorf("a refused request changed state: %+v, writes %d", u, fake.Writes("u1"))
	}
	if fake.Requests() != 7 {
		t.Errorf("Requests() = %d, want 7", fake.Requests())
	}
}

func TestRoutes(t *testing.T) {
	fake, c := startFake(t)
	fake.AddUser("u1", epixeltest.User{})
	want(t, c.post("/block/user", "unique_id", "u1"), 404, detail(404, "Not found."))
	want(t, c.post("/user/get/roles/", "unique_id", "u1"), 404, detail(404, "Not found."))
	got := c.do(http.MethodGet, "/block/user/", nil, "", goodAuth)
	want(t, got, 405, detail(405, `Method "GET" not allowed.`))
	got = c.do(http.MethodPost, "/block/user/", strings.NewReader(`{"unique_id":"u1"}`), "application/json", goodAuth)
	if got.status != http.StatusUnsupportedMediaType {
		t.Errorf("JSON body: %d, want 415", got.status)
	}
	if fake.Writes("u1") != 0 || fake.Requests() != 4 {
		t.Errorf("writes %d requests %d, want 0 and 4", fake.Writes("u1"), fake.Requests())
	}
}

func TestURLEncoded(t *testing.T) {
	fake, c := startFake(t)
	fake.AddUser("u 1", epixeltest.User{Role: epixeltest.Customer})
	form := url.Values{"unique_id": {"u 1"}, "upgrade_to": {"Preferred Customer"}, "api_place_genealogy": {"True"}}
	got := c.do(http.MethodPost, "/upgrade/user-role/", strings.NewReader(form.Encode()),
		"application/x-www-form-urlencoded", goodAuth)
	want(t, got, 200, ok)
	if u, _ := fake.User("u 1"); u.Role != epixeltest.PreferredCustomer || !u.Genealogy {
		t.Errorf("user %+v", u)
	}
}

func TestValidation(t *testing.T) {
	fake, c := startFake(t)
	fake.AddUser("u1", epixeltest.User{})
	long := strings.Repeat("é", 256)
	for _, tc := range []struct {
		path   string
		fields []string
		body   string
	}{
		{"/block/user/", nil, fieldErr("unique_id", "This field is required and its may not be blank.")},
		{"/unblock/user/", []string{"unique_id", "  "}, fieldErr("unique_id", "This field is required and its may not be blank.")},
		{"/block/user/", []string{"unique_id", long}, fieldErr("unique_id", "Ensure this field has no more than 255 characters.")},
		{"/block/user/", []string{"unique_id", "ghost"}, fieldErr("unique_id", "User not exist or invalid unique id.")},
		{"/upgrade/user-role/", []string{"unique_id", "u1"}, fieldErr("upgrade_to", "This field is required and its may not be blank.")},
		{"/upgrade/user-role/", []string{"unique_id", "u1", "upgrade_to", "member"}, fieldErr("upgrade_to", "Invalid upgrade option, Choose a valid one.")},
		{"/upgrade/user-role/", []string{"unique_id", "u1", "upgrade_to", "Customer"}, fieldErr("upgrade_to", "Invalid upgrade option, Choose a valid one.")},
		{"/upgrade/user-role/", []string{"unique_id", "u1", "upgrade_to", "Preferred Customer"}, fieldErr("api_place_genealogy", "This field is required and its may not be blank.")},
		{"/upgrade/user-role/", []string{"unique_id", "u1", "upgrade_to", "Preferred Customer", "api_place_genealogy", "true"}, fieldErr("api_place_genealogy", "Choose a valid option.")},
		{"/downgrade/user-role/", []string{"unique_id", "u1"}, fieldErr("downgrade_to", "This field is required and its may not be blank.")},
		{"/downgrade/user-role/", []string{"unique_id", "u1", "downgrade_to", "Member"}, fieldErr("downgrade_to", "Invalid downgrade option, Choose a valid one.")},
		{"/downgrade/user-role/", []string{"unique_id", "u1", "downgrade_to", "Customer", "api_block_user", "yes"}, fieldErr("api_block_user", "Choose a valid option.")},
		{"/upgrade/user-role/", []string{"unique_id", "ghost", "upgrade_to", "x"},
			`{"status_code":400,"errors":{"unique_id":["User not exist or invalid unique id."],"upgrade_to":["Invalid upgrade option, Choose a valid one."]},"data":{}}`},
	} {
		want(t, c.post(tc.path, tc.fields...), 400, tc.body)
	}
	if u, _ := fake.User("u1"); u != (epixeltest.User{Role: epixeltest.Customer}) || fake.Writes("u1") != 0 {
		t.Errorf("invalid requests changed state: %+v, writes %d", u, fake.Writes("u1"))
	}
	if _, exists := fake.User("ghost"); exists {
		t.Error("an unknown user was created without AutoCreate")
	}
}

func TestTransitions(t *testing.T) {
	c, pc, m := epixeltest.Customer, epixeltest.PreferredCustomer, epixeltest.Member
	for _, tc := range []struct {
		before epixeltest.User
		path   string
		fields []string
		status int
		body   string
		after  epixeltest.User
	}{
		{epixeltest.User{Role: c}, "/block/user/", nil, 200, ok, epixeltest.User{Blocked: true, Role: c}},
		{epixeltest.User{Blocked: true, Role: c}, "/block/user/", nil, 200, ok, epixeltest.User{Blocked: true, Role: c}},
		{epixeltest.User{Blocked: true, Role: m}, "/unblock/user/", nil, 200, ok, epixeltest.User{Role: m}},
		{epixeltest.User{Role: m}, "/unblock/user/", nil, 200, ok, epixeltest.User{Role: m}},

		{epixeltest.User{Role: c}, "/upgrade/user-role/", []string{"upgrade_to", "Member"}, 200, ok, epixeltest.User{Role: m}},
		{epixeltest.User{Role: pc}, "/upgrade/user-role/", []string{"upgrade_to", "Member", "api_place_genealogy", "False"}, 200, ok, epixeltest.User{Role: m}},
		{epixeltest.User{Role: m}, "/upgrade/user-role/", []string{"upgrade_to", "Member"}, 403, detail(403, "User already have a member role."), epixeltest.User{Role: m}},
		{epixeltest.User{Role: c}, "/upgrade/user-role/", []string{"upgrade_to", "Preferred Customer", "api_place_genealogy", "True"}, 200, ok, epixeltest.User{Role: pc, Genealogy: true}},
		{epixeltest.User{Role: c}, "/upgrade/user-role/", []string{"upgrade_to", "Preferred Customer", "api_place_genealogy", "False"}, 200, ok, epixeltest.User{Role: pc}},
		{epixeltest.User{Role: pc}, "/upgrade/user-role/", []string{"upgrade_to", "Preferred Customer", "api_place_genealogy", "True"}, 403, detail(403, "User already have a preferred customer role."), epixeltest.User{Role: pc}},
		{epixeltest.User{Role: m}, "/upgrade/user-role/", []string{"upgrade_to", "Preferred Customer", "api_place_genealogy", "True"}, 403, detail(403, "User role is already upgraded."), epixeltest.User{Role: m}},

		{epixeltest.User{Role: m}, "/downgrade/user-role/", []string{"downgrade_to", "Customer", "api_block_user", "False"}, 200, ok, epixeltest.User{Role: c}},
		{epixeltest.User{Role: pc}, "/downgrade/user-role/", []string{"downgrade_to", "Customer"}, 200, ok, epixeltest.User{Role: c}},
		{epixeltest.User{Role: m}, "/downgrade/user-role/", []string{"downgrade_to", "Customer", "api_block_user", "True"}, 200, ok, epixeltest.User{Blocked: true, Role: c}},
		{epixeltest.User{Role: c}, "/downgrade/user-role/", []string{"downgrade_to", "Customer", "api_block_user", "True"}, 403, detail(403, "User already have a customer role."), epixeltest.User{Role: c}},
		{epixeltest.User{Role: m}, "/downgrade/user-role/", []string{"downgrade_to", "Preferred Customer", "api_block_user", "False"}, 200, ok, epixeltest.User{Role: pc}},
		{epixeltest.User{Role: pc}, "/downgrade/user-role/", []string{"downgrade_to", "Preferred Customer"}, 403, detail(403, "User already have a preferred customer role."), epixeltest.User{Role: pc}},
		// The documentation: an "already" downgrade is not carried out, so api_block_user=True does not block.
		{epixeltest.User{Role: pc}, "/downgrade/user-role/", []string{"downgrade_to", "Preferred Customer", "api_block_user", "True"}, 403, detail(403, "User already have a preferred customer role."), epixeltest.User{Role: pc}},
		{epixeltest.User{Role: c}, "/downgrade/user-role/", []string{"downgrade_to", "Preferred Customer"}, 403, detail(403, "User already have a downgraded role."), epixeltest.User{Role: c}},
	} {
		fake, cl := startFake(t)
		fake.AddUser("u1", tc.before)
		got := cl.post(tc.path, append([]string{"unique_id", "u1"}, tc.fields...)...)
		name := fmt.Sprintf("%+v %s %q", tc.before, tc.path, tc.fields)
		if got.status != tc.status || got.body != tc.body {
			t.Errorf("%s: %d %s, want %d %s", name, got.status, got.body, tc.status, tc.body)
		}
		if u, _ := fake.User("u1"); u != tc.after {
			t.Errorf("%s: user %+v, want %+v", name, u, tc.after)
		}
		// 403s were processed against the user too: they count as writes.
		if fake.Writes("u1") != 1 {
			t.Errorf("%s: writes %d, want 1", name, fake.Writes("u1"))
		}
	}
}

func TestAutoCreate(t *testing.T) {
	fake, c := serve(t, epixeltest.Options{APIKey: key, Token: tok, AutoCreate: true})
	want(t, c.post("/block/user/", "unique_id", "new-1"), 200, ok)
	if u, exists := fake.User("new-1"); !exists || u != (epixeltest.User{Blocked: true, Role: epixeltest.Customer}) {
		t.Errorf("user %+v (exists %v), want a blocked Customer", u, exists)
	}
	want(t, c.post("/downgrade/user-role/", "unique_id", "new-2", "downgrade_to", "Customer"),
		403, detail(403, "User already have a customer role."))
	if u, exists := fake.User("new-2"); !exists || u.Role != epixeltest.Customer {
		t.Errorf("user %+v (exists %v), want a Customer", u, exists)
	}
	want(t, c.post("/upgrade/user-role/", "unique_id", "new-3", "upgrade_to", "x"),
		400, fieldErr("upgrade_to", "Invalid upgrade option, Choose a valid one."))
	if _, exists := fake.User("new-3"); exists {
		t.Error("an invalid request created a user")
	}
}

func TestFaultsSeeTheUserFromTheBody(t *testing.T) {
	fake, c := startFake(t)
	fake.AddUser("u1", epixeltest.User{})
	fake.AddUser("u2", epixeltest.User{})
	fake.Faults.Add(fakehttp.Rule{User: "u2", Fault: fakehttp.Fault{Status: 429, RetryAfter: "5"}})
	want(t, c.post("/block/user/", "unique_id", "u1"), 200, ok)
	if got := c.post("/block/user/", "unique_id", "u2"); got.status != 429 {
		t.Errorf("u2: %d, want the injected 429", got.status)
	}
	if u, _ := fake.User("u2"); u.Blocked || fake.Writes("u2") != 0 {
		t.Error("a faulted request changed state")
	}
}

func TestConcurrentUse(t *testing.T) {
	fake, c := serve(t, epixeltest.Options{APIKey: key, Token: tok, AutoCreate: true})
	type prepared struct {
		body []byte
		ct   string
	}
	reqs := make([]prepared, 50)
	for i := range reqs {
		body, ct := multipartBody(t, "unique_id", fmt.Sprintf("u%d", i%5))
		b, _ := io.ReadAll(body)
		reqs[i] = prepared{b, ct}
	}
	var wg sync.WaitGroup
	for _, p := range reqs {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, c.base+"/block/user/", bytes.NewReader(p.body))
			req.Header.Set("Content-Type", p.ct)
			req.Header.Set("apikey", key)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	wg.Wait()
	total := 0
	for i := range 5 {
		total += fake.Writes(fmt.Sprintf("u%d", i))
	}
	if total != 50 || fake.Requests() != 50 {
		t.Errorf("writes %d requests %d, want 50 and 50", total, fake.Requests())
	}
}

// BenchmarkServeHTTP measures the fake alone, without the network: it sits
// under load benchmarks at tens of thousands of requests a second.
func BenchmarkServeHTTP(b *testing.B) {
	fake := epixeltest.New(epixeltest.Options{APIKey: key, Token: tok, AutoCreate: true})
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("unique_id", "u1")
	_ = mw.WriteField("upgrade_to", "Member")
	_ = mw.Close()
	body, ct := buf.Bytes(), mw.FormDataContentType()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/upgrade/user-role/", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("apikey", key)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		fake.ServeHTTP(w, req)
		if w.Code != 200 && w.Code != 403 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
