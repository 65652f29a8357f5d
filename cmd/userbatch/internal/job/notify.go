package job

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/reports"
)

// NotifyTiming bounds a notification; tests shorten it.
type NotifyTiming struct {
	Attempts int
	// Backoff is the first backoff of the vendors' retry policy
	// (batch.Retry): it doubles after each attempt, jittered.
	Backoff time.Duration
	// Timeout bounds one attempt, Total all of them with their waits.
	Timeout, Total time.Duration
}

// DefaultNotifyTiming is a run's: 3 attempts within about 15s.
func DefaultNotifyTiming() NotifyTiming {
	return NotifyTiming{Attempts: 3, Backoff: time.Second, Timeout: 5 * time.Second, Total: 15 * time.Second}
}

// notifyPayload is what the webhook receives; Slack and most chat tools
// show text and ignore the rest.
type notifyPayload struct {
	Text    string           `json:"text"`
	Summary *reports.Summary `json:"summary"`
}

// Notify POSTs {"text": text, "summary": sum} (sum as summary.json holds
// it, null when nil) to webhook. It makes up to tm.Attempts attempts, each
// bounded by tm.Timeout, with a short backoff between them, all within
// tm.Total or ctx, whichever ends first (a run's: 3 within about 15s). Retries follow the vendors' policy
// (batch.Retry) and classification (httpcall): it retries timeouts,
// connection failures, 408, 429 and 5xx, and gives up at once on a refused
// TLS certificate and on other answers. It returns
// nothing to act on: a notification never fails a run. Failures are logged
// at warn level as "the notify webhook", without its URL, host or any part
// of it (a webhook URL is a secret), and without the answer's body.
// Redirects are followed only to the same scheme and host, so the summary
// is never sent elsewhere. An empty webhook does nothing. A connection cut
// after the request went out is retried, so a chat may rarely show a
// notification twice; that is better than none.
//
// A run stopped by a signal should pass a ctx that the signal did not
// cancel (context.WithoutCancel): that is the notification that matters.
func (tm NotifyTiming) Notify(ctx context.Context, log zerolog.Logger, webhook, text string, sum *reports.Summary) {
	if webhook == "" {
		return
	}
	if u, err := url.Parse(webhook); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		log.Warn().Msg("the notify webhook is not an http(s) URL; no notification was sent")
		return
	}
	body, err := json.Marshal(notifyPayload{Text: text, Summary: sum})
	if err != nil { // a Summary always marshals; this is defence
		log.Warn().Str("reason", "the summary could not be encoded").Msg("the notify webhook was not called")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, tm.Total)
	defer cancel()
	client := notifyClient(tm.Timeout)
	policy := batch.Retry{Attempts: tm.Attempts, Base: tm.Backoff}
	// A notification twice is better than none: one that may have arrived
	// is sent again.
	attempts, err := policy.Do(ctx, nil, true, func(ctx context.Context) error {
		return postOnce(ctx, client, tm.Timeout, webhook, body)
	})
	if err == nil {
		log.Debug().Int("attempts", attempts).Msg("the notify webhook was called")
		return
	}
	log.Warn().Int("attempts", attempts).Str("reason", notifyReason(err)).
		Msg("the notify webhook failed; the run's outcome is unchanged (see the report)")
}

// notifyReason says why the webhook failed, holding nothing of its URL.
func notifyReason(err error) string {
	var berr *batch.Error
	switch {
	case !errors.As(err, &berr): // the wait before the next attempt ran out
		return "gave up: out of time"
	case berr.HTTPStatus != 0 && berr.Code != batch.CodeNetwork: // an answer, not a broken one
		return berr.Message
	case berr.Code == httpcall.CodeRequest:
		return "the webhook URL is not valid"
	}
	return describe(berr)
}

// postOnce makes one attempt, classified as the vendors' requests are
// (httpcall): nil on a 2xx answer, else a *batch.Error whose Message, for an
// answer, is what the log says.
func postOnce(ctx context.Context, client *http.Client, timeout time.Duration, webhook string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, webhook, bytes.NewReader(body))
	if err != nil {
		return &batch.Error{Kind: batch.Permanent, Code: httpcall.CodeRequest}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "userbatch")
	resp, _, err := httpcall.Do(client, req)
	if err != nil {
		return err
	}
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	message := fmt.Sprintf("HTTP %d", code)
	if e := httpcall.Common(resp, message, time.Now()); e != nil {
		return e
	}
	switch {
	case code == http.StatusRequestTimeout:
		return &batch.Error{Kind: batch.Retryable, HTTPStatus: code, Message: message}
	case code >= 300 && code < 400:
		message += ": a redirect elsewhere, not followed"
	}
	return &batch.Error{Kind: batch.Permanent, HTTPStatus: code, Message: message}
}

