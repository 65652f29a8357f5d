// Package httpcall holds the HTTP plumbing every vendor adapter shares: one
// request, a bounded read of the answer, and the classification of transport
// failures and of the statuses every vendor treats alike (429, 5xx).
package httpcall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/userbatch/userbatch/batch"
)

// maxBody bounds what is read of an answer: admin APIs answer in bytes, and a
// misrouted request must not fill memory.
const maxBody = 1 << 20

// Do sends req once and reads at most 1 MiB of the answer. A transport failure
// is a *batch.Error: Retryable when no connection was made, so the vendor
// cannot have seen the request; Ambiguous otherwise. Its message never holds
// the URL, which may carry credentials in its query.
func Do(client *http.Client, req *http.Request) (*http.Response, []byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, transportError(req.Context(), err)
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

func transportError(ctx context.Context, err error) *batch.Error {
	inner := stripURL(err)
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return &batch.Error{Kind: batch.Retryable, Code: batch.CodeNetwork,
			Message: "connecting: " + errText(inner), Err: inner}
	}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return &batch.Error{Kind: batch.Ambiguous, Code: batch.CodeTimeout,
			Message: "no answer in time", Err: inner}
	}
	if ctx.Err() != nil {
		return &batch.Error{Kind: batch.Ambiguous, Code: batch.CodeNetwork,
			Message: "stopped while the request was in flight", Err: inner}
	}
	return &batch.Error{Kind: batch.Ambiguous, Code: batch.CodeNetwork,
		Message: "connection dropped: " + errText(inner), Err: inner}
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
			HTTPStatus: resp.StatusCode, Message: orDefault(message, "rate limited"),
			RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), now)}
	case resp.StatusCode >= 500:
		return &batch.Error{Kind: batch.Ambiguous, Code: batch.CodeServer,
			HTTPStatus: resp.StatusCode, Message: orDefault(message, http.StatusText(resp.StatusCode)),
			RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), now)}
	}
	return nil
}

// Unexpected classifies a status the vendor's contract does not mention.
func Unexpected(resp *http.Response, body []byte) *batch.Error {
	return &batch.Error{Kind: batch.Permanent, Code: batch.CodeBadResponse,
		HTTPStatus: resp.StatusCode, Message: fmt.Sprintf("unexpected answer: %s", Snippet(body))}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ParseRetryAfter reads a Retry-After value in either form, seconds or an
// HTTP date, as a wait from now. It returns 0 when the value is absent,
// unreadable or in the past.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	when, err := http.ParseTime(v)
	if err != nil || !when.After(now) {
		return 0
	}
	return when.Sub(now)
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

// Snippet is a short, single-line excerpt of a body for messages.
func Snippet(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}
