package adaptertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
)

// straddleSecret is long enough that a cut at httpcall.SnippetLen can fall
// inside it, in the shape of the token that once leaked ("EPXTOK-0f1…").
const straddleSecret = "EPXTOK-0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8"

// neverSent checks that op, under every failure that proves nothing
// reached the vendor, ends with an error that is not Ambiguous, so that
// the pipeline reports the row failed rather than unknown, even for a
// toggle:
//
//   - a proxy answering CONNECT with 502, and a proxy refusing connections:
//     Retryable;
//   - the vendor refusing connections: Retryable;
//   - an untrusted certificate, and https spoken to a plain-HTTP server:
//     Permanent httpcall.CodeTLS;
//   - a credential holding a newline: Permanent; httpcall.CodeRequest when
//     the credential travels in a header (nothing is sent), or the vendor's
//     own refusal when it travels escaped in the query.
//
// The vendor's server must see no request in the first five cases, and no
// error may quote the credential.
func neverSent(t *testing.T, op batch.Op, newAdapter NewAdapter) {
	vendor := &countingServer{}
	tlsVendor := httptest.NewUnstartedServer(vendor)
	tlsVendor.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	tlsVendor.StartTLS()
	t.Cleanup(tlsVendor.Close)
	plainVendor := httptest.NewServer(vendor)
	t.Cleanup(plainVendor.Close)

	proxy, connects := refusingProxy(t)
	viaProxy := func(p *url.URL) *http.Client {
		tr := tlsVendor.Client().Transport.(*http.Transport).Clone() // trusts the vendor: only the proxy fails
		tr.Proxy = http.ProxyURL(p)
		return &http.Client{Transport: tr}
	}
	direct := func() *http.Client { return &http.Client{Transport: &http.Transport{}} } // no proxy from the environment
	const secret = "s3cret-never-sent-0123456789"

	for _, tc := range []struct {
		name   string
		base   string
		client *http.Client
		secret string
		kind   batch.Kind
		code   string // "" when the kind is enough
	}{
		{"proxy answers CONNECT with 502", tlsVendor.URL + "/base", viaProxy(proxy), secret, batch.Retryable, batch.CodeNetwork},
		{"proxy refuses the connection", tlsVendor.URL + "/base", viaProxy(&url.URL{Scheme: "http", Host: ClosedAddr(t)}), secret, batch.Retryable, batch.CodeNetwork},
		{"vendor refuses the connection", "http://" + ClosedAddr(t) + "/base", direct(), secret, batch.Retryable, batch.CodeNetwork},
		{"untrusted certificate", tlsVendor.URL + "/base", direct(), secret, batch.Permanent, httpcall.CodeTLS},
		{"https to a plain-HTTP server", "https://" + plainVendor.Listener.Addr().String() + "/base", direct(), secret, batch.Permanent, httpcall.CodeTLS},
		{"credential holding a newline", plainVendor.URL + "/base", direct(), secret + "\nX-Injected: 1", batch.Permanent, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := vendor.requests.Load()
			a := newAdapter(t, tc.base, tc.client, tc.secret)
			_, err := a.Apply(context.Background(), op)
			berr := wantNoLeak(t, err, tc.secret)
			if berr.Kind != tc.kind || (tc.code != "" && berr.Code != tc.code) {
				t.Errorf("error %v: kind %v code %q, want %v %q", berr, berr.Kind, berr.Code, tc.kind, tc.code)
			}
			if wantFault := unreachable(tc.code, tc.kind); berr.Fault != wantFault {
				t.Errorf("error %v: fault %v, want %v: a failure to connect counts toward stopping the target, nothing else does", berr, berr.Fault, wantFault)
			}
			sent := vendor.requests.Load() - before
			if sent != 0 && (tc.code != "" || berr.Code == httpcall.CodeRequest) {
				t.Errorf("the vendor saw %d requests, want none", sent)
			}
		})
	}
	if connects.Load() == 0 {
		t.Error("the proxy saw no CONNECT: the proxy cases did not go through it")
	}
}

