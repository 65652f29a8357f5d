// Package httpcall holds the HTTP plumbing every vendor adapter shares: one
// request, a bounded read of the answer, the classification of transport
// failures (telling what provably never reached the vendor) and of the
// statuses every vendor treats alike (429, 5xx), and SafeSnippet and
// SafeMessage, the one way vendor text reaches a message.
package httpcall

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/userbatch/userbatch/batch"
)

// maxBody bounds what is read of an answer: admin APIs answer in bytes, and a
// misrouted request must not fill memory.
const maxBody = 1 << 20

// Do sends req once and reads at most 1 MiB of the answer. A failure is a
// *batch.Error whose Kind says whether the vendor can have seen the request:
//
//   - a request that cannot be sent as built (an invalid header value such as
//     a credential holding a newline, a URL that is not http(s)): Permanent
//     CodeRequest, and nothing is sent;
//   - the vendor's (or the proxy's) certificate not trusted, or a TLS
//     handshake the server cannot speak: Permanent CodeTLS;
//   - no connection to the vendor was made (dial refused, the proxy refused
//     the connection or the CONNECT tunnel, a timeout before connecting):
//     Retryable;
//   - anything after a connection was made (timeout, reset, drop): Ambiguous.
//
// Its message never holds the URL, which may carry credentials in its query,
// nor a header value.
func Do(client *http.Client, req *http.Request) (*http.Response, []byte, error) {
	if err := checkRequest(req); err != nil {
		return nil, nil, err
	}
	tr := newConnTrace(stdTransport(client))
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &tr.trace))
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, transportError(req.Context(), err, tr.notSent())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		// The vendor answered but the body broke off: it may have acted.
		return nil, nil, &batch.Error{Kind: batch.Ambiguous, Code: batch.CodeNetwork,
			HTTPStatus: resp.StatusCode, Message: "reading the answer: " + errText(err), Err: stripURL(err)}
	}
	return resp, body, nil
}

// connTrace tells whether a request reached a connection to the vendor.
// http.Transport writes nothing before it has a connection, and reports one
// (GotConn) only once the dial, the proxy's CONNECT tunnel and the TLS
// handshake all succeeded: a failure without GotConn sent nothing.
type connTrace struct {
	std        bool // the client's RoundTripper is an *http.Transport
	asked, got atomic.Bool
	trace      httptrace.ClientTrace // its hooks, in the same allocation
}

func newConnTrace(std bool) *connTrace {
	c := &connTrace{std: std}
	c.trace.GetConn = func(string) { c.asked.Store(true) }
	c.trace.GotConn = func(httptrace.GotConnInfo) { c.got.Store(true) }
	return c
}

// notSent is true when no connection was handed over. Another RoundTripper
// may fail after sending without reporting connections, so for one the
// request counts as not sent only if it asked http.Transport for a
// connection (GetConn) and never got one.
func (c *connTrace) notSent() bool {
	return !c.got.Load() && (c.std || c.asked.Load())
}

// stdTransport reports whether client sends through an *http.Transport
// (nil: http.DefaultTransport, one unless a program replaced it).
func stdTransport(client *http.Client) bool {
	rt := client.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	_, ok := rt.(*http.Transport)
	return ok
}

// checkRequest refuses, before sending, what the transport would refuse
// with a message quoting the value (a header holding a credential) or the
// URL.
func checkRequest(req *http.Request) *batch.Error {
	if req.URL == nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Host == "" {
		return &batch.Error{Kind: batch.Permanent, Code: CodeRequest,
			Message: "the request URL is not an absolute http or https URL: check base_url (nothing was sent)"}
	}
	for name, values := range req.Header {
		if !validHeaderName(name) {
			return &batch.Error{Kind: batch.Permanent, Code: CodeRequest,
				Message: fmt.Sprintf("header name %q is not valid (nothing was sent)", name)}
		}
		for _, v := range values {
			if !validHeaderValue(v) {
				return &batch.Error{Kind: batch.Permanent, Code: CodeRequest,
					Message: fmt.Sprintf("the value of header %q holds a control character (a newline in a credential?) (nothing was sent)", name)}
			}
		}
	}
	return nil
}

// validHeaderValue follows RFC 9110 field-value: no control character but
// horizontal tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; (b < ' ' && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}

// validHeaderName follows RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if b <= ' ' || b >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", b) >= 0 {
			return false
		}
	}
	return true
}

