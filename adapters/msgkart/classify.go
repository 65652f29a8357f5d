package msgkart

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
)

// classify turns one msgkart answer into nil (the call succeeded) or a
// classified error. It is the only place that reads statuses:
//
//   - any 2xx: success; the success body is undocumented and not required.
//   - 429: Retryable with Retry-After; 5xx: Ambiguous (httpcall.Common).
//   - 401 (and 403, which msgkart does not document but can only mean the
//     credential pair may not do this): Permanent unauthorized.
//   - an answer that is not msgkart's (see msgkarts: a 404 page, an HTML
//     page, a redirect): httpcall.Foreign.
//   - 404: Permanent not_found.
//   - 400: Permanent; not_found when the vendor's message says the user is
//     unknown (msgkart may answer an unknown user with 400),
//     validation otherwise.
//   - anything else: Permanent bad_response.
//
// The message is the vendor's own "message" text when there is one, else a
// snippet of the body, both with secrets redacted before they are cut.
func classify(resp *http.Response, body []byte, now time.Time, secrets ...string) *batch.Error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	text := errorText(body, secrets)
	if err := httpcall.Common(resp, text, now); err != nil {
		return err
	}
	if text == "" {
		text = http.StatusText(resp.StatusCode)
	}
	permanent := func(code string) *batch.Error { return httpcall.Permanent(resp.StatusCode, code, text) }
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		e := permanent(batch.CodeUnauthorized)
		e.Hint = unauthorizedHint
		return e
	case !msgkarts(resp, body):
		return httpcall.Foreign(resp, body, secrets...)
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return permanent(batch.CodeNotFound)
	case http.StatusBadRequest:
		if saysUserUnknown(text) {
			return permanent(batch.CodeNotFound)
		}
		return permanent(batch.CodeValidation)
	}
	return httpcall.Unexpected(resp, body, secrets...)
}

// msgkarts reports whether an error answer can be msgkart's own: its JSON,
// or, on a 400 (documented, its body not), any text but an HTML page. A
// 404 without msgkart's JSON is another server's "page not found".
func msgkarts(resp *http.Response, body []byte) bool {
	if jsonObject(body) {
		return true
	}
	return resp.StatusCode == http.StatusBadRequest && !httpcall.Page(resp, body)
}

func jsonObject(body []byte) bool {
	b := bytes.TrimSpace(body)
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// errorText is the vendor's message, else a snippet of a non-blank body, else "".
func errorText(body []byte, secrets []string) string {
	if msg := messageOf(body); msg != "" {
		return httpcall.SafeMessage(msg, secrets...)
	}
	return httpcall.SafeMessage(string(body), secrets...)
}

// saysUserUnknown reports whether a 400's text says the user does not exist.
// The wording is undocumented, so it matches loosely but needs both a user
// and a not-found phrase: "apikey and email are required" stays validation.
func saysUserUnknown(text string) bool {
	lower := strings.ToLower(text)
	if !strings.Contains(lower, "user") {
		return false
	}
	for _, phrase := range []string{"not found", "not exist", "doesn't exist", "unknown", "no such"} {
		if strings.Contains(lower, phrase) {
			return true
		}
	}
	return false
}

// unauthorizedHint is a refusal's detail: msgkart's credentials are the
// apikey and the caller's email, not a token.
const unauthorizedHint = "credentials refused: check the target's apikey and email, then re-run failed.csv"
