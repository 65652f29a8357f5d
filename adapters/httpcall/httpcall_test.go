package httpcall

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/userbatch/userbatch/batch"
)

func TestSegmentStaysOneSegment(t *testing.T) {
	for in, want := range map[string]string{
		"alice":             "alice",
		"../x?y=1":          "..%2Fx%3Fy=1",
		"..":                "%2E%2E",
		".":                 "%2E",
		"a/b#c":             "a%2Fb%23c",
		"PHONE:+8190":       "PHONE:%2B8190",
		"EMAIL:a@b.example": "EMAIL:a@b.example",
		"50%":               "50%25",
	} {
		got := Segment(in)
		if got != want {
			t.Errorf("Segment(%q) = %q, want %q", in, got, want)
		}
		u, err := URL("http://h/base", "/users/"+got+"/status")
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(u.EscapedPath(), "/")
		if len(parts) != 5 || parts[3] != got {
			t.Errorf("%q: path %q does not keep it as one segment", in, u.EscapedPath())
		}
		if back, _ := url.PathUnescape(parts[3]); back != in {
			t.Errorf("%q: the server would read %q", in, back)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"7":   7 * time.Second,
		" 30": 30 * time.Second,
		"0":   0, "-3": 0, "": 0, "soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	} {
		if got := ParseRetryAfter(in, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestDoClassifiesTransportFailures: a refused connection never reached the
// vendor (retryable); a timeout may have (ambiguous); no message quotes the
// URL, whose query may hold a key.
func TestDoClassifiesTransportFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/x?apikey=s3cret"
	ln.Close()
	req, _ := http.NewRequest(http.MethodPost, closed, nil)
	_, _, err = Do(http.DefaultClient, req)
	wantKind(t, err, batch.Retryable, batch.CodeNetwork)

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer slow.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, slow.URL+"/x?apikey=s3cret", nil)
	_, _, err = Do(http.DefaultClient, req)
	wantKind(t, err, batch.Ambiguous, batch.CodeTimeout)
}

func wantKind(t *testing.T, err error, kind batch.Kind, code string) {
	t.Helper()
	var berr *batch.Error
	if !errors.As(err, &berr) || berr.Kind != kind || berr.Code != code {
		t.Fatalf("error %v, want %v %s", err, kind, code)
	}
	if strings.Contains(err.Error(), "s3cret") || strings.Contains(berr.Message, "s3cret") {
		t.Errorf("error %q quotes the URL's key", err)
	}
}

func TestCommon(t *testing.T) {
	now := time.Now()
	for status, want := range map[int]batch.Kind{429: batch.Retryable, 500: batch.Ambiguous, 503: batch.Ambiguous, 404: 0, 200: 0} {
		resp := &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {"2"}}}
		err := Common(resp, "", now)
		if want == 0 {
			if err != nil {
				t.Errorf("%d: %v, want nil (the vendor's own code decides)", status, err)
			}
			continue
		}
		if err == nil || err.Kind != want || err.RetryAfter != 2*time.Second {
			t.Errorf("%d: %+v, want %v with Retry-After 2s", status, err, want)
		}
	}
}

func TestCheckBaseURL(t *testing.T) {
	for base, want := range map[string]string{
		"https://h.example.com/api": "", "http://127.0.0.1:8080": "",
		"": "required", "  ": "required", "ftp://h": "absolute", "h.example.com/api": "absolute",
		"admin:hunter2@h.example.com": "absolute",
	} {
		err := CheckBaseURL(base)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("CheckBaseURL(%q) = %v, want %q", base, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("CheckBaseURL quotes the URL: %v", err)
		}
	}
}

func TestNoRedirects(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the redirect was followed to %s", r.URL)
	}))
	defer target.Close()
	srv := httptest.NewServer(http.RedirectHandler(target.URL+"/elsewhere", http.StatusFound))
	defer srv.Close()
	given := &http.Client{Timeout: time.Minute}
	c := NoRedirects(given)
	resp, err := c.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || c.Timeout != time.Minute || given.CheckRedirect != nil {
		t.Errorf("status %d, timeout %v, caller's client changed: %v", resp.StatusCode, c.Timeout, given.CheckRedirect != nil)
	}
}

// TestDoMarksUnreachable: a failure to connect (refused, DNS, TLS) is
// batch.FaultUnreachable, which the pipeline counts to stop the target; a
// timeout after connecting, and a run that stopped, are not.
func TestDoMarksUnreachable(t *testing.T) {
	closed := "http://" + closedAddr(t) + "/x"
	dnsFails := &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "vendor.invalid", IsNotFound: true}}
	}}}
	tlsVendor := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsVendor.Close()
	tlsVendor.Config.ErrorLog = log.New(io.Discard, "", 0)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer slow.Close()
	stopped, stop := context.WithCancel(context.Background())
	stop()
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		url    string
		client *http.Client
		want   batch.Fault
	}{
		{"refused", context.Background(), closed, http.DefaultClient, batch.FaultUnreachable},
		{"DNS", context.Background(), "http://vendor.invalid/x", dnsFails, batch.FaultUnreachable},
		{"untrusted certificate", context.Background(), tlsVendor.URL, &http.Client{Transport: &http.Transport{}}, batch.FaultUnreachable},
		{"timeout after connecting", nil, slow.URL, http.DefaultClient, batch.FaultNone}, // its deadline starts with it
		{"the run stopped", stopped, closed, http.DefaultClient, batch.FaultNone},
	} {
		if tc.ctx == nil {
			tc.ctx = timeoutCtx(t, 50*time.Millisecond)
		}
		req, _ := http.NewRequestWithContext(tc.ctx, http.MethodGet, tc.url, nil)
		_, _, err := Do(tc.client, req)
		var berr *batch.Error
		if !errors.As(err, &berr) || berr.Fault != tc.want {
			t.Errorf("%s: %v (fault %v), want fault %v", tc.name, err, berr.Fault, tc.want)
		}
	}
}

func timeoutCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestForeignAndPage: Foreign is Unexpected marked batch.FaultForeign; Page
// tells an HTML page by its type or its first byte.
func TestForeignAndPage(t *testing.T) {
	resp := &http.Response{StatusCode: 404, Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}}
	e := Foreign(resp, []byte("404 page not found\n"), "s3cret")
	if e.Fault != batch.FaultForeign || e.Code != batch.CodeBadResponse || e.Kind != batch.Permanent || !strings.Contains(e.Message, "404 page not found") {
		t.Errorf("Foreign: %+v", e)
	}
	for _, tc := range []struct {
		ct, body string
		page     bool
	}{
		{"text/html; charset=utf-8", "", true},
		{"", "  <html><body>Bad Request</body></html>", true},
		{"application/json", `{"message":"x"}`, false},
		{"text/plain", "404 page not found", false},
	} {
		r := &http.Response{Header: http.Header{"Content-Type": {tc.ct}}}
		if got := Page(r, []byte(tc.body)); got != tc.page {
			t.Errorf("Page(%q, %q) = %v", tc.ct, tc.body, got)
		}
	}
}