// unreachable is the fault a neverSent case must carry: every case
// but the credential holding a newline failed to connect.
func unreachable(code string, _ batch.Kind) batch.Fault {
	if code == "" {
		return batch.FaultNone
	}
	return batch.FaultUnreachable
}

// foreign checks that answers which are not the vendor's own, from a
// server that base_url points at by mistake, are Permanent bad_response
// marked batch.FaultForeign, never the vendor's not_found or validation:
// Go's "404 page not found", an HTML 404, an HTML 400 (plain HTTP sent to
// an HTTPS port), a redirect, each to Apply and, for a batch.Reader, to
// Read; and a 200 HTML page (a login portal) to Read, or to Apply for a
// vendor that cannot read, which must not be taken for a success.
func foreign(t *testing.T, op batch.Op, newAdapter NewAdapter) {
	html := func(status int, page string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, page)
		})
	}
	const secret = "s3cret-foreign-0123456789"
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{
		{"Go's 404 page not found", http.NotFoundHandler()},
		{"an HTML 404 page", html(http.StatusNotFound, "<html><body><h1>Not Found</h1></body></html>")},
		{"an HTML 400 page", html(http.StatusBadRequest, "<html><body>400 The plain HTTP request was sent to HTTPS port</body></html>")},
		{"a redirect", http.RedirectHandler("http://127.0.0.1:1/login", http.StatusFound)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.h)
			t.Cleanup(srv.Close)
			a := newAdapter(t, srv.URL+"/wrong", &http.Client{Transport: &http.Transport{}}, secret)
			_, err := a.Apply(context.Background(), op)
			wantForeign(t, "Apply", err, secret, batch.Permanent)
			if r, ok := a.(batch.Reader); ok {
				_, err := r.Read(context.Background(), op)
				wantForeign(t, "Read", err, secret, batch.Permanent)
			}
		})
	}
	t.Run("a 200 HTML page", func(t *testing.T) {
		srv := httptest.NewServer(html(http.StatusOK, "<html><body>Sign in to continue</body></html>"))
		t.Cleanup(srv.Close)
		a := newAdapter(t, srv.URL+"/wrong", &http.Client{Transport: &http.Transport{}}, secret)
		if r, ok := a.(batch.Reader); ok {
			_, err := r.Read(context.Background(), op)
			wantForeign(t, "Read", err, secret, batch.Permanent)
			return
		}
		_, err := a.Apply(context.Background(), op)
		wantForeign(t, "Apply", err, secret, batch.Ambiguous) // it may have been the vendor after all
	})
}

func wantForeign(t *testing.T, what string, err error, secret string, kind batch.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error: an answer that is not the vendor's was taken for a success", what)
	}
	berr := wantNoLeak(t, err, secret)
	if berr.Kind != kind || berr.Code != batch.CodeBadResponse || berr.Fault != batch.FaultForeign {
		t.Errorf("%s: %v: kind %v code %q fault %v, want %v %q FaultForeign", what, berr, berr.Kind, berr.Code, berr.Fault, kind, batch.CodeBadResponse)
	}
}

