package msgkart_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/userbatch/userbatch/adapters/msgkart/msgkarttest"
)

const (
	key   = "k3y"
	email = "ops+bot@example.com"
	creds = "?apikey=k3y&email=ops%2Bbot%40example.com"
)

type reply struct {
	status      int
	contentType string
	body        string
}

func start(t *testing.T, opts msgkarttest.Options) (*msgkarttest.Server, string) {
	t.Helper()
	fake := msgkarttest.New(opts)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv.URL
}

// send makes one request; it may only run on the test's goroutine.
func send(t *testing.T, method, url string) reply {
	t.Helper()
	a, err := do(method, url)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func do(method, url string) (reply, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return reply{}, err
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header.Get("Content-Type"), string(body)}, err
}

func check(t *testing.T, got reply, status int, body string) {
	t.Helper()
	if want := (reply{status, "application/json", body}); got != want {
		t.Errorf("answer %+v, want %+v", got, want)
	}
}

func TestEnableDisable(t *testing.T) {
	fake, base := start(t, msgkarttest.Options{APIKey: key, Email: email})
	fake.AddUser("u1", msgkarttest.User{Status: msgkarttest.StatusBusy})
	path := base + "/api/v1/business/user/u1/"

	check(t, send(t, "POST", path+"enable"+creds), 200, `{"message":"User enabled successfully"}`)
	if u, _ := fake.User("u1"); u.Status != msgkarttest.StatusBusy {
		t.Errorf("enable changed Busy to %q", u.Status)
	}
	for range 2 {
		check(t, send(t, "POST", path+"disable"+creds), 200, `{"message":"User disabled successfully"}`)
	}
	check(t, send(t, "GET", path+"status"+creds), 200, `{"userStatus":"Disabled"}`)
	check(t, send(t, "POST", path+"enable"+creds), 200, `{"message":"User enabled successfully"}`)
	check(t, send(t, "GET", path+"status"+creds), 200, `{"userStatus":"Available"}`)
	if n := fake.Writes("u1"); n != 4 {
		t.Errorf("Writes = %d, want 4 (reads excluded, repeats included)", n)
	}
	if n := fake.Requests(); n != 6 {
		t.Errorf("Requests = %d, want 6", n)
	}
}