// transportError classifies a request that got no answer. A failure to
// connect (refused, DNS, TLS, the proxy) is marked batch.FaultUnreachable:
// three in a row stop the target.
func transportError(ctx context.Context, err error, notSent bool) *batch.Error {
	e := classifyTransport(ctx, err, notSent)
	stopped := errors.Is(ctx.Err(), context.Canceled) // the run, not the target
	if e.Kind != batch.Ambiguous && !stopped && e.Code != CodeRequest {
		e.Fault = batch.FaultUnreachable
	}
	return e
}

func classifyTransport(ctx context.Context, err error, notSent bool) *batch.Error {
	inner := stripURL(err)
	if e := tlsError(inner, notSent); e != nil {
		return e
	}
	var opErr *net.OpError
	switch {
	case errors.As(err, &opErr) && opErr.Op == "proxyconnect":
		return &batch.Error{Kind: batch.Retryable, Code: batch.CodeNetwork,
			Message: "connecting to the proxy: " + errText(opErr.Err) + " (nothing was sent)", Err: inner}
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return &batch.Error{Kind: batch.Retryable, Code: batch.CodeNetwork,
			Message: "connecting: " + errText(inner), Err: inner}
	case notSent:
		return notSentError(ctx, err, inner)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return &batch.Error{Kind: batch.Ambiguous, Code: batch.CodeTimeout,
			Message: "no answer in time", Err: inner}
	case ctx.Err() != nil:
		return &batch.Error{Kind: batch.Ambiguous, Code: batch.CodeNetwork,
			Message: "stopped while the request was in flight", Err: inner}
	}
	return &batch.Error{Kind: batch.Ambiguous, Code: batch.CodeNetwork,
		Message: "connection dropped: " + errText(inner), Err: inner}
}

// notSentError classifies a failure before any connection to the vendor was
// made, such as a proxy answering CONNECT with 502: Retryable, since the
// vendor cannot have acted.
func notSentError(ctx context.Context, err, inner error) *batch.Error {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return &batch.Error{Kind: batch.Retryable, Code: batch.CodeTimeout,
			Message: "no connection in time (nothing was sent)", Err: inner}
	case ctx.Err() != nil:
		return &batch.Error{Kind: batch.Retryable, Code: batch.CodeNetwork,
			Message: "stopped before the request was sent", Err: inner}
	}
	return &batch.Error{Kind: batch.Retryable, Code: batch.CodeNetwork,
		Message: "could not open a connection to the vendor (through the proxy, if one is set): " + errText(inner) + " (nothing was sent)", Err: inner}
}

// tlsError classifies a refused certificate or a handshake the server cannot
// speak (a plain-HTTP server behind an https base_url): Permanent, since a
// retry meets the same server. The client checks a certificate before it
// writes a byte of the request; a record or alert error counts only when no
// connection was handed over (notSent), since a TLS 1.3 server may send an
// alert after the client's first write.
func tlsError(err error, notSent bool) *batch.Error {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		alert    tls.AlertError
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid):
		return &batch.Error{Kind: batch.Permanent, Code: CodeTLS,
			Message: "the server's certificate is not trusted: " + errText(err) + " (nothing was sent)", Err: err}
	case errors.Is(err, http.ErrSchemeMismatch):
		return &batch.Error{Kind: batch.Permanent, Code: CodeTLS,
			Message: "TLS handshake failed: the server speaks plain HTTP; check base_url's scheme (nothing was sent)", Err: err}
	case notSent && (errors.As(err, &record) || errors.As(err, &alert)):
		return &batch.Error{Kind: batch.Permanent, Code: CodeTLS,
			Message: "TLS handshake failed: " + errText(err) + " (nothing was sent)", Err: err}
	}
	return nil
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// stripURL drops *url.Error's wrapper, whose text repeats the whole URL.
func stripURL(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Common classifies the statuses that mean the same at every vendor: 429 is
// Retryable and carries Retry-After; 5xx is Ambiguous (the vendor may have
// acted before failing). It returns nil for any other status, which the
// vendor's own code classifies.
func Common(resp *http.Response, message string, now time.Time) *batch.Error {
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return &batch.Error{Kind: batch.Retryable, Code: batch.CodeRateLimited,
			HTTPStatus: resp.StatusCode, Message: cmp.Or(message, "rate limited"),
			RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), now)}
	case resp.StatusCode >= 500:
		return &batch.Error{Kind: batch.Ambiguous, Code: batch.CodeServer,
			HTTPStatus: resp.StatusCode, Message: cmp.Or(message, http.StatusText(resp.StatusCode)),
			RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), now)}
	}
	return nil
}