// notifyClient is a client of its own: no shared timeouts or proxies of a
// vendor's, and redirects followed only to the same scheme and host.
func notifyClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			first := via[0].URL
			if len(via) >= 3 || req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// describe says why a request failed without quoting err, whose text holds
// the URL (url.Error) or its host (DNS and dial errors).
func describe(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.As(err, &dnsErr):
		return "the host name did not resolve"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the server"
	case errors.As(err, &certErr), errors.As(err, &unknownAuthority):
		return "the server's TLS certificate was refused"
	}
	return "the request failed"
}

// exitMeaning is what each exit code tells the person on call.
var exitMeaning = map[reports.ExitCode]string{
	reports.ExitOK:         "done",
	reports.ExitIncomplete: "finished, but some rows need attention",
	reports.ExitBadInput:   "bad input or config, nothing was sent",
	reports.ExitStopped:    "stopped before finishing, resumable with --resume",
	reports.ExitHeld:       "held by a guard, nothing was sent",
}

// NotifyText is the one line a person reads in a chat channel: the rows
// by outcome, what the exit code means, and where the report is. held says
// a guard held the run (it then reads as a hold whatever code says). sum
// may be nil (a run that ended before its report); pass reportDir "" when
// there is no report to point at.
func NotifyText(sum *reports.Summary, code reports.ExitCode, held bool, reportDir string) string {
	var b strings.Builder
	b.WriteString("userbatch")
	if sum != nil && sum.DryRun {
		b.WriteString(" dry run")
	}
	if held {
		b.WriteString(" held by a guard")
	}
	if sum != nil && sum.Actor != "" {
		fmt.Fprintf(&b, " (run by %s)", sum.Actor)
	}
	b.WriteString(": ")
	if sum != nil {
		fmt.Fprintf(&b, "%s (%s); ", batch.CountRows(sum.Rows), outcomeCounts(sum.Outcomes))
	}
	meaning, ok := exitMeaning[code]
	if held {
		meaning = "held by a guard, nothing was sent: see the counts and raise the limit or split the file"
	} else if !ok {
		meaning = "unexpected"
	}
	fmt.Fprintf(&b, "exit %d: %s", code, meaning)
	if reportDir != "" {
		fmt.Fprintf(&b, "; report: %s", reportDir)
	}
	return b.String()
}

// reportLocation is where the report is, for a person reading the webhook
// elsewhere: its absolute path on this host (a relative -o means nothing
// in a chat channel, nor does a path without the machine it is on).
func reportLocation(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if host, err := os.Hostname(); err == nil && host != "" {
		return dir + " on host " + host
	}
	return dir
}

// outcomeCounts lists the outcomes that have rows, in report order, as
// "3 applied, 1 failed".
func outcomeCounts(c reports.Counts) string {
	var parts []string
	for _, o := range batch.Outcomes {
		if n := c[o]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, o))
		}
	}
	for _, o := range slices.Sorted(maps.Keys(c)) { // outcomes this build does not list
		if n := c[o]; n > 0 && !slices.Contains(batch.Outcomes, o) {
			parts = append(parts, fmt.Sprintf("%d %s", n, o))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Webhook sends a run's summary to the notify webhook at its end, when
// the run got as far as a report (README "Scheduling").
type Webhook struct {
	Unobserved
	url, reportDir string
	log            zerolog.Logger
	timing         NotifyTiming
}

// NewWebhook posts to url, pointing at the report in reportDir.
func NewWebhook(url, reportDir string, log zerolog.Logger, timing NotifyTiming) *Webhook {
	return &Webhook{url: url, reportDir: reportDir, log: log, timing: timing}
}

// Finished notifies; a run stopped by a signal is notified all the same.
func (w *Webhook) Finished(e End) {
	if e.Summary == nil {
		return
	}
	text := NotifyText(e.Summary, e.ExitCode, e.Held, reportLocation(w.reportDir))
	w.timing.Notify(context.Background(), w.log, w.url, text, e.Summary)
}