// secretsInBodies checks that no fragment of a credential echoed by the
// vendor reaches a message, wherever the cut at httpcall.SnippetLen falls:
// the server answers every status an adapter reads with bodies of every
// shape the vendors use, holding the credential at many offsets, and op's
// reply and error (and, for a batch.Reader, the read's) must hold no 6
// characters of it.
func secretsInBodies(t *testing.T, op batch.Op, newAdapter NewAdapter) {
	echo := &echoServer{}
	srv := httptest.NewServer(echo)
	t.Cleanup(srv.Close)
	a := newAdapter(t, srv.URL+"/base", &http.Client{Transport: &http.Transport{}}, straddleSecret)
	for _, status := range []int{200, 400, 401, 403, 404, 409, 422, 500} {
		for _, shape := range bodyShapes {
			for offset := 120; offset <= 200; offset += 3 {
				text := strings.Repeat("x", offset) + straddleSecret + " and more text after it"
				body := shape(text)
				echo.set(status, body)
				rep, err := a.Apply(context.Background(), op)
				where := fmt.Sprintf("Apply, %d %.40q… (secret at %d)", status, body, offset)
				checkNoLeak(t, where, rep.Message, err)
				if r, ok := a.(batch.Reader); ok {
					_, err := r.Read(context.Background(), op)
					checkNoLeak(t, "Read, "+where, "", err)
				}
			}
		}
	}
}

// bodyShapes wrap vendor text the ways the four vendors and the proxies in
// front of them do.
var bodyShapes = []func(string) string{
	func(s string) string { return s },
	func(s string) string { return "<html><body>" + s + "</body></html>" },
	func(s string) string { return jsonBody(map[string]any{"message": s, "status": "error"}) },
	func(s string) string {
		return jsonBody(map[string]any{"status_code": 403, "errors": map[string]any{"detail": s}, "data": map[string]any{}})
	},
	func(s string) string {
		return jsonBody(map[string]any{"status_code": 400, "errors": map[string]any{"unique_id": []string{s}}, "data": map[string]any{}})
	},
	func(s string) string { return jsonBody(map[string]any{"errorCode": "UNAUTHORIZED", "message": s}) },
	func(s string) string { return jsonBody(map[string]any{"detail": s, "error": s}) },
}

func jsonBody(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// checkNoLeak reports any 6-character piece of the straddle secret in a
// reply message or an error.
func checkNoLeak(t *testing.T, where, replyMessage string, err error) {
	t.Helper()
	texts := []string{replyMessage}
	if err != nil {
		texts = append(texts, err.Error())
		var berr *batch.Error
		if errors.As(err, &berr) {
			texts = append(texts, berr.Message)
		}
	}
	for _, s := range texts {
		if frag := Fragment(s, straddleSecret); frag != "" {
			t.Fatalf("%s: %q holds %q, a piece of the credential", where, s, frag)
		}
	}
}

// Fragment returns the first piece of secret, 6 characters long, found in
// s, or "" when s holds none.
func Fragment(s, secret string) string {
	for i := 0; i+6 <= len(secret); i++ {
		if strings.Contains(s, secret[i:i+6]) {
			return secret[i : i+6]
		}
	}
	return ""
}

// wantNoLeak checks that err is a *batch.Error holding no piece of secret.
func wantNoLeak(t *testing.T, err error, secret string) *batch.Error {
	t.Helper()
	var berr *batch.Error
	if !errors.As(err, &berr) {
		t.Fatalf("error %v (%T), want *batch.Error", err, err)
	}
	for _, s := range []string{err.Error(), berr.Message} {
		if frag := Fragment(s, secret); frag != "" {
			t.Errorf("error %q holds %q, a piece of the credential", s, frag)
		}
	}
	return berr
}

// countingServer answers 401 to everything and counts what reached it.
type countingServer struct{ requests atomic.Int64 }

func (c *countingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.requests.Add(1)
	w.WriteHeader(http.StatusUnauthorized)
}

// echoServer answers every request with one settable status and body.
type echoServer struct {
	mu     sync.Mutex
	status int
	body   string
}

func (e *echoServer) set(status int, body string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.status, e.body = status, body
}

func (e *echoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	status, body := e.status, e.body
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// refusingProxy is a proxy on loopback that answers every CONNECT with 502.
func refusingProxy(t *testing.T) (*url.URL, *atomic.Int64) {
	t.Helper()
	var connects atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			connects.Add(1)
		}
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u, &connects
}

// ClosedAddr is a loopback address where nothing listens: listened on,
// then closed.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