// Unexpected classifies a status the vendor's contract does not mention,
// quoting the body's start with secrets redacted (see SafeSnippet).
func Unexpected(resp *http.Response, body []byte, secrets ...string) *batch.Error {
	return &batch.Error{Kind: batch.Permanent, Code: batch.CodeBadResponse,
		HTTPStatus: resp.StatusCode, Message: "unexpected answer: " + SafeSnippet(body, secrets...)}
}

// Foreign classifies an answer that is not the vendor's own: a 404 page
// from another server, an HTML error page, a redirect. Which answers are
// the vendor's own only its adapter knows; this marks the error
// batch.FaultForeign, so that three in a row stop the target.
func Foreign(resp *http.Response, body []byte, secrets ...string) *batch.Error {
	e := Unexpected(resp, body, secrets...)
	e.Fault = batch.FaultForeign
	return e
}

// JSONMedia reports whether a Content-Type allows a JSON body: none at
// all (nothing claimed; the body decides), application/json or a +json
// type.
func JSONMedia(contentType string) bool {
	if contentType == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// Page reports whether an answer is a web page (HTML), which none of the
// vendors' APIs answers: a proxy's, a login portal's or another server's.
func Page(resp *http.Response, body []byte) bool {
	return PageOf(resp.Header.Get("Content-Type"), body)
}

// PageOf is Page for an answer's Content-Type and body.
func PageOf(contentType string, body []byte) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "text/html" || mt == "application/xhtml+xml" {
		return true
	}
	b := bytes.TrimSpace(body)
	return len(b) > 0 && b[0] == '<'
}

// MaxRetryAfter is the longest wait ParseRetryAfter returns: a larger value,
// or one past int64, is clamped to it rather than overflowing. How long a
// target may actually pause is the pipeline's per-target limit, below this.
const MaxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads a Retry-After value in either form, seconds or an
// HTTP date, as a wait from now, at most MaxRetryAfter. It returns 0 when
// the value is absent, unreadable or in the past; never a negative wait.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if allDigits(v) {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter // only a range error is possible: too many digits
		}
		return time.Duration(secs) * time.Second
	}
	when, err := http.ParseTime(v)
	if err != nil || !when.After(now) {
		return 0
	}
	return min(when.Sub(now), MaxRetryAfter)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Segment escapes one user-supplied path segment so that it stays exactly one
// segment: '/', '?', '#', '%' and '+' are escaped, and "." or ".." cannot be
// taken as a relative path.
func Segment(s string) string {
	if s == "." || s == ".." {
		return strings.ReplaceAll(s, ".", "%2E")
	}
	return strings.ReplaceAll(url.PathEscape(s), "+", "%2B")
}

// URL joins base (which may carry its own path prefix) and an already-escaped
// path, keeping the escapes on the wire. Its error does not quote base, which
// may hold credentials.
func URL(base, escapedPath string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(base, "/") + escapedPath)
	if err != nil {
		return nil, errors.New("base_url is not a valid URL")
	}
	return u, nil
}

// CheckBaseURL is every adapter's check of its base_url: present, absolute,
// http or https. Its errors name the key and never quote the value.
func CheckBaseURL(base string) error {
	if strings.TrimSpace(base) == "" {
		return errors.New("base_url is required")
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("base_url must be an absolute http or https URL")
	}
	return nil
}

// NoRedirects returns a copy of c (nil: a new client) that does not follow
// redirects: Go would resend a POST as a GET on 301/302 and carry custom
// credential headers, or a key in the query, to whatever host the redirect
// names. The adapters classify a 3xx as an unexpected answer instead.
func NoRedirects(c *http.Client) *http.Client {
	var cp http.Client
	if c != nil {
		cp = *c
	}
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// Permanent is a refusal that sending again cannot change: the vendor's own
// answer, with its status, code and message.
func Permanent(status int, code, message string) *batch.Error {
	return &batch.Error{Kind: batch.Permanent, Code: code, HTTPStatus: status, Message: message}
}

// Clock is now, or time.Now when now is nil: how every adapter reads its
// Config.Now (a test's clock for Retry-After dates).
func Clock(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}
