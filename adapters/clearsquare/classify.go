package clearsquare

import (
	"bytes"
	"cmp"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
)

// unauthorizedHint is added to a 401's message: the vendor answers the same
// 401 for a bad token and for an unknown user id, and an operator reading
// the report must know to check both.
const unauthorizedHint = " (bad token, or no such user)"

// classify turns one answer to manage-status into a Reply or a *batch.Error:
//
//	2xx, status "error"     → Permanent refused, with the vendor's message
//	2xx, the envelope       → applied (an empty body too: the status says so)
//	2xx, any other body     → Ambiguous bad_response, marked batch.FaultForeign:
//	                          the toggle may have happened
//	401                     → Permanent unauthorized: bad token or unknown user
//	429                     → Retryable, with Retry-After (httpcall.Common)
//	5xx                     → Ambiguous (httpcall.Common)
//	403                     → Permanent unauthorized
//	not the envelope        → Permanent bad_response (httpcall.Foreign): a 404
//	                          page or an HTML page from another server
//	400, 422                → Permanent validation
//	any other status        → Permanent refused with the vendor's message
//
// The vendor's envelope is a JSON object with "message" or "status".
//
// Statuses decide; the body's message is only carried into the error. Every
// piece of the body quoted goes through httpcall.SafeMessage or SafeSnippet
// with secrets, which redacts the whole text before cutting it.
func classify(resp *http.Response, body []byte, now time.Time, secrets ...string) (batch.Reply, error) {
	msg, parsed := decode(body)
	msg.Message = httpcall.SafeMessage(msg.Message, secrets...)
	if resp.StatusCode/100 == 2 {
		return success(resp.StatusCode, body, msg, parsed, secrets)
	}
	if err := httpcall.Common(resp, msg.Message, now); err != nil {
		return batch.Reply{}, err
	}
	return batch.Reply{}, failure(resp, body, msg.Message, parsed, secrets)
}

// decode reads the vendor's envelope. parsed is false when body is not one:
// not JSON, or JSON with neither "message" nor "status".
func decode(body []byte) (manageStatusResponse, bool) {
	var m manageStatusResponse
	if err := json.Unmarshal(body, &m); err != nil || (m.Message == "" && m.Status == "") {
		return manageStatusResponse{}, false
	}
	return m, true
}

func success(status int, body []byte, msg manageStatusResponse, parsed bool, secrets []string) (batch.Reply, error) {
	switch {
	case parsed && strings.EqualFold(msg.Status, statusError):
		return batch.Reply{}, &batch.Error{Kind: batch.Permanent, Code: batch.CodeRefused,
			HTTPStatus: status, Message: cmp.Or(msg.Message, "the vendor answered status \"error\"")}
	case parsed || len(bytes.TrimSpace(body)) == 0:
		return batch.Reply{HTTPStatus: status, Message: msg.Message}, nil
	}
	// A 2xx we cannot read may come from a proxy in front of the vendor, or
	// from the vendor after it toggled: a toggle must not be resent, so this
	// is ambiguous rather than permanent.
	return batch.Reply{}, &batch.Error{Kind: batch.Ambiguous, Code: batch.CodeBadResponse,
		HTTPStatus: status, Message: "unreadable answer: " + httpcall.SafeSnippet(body, secrets...), Fault: batch.FaultForeign}
}

func failure(resp *http.Response, body []byte, message string, envelope bool, secrets []string) *batch.Error {
	status := resp.StatusCode
	switch {
	case status == http.StatusUnauthorized:
		// ClearSquare answers this for an unknown user id too: once the
		// token has been accepted in a run, it says nothing of the token.
		return &batch.Error{Kind: batch.Permanent, Code: batch.CodeUnauthorized, HTTPStatus: status,
			Message: cmp.Or(message, http.StatusText(status)) + unauthorizedHint, CredentialsUnsure: true}
	case status == http.StatusForbidden:
		return refusal(status, batch.CodeUnauthorized, message)
	case !envelope:
		// Not the vendor's envelope (a proxy's page, a wrong base_url): say
		// what came back rather than guess what it means.
		return httpcall.Foreign(resp, body, secrets...)
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		return refusal(status, batch.CodeValidation, message)
	}
	return refusal(status, batch.CodeRefused, message)
}

func refusal(status int, code, message string) *batch.Error {
	return &batch.Error{Kind: batch.Permanent, Code: code, HTTPStatus: status,
		Message: cmp.Or(message, http.StatusText(status))}
}
