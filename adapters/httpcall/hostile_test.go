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
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/userbatch/userbatch/batch"
)

func TestParseRetryAfterClamps(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, in := range []string{
		"86401", "999999", "9223372036854775807", "9223372036854775808",
		"99999999999999999999999999999999",
		"Fri, 31 Dec 9999 23:59:59 GMT",
	} {
		if got := ParseRetryAfter(in, now); got != MaxRetryAfter {
			t.Errorf("ParseRetryAfter(%q) = %v, want the ceiling %v", in, got, MaxRetryAfter)
		}
	}
	for in, want := range map[string]time.Duration{
		"86400": 24 * time.Hour, "-9223372036854775809": 0, "+5": 0, "1e9": 0, "3.5": 0,
	} {
		if got := ParseRetryAfter(in, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

// counting answers 200 and counts the requests that reached it.
type counting struct{ n atomic.Int64 }

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.n.Add(1) }

// connectProxy is a proxy on loopback that answers every CONNECT with status.
func connectProxy(t *testing.T, status int) (*url.URL, *atomic.Int64) {
	t.Helper()
	var connects atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			connects.Add(1)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u, &connects
}

func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func post(t *testing.T, client *http.Client, rawURL string, header http.Header) error {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(`{"id":"u1"}`))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	_, _, err = Do(client, req)
	return err
}

// TestDoClassifiesNeverSent: every failure that proves the vendor saw nothing
// is Retryable or Permanent, never Ambiguous, and the vendor indeed saw nothing.
func TestDoClassifiesNeverSent(t *testing.T) {
	vendor := &counting{}
	tlsVendor := httptest.NewUnstartedServer(vendor)
	tlsVendor.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	tlsVendor.StartTLS()
	defer tlsVendor.Close()
	plainVendor := httptest.NewServer(vendor)
	defer plainVendor.Close()
	trusted := tlsVendor.Client() // trusts tlsVendor's certificate

	proxy502, connects := connectProxy(t, http.StatusBadGateway)
	viaProxy := func(p *url.URL) *http.Client {
		tr := trusted.Transport.(*http.Transport).Clone()
		tr.Proxy = http.ProxyURL(p)
		return &http.Client{Transport: tr}
	}
	refusedProxy := &url.URL{Scheme: "http", Host: closedAddr(t)}
	badProxyConfig := &http.Client{Transport: &http.Transport{
		Proxy: func(*http.Request) (*url.URL, error) { return nil, errors.New("invalid proxy setting") },
	}}

	for _, tc := range []struct {
		name   string
		client *http.Client
		url    string
		header http.Header
		kind   batch.Kind
		code   string
	}{
		{"proxy answers CONNECT 502", viaProxy(proxy502), tlsVendor.URL + "/x?apikey=s3cret", nil, batch.Retryable, batch.CodeNetwork},
		{"proxy refuses the connection", viaProxy(refusedProxy), tlsVendor.URL + "/x?apikey=s3cret", nil, batch.Retryable, batch.CodeNetwork},
		{"proxy refuses, plain http", viaProxy(refusedProxy), plainVendor.URL + "/x?apikey=s3cret", nil, batch.Retryable, batch.CodeNetwork},
		{"proxy setting unusable", badProxyConfig, tlsVendor.URL + "/x?apikey=s3cret", nil, batch.Retryable, batch.CodeNetwork},
		{"refused", http.DefaultClient, "http://" + closedAddr(t) + "/x?apikey=s3cret", nil, batch.Retryable, batch.CodeNetwork},
		{"untrusted certificate", &http.Client{}, tlsVendor.URL + "/x?apikey=s3cret", nil, batch.Permanent, CodeTLS},
		{"https to a plain-HTTP server", &http.Client{}, "https://" + plainVendor.Listener.Addr().String() + "/x?apikey=s3cret", nil, batch.Permanent, CodeTLS},
		{"apikey holding a newline", trusted, tlsVendor.URL + "/x", http.Header{"Apikey": {"s3cret\nX-Evil: 1"}}, batch.Permanent, CodeRequest},
		{"token holding a NUL", trusted, tlsVendor.URL + "/x", http.Header{"Authorization": {"Bearer s3cret\x00"}}, batch.Permanent, CodeRequest},
		{"header name with a space", trusted, tlsVendor.URL + "/x", http.Header{"Bad Name": {"s3cret"}}, batch.Permanent, CodeRequest},
		{"not an http URL", trusted, "ftp://127.0.0.1/x?apikey=s3cret", nil, batch.Permanent, CodeRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := vendor.n.Load()
			err := post(t, tc.client, tc.url, tc.header)
			wantKind(t, err, tc.kind, tc.code)
			t.Log(err)
			if got := vendor.n.Load() - before; got != 0 {
				t.Errorf("the vendor saw %d requests", got)
			}
		})
	}
	if connects.Load() == 0 {
		t.Error("the proxy saw no CONNECT: the test did not go through it")
	}
}

// TestDoTimeoutBeforeConnecting: a proxy that never answers CONNECT holds
// the request until its deadline; nothing was sent, so it is Retryable.
func TestDoTimeoutBeforeConnecting(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // the transport's dial outlives the request: let it end
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer hang.Close()
	defer close(release)
	p, _ := url.Parse(hang.URL)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(p)}}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://vendor.example/x?apikey=s3cret", nil)
	_, _, err := Do(client, req)
	wantKind(t, err, batch.Retryable, batch.CodeTimeout)
}

// failingTransport fails without ever asking http.Transport for a
// connection, as a test double or an exotic RoundTripper might.
type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("something broke")
}

// TestDoStaysCautiousWithoutTrace: when the transport does not report its
// connections, a failure may have reached the vendor.
func TestDoStaysCautiousWithoutTrace(t *testing.T) {
	err := post(t, &http.Client{Transport: failingTransport{}}, "http://127.0.0.1:1/x?apikey=s3cret", nil)
	wantKind(t, err, batch.Ambiguous, batch.CodeNetwork)
}

func TestSafeSnippetRedactsBeforeCutting(t *testing.T) {
	const secret = "EPXTOK-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	for start := SnippetLen - len(secret) - 2; start <= SnippetLen+2; start++ {
		body := strings.Repeat("x", start) + secret + " trailing text"
		got := SafeSnippet([]byte(body), "", secret)
		if frag := leak(got, secret); frag != "" {
			t.Fatalf("secret at %d: snippet %q holds %q", start, got, frag)
		}
		if n := utf8.RuneCountInString(got); n > SnippetLen+1 {
			t.Errorf("snippet of %d characters", n)
		}
	}
	esc := "k+y/ü=1&"
	got := SafeSnippet([]byte("echo "+url.QueryEscape(esc)+" and "+url.PathEscape(esc)), esc)
	if got != "echo [redacted] and [redacted]" {
		t.Errorf("escaped forms: %q", got)
	}
	if got := SafeSnippet([]byte(" \n\t")); got != "(empty body)" {
		t.Errorf("blank body: %q", got)
	}
	if got := SafeMessage(" \n"); got != "" {
		t.Errorf("blank message: %q", got)
	}
	long := strings.Repeat("é", SnippetLen+5)
	if got := SafeSnippet([]byte(long)); !utf8.ValidString(got) || got != strings.Repeat("é", SnippetLen)+"…" {
		t.Errorf("cut splits a character or miscounts: %q", got)
	}
}

// leak returns the first 6-character piece of secret found in s, or "".
func leak(s, secret string) string {
	for i := 0; i+6 <= len(secret); i++ {
		if strings.Contains(s, secret[i:i+6]) {
			return secret[i : i+6]
		}
	}
	return ""
}