func TestRejections(t *testing.T) {
	fake, base := start(t, msgkarttest.Options{APIKey: key, Email: email})
	fake.AddUser("u1", msgkarttest.User{})
	path := base + "/api/v1/business/user/u1/disable"
	for _, tc := range []struct {
		name, method, url string
		status            int
		body              string
	}{
		{"no query", "POST", path, 400, `{"message":"apikey and email are required"}`},
		{"no email", "POST", path + "?apikey=k3y", 400, `{"message":"apikey and email are required"}`},
		{"empty apikey", "POST", path + "?apikey=&email=ops%2Bbot%40example.com", 400, `{"message":"apikey and email are required"}`},
		{"wrong apikey", "POST", path + "?apikey=nope&email=ops%2Bbot%40example.com", 401, `{"message":"Invalid credentials"}`},
		{"wrong email", "POST", path + "?apikey=k3y&email=other%40example.com", 401, `{"message":"Invalid credentials"}`},
		// An unescaped '+' is a space in a query: not the account's email.
		{"plus unescaped", "POST", path + "?apikey=k3y&email=ops+bot@example.com", 401, `{"message":"Invalid credentials"}`},
		{"unknown user", "POST", base + "/api/v1/business/user/ghost/disable" + creds, 404, `{"message":"User not found"}`},
		{"unknown user status", "GET", base + "/api/v1/business/user/ghost/status" + creds, 404, `{"message":"User not found"}`},
		{"GET enable", "GET", base + "/api/v1/business/user/u1/enable" + creds, 405, `{"message":"Method not allowed"}`},
		{"PUT disable", "PUT", path + creds, 405, `{"message":"Method not allowed"}`},
		{"POST status", "POST", base + "/api/v1/business/user/u1/status" + creds, 405, `{"message":"Method not allowed"}`},
		{"the documentation's other syntax", "POST", base + "/api/v1/business/user/enable/u1" + creds, 404, `{"message":"Not found"}`},
		{"trailing slash", "POST", path + "/" + creds, 404, `{"message":"Not found"}`},
		{"unknown verb", "POST", base + "/api/v1/business/user/u1/delete" + creds, 404, `{"message":"Not found"}`},
		{"empty user", "POST", base + "/api/v1/business/user//disable" + creds, 404, `{"message":"Not found"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, send(t, tc.method, tc.url), tc.status, tc.body)
		})
	}
	if u, _ := fake.User("u1"); u.Status != msgkarttest.StatusAvailable || fake.Writes("u1") != 0 {
		t.Errorf("a rejected request changed u1: %+v, %d writes", u, fake.Writes("u1"))
	}
	if n := fake.Requests(); n != 15 {
		t.Errorf("Requests = %d, want 15: rejected requests count too", n)
	}
}

// TestRoute covers paths no client can send: Go's own server refuses a bad
// escape before a handler runs, but the fake must not misroute one either.
func TestRoute(t *testing.T) {
	for _, tc := range []struct {
		path, id, verb string
		ok             bool
	}{
		{"/api/v1/business/user/a%2Fb/status", "a/b", "status", true},
		{"/api/v1/business/user/%2E%2E/enable", "..", "enable", true},
		{"/api/v1/business/user/%zz/disable", "", "", false},
		{"api/v1/business/user/u1/disable", "", "", false},
		{"/api/v2/business/user/u1/disable", "", "", false},
	} {
		id, verb, ok := msgkarttest.Route(tc.path)
		if id != tc.id || verb != tc.verb || ok != tc.ok {
			t.Errorf("Route(%q) = %q, %q, %v; want %q, %q, %v", tc.path, id, verb, ok, tc.id, tc.verb, tc.ok)
		}
	}
}

func TestMethodNotAllowedSaysAllow(t *testing.T) {
	_, base := start(t, msgkarttest.Options{APIKey: key, Email: email})
	resp, err := http.Get(base + "/api/v1/business/user/u1/disable" + creds)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Allow"); got != "POST" {
		t.Errorf("Allow %q, want POST", got)
	}
}

func TestEscapedSlashStaysInUser(t *testing.T) {
	fake, base := start(t, msgkarttest.Options{APIKey: key, Email: email})
	fake.AddUser("a/b c", msgkarttest.User{})
	fake.AddUser("a", msgkarttest.User{})
	check(t, send(t, "POST", base+"/api/v1/business/user/a%2Fb%20c/disable"+creds), 200, `{"message":"User disabled successfully"}`)
	if u, _ := fake.User("a/b c"); u.Status != msgkarttest.StatusDisabled {
		t.Errorf(`"a/b c" is %q, want Disabled`, u.Status)
	}
	if u, _ := fake.User("a"); u.Status != msgkarttest.StatusAvailable {
		t.Errorf(`"a" changed to %q`, u.Status)
	}
}

func TestAutoCreate(t *testing.T) {
	fake, base := start(t, msgkarttest.Options{APIKey: key, Email: email, AutoCreate: true})
	check(t, send(t, "GET", base+"/api/v1/business/user/new1/status"+creds), 200, `{"userStatus":"Available"}`)
	check(t, send(t, "POST", base+"/api/v1/business/user/new2/disable"+creds), 200, `{"message":"User disabled successfully"}`)
	if u, ok := fake.User("new2"); !ok || u.Status != msgkarttest.StatusDisabled || fake.Writes("new2") != 1 {
		t.Errorf("new2: %+v %v, %d writes", u, ok, fake.Writes("new2"))
	}
	// Bad credentials still create nobody.
	send(t, "POST", base+"/api/v1/business/user/new3/disable?apikey=nope&email=x")
	if _, ok := fake.User("new3"); ok {
		t.Error("a request with bad credentials created a user")
	}
}

func TestAddUserDefaultsToAvailable(t *testing.T) {
	fake := msgkarttest.New(msgkarttest.Options{})
	fake.AddUser("u1", msgkarttest.User{})
	if u, ok := fake.User("u1"); !ok || u.Status != msgkarttest.StatusAvailable {
		t.Errorf("User = %+v, %v", u, ok)
	}
	if _, ok := fake.User("u2"); ok {
		t.Error("an unknown user exists")
	}
}

func TestConcurrentWrites(t *testing.T) {
	fake, base := start(t, msgkarttest.Options{APIKey: key, Email: email})
	fake.AddUser("u1", msgkarttest.User{})
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			verb := []string{"enable", "disable", "status"}[i%3]
			method := map[bool]string{true: "GET", false: "POST"}[verb == "status"]
			if a, err := do(method, base+"/api/v1/business/user/u1/"+verb+creds); err != nil || a.status != 200 {
				t.Errorf("%s: %+v, %v", verb, a, err)
			}
		})
	}
	wg.Wait()
	// 40 requests cycling enable, disable, status: 14 + 13 writes.
	if n := fake.Writes("u1"); n != 27 {
		t.Errorf("Writes = %d, want 27", n)
	}
	if n := fake.Requests(); n != 40 {
		t.Errorf("Requests = %d, want 40", n)
	}
}

func BenchmarkServeHTTP(b *testing.B) {
	fake := msgkarttest.New(msgkarttest.Options{APIKey: key, Email: email, AutoCreate: true})
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			req := httptest.NewRequest("POST", "/api/v1/business/user/u"+strconv.Itoa(i%1000)+"/disable"+creds, nil)
			fake.ServeHTTP(httptest.NewRecorder(), req)
		}
	})
}
