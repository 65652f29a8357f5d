package kii

import (
	"cmp"
	"encoding/json"
	"mime"
	"net/http"
	"strings"

	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
)

// classify returns nil for a 2xx answer and a *batch.Error for any other:
//
//	429                 → Retryable, with Retry-After (httpcall.Common)
//	5xx                 → Ambiguous (httpcall.Common)
//	401, 403            → Permanent unauthorized
//	not Kii's error     → Permanent bad_response, marked batch.FaultForeign:
//	                      a 404 page or an HTML page from another server, so
//	                      base_url is likely wrong (README "Targets that stop")
//	404 USER_NOT_FOUND  → Permanent not_found, with Kii's message
//	404 APP_NOT_FOUND   → Permanent not_found, saying app_id is wrong
//	404, other errorCode → Permanent bad_response
//	400                 → Permanent validation
//	any other status    → Permanent refused with Kii's message
//
// Kii's own error carries an errorCode, or one of Kii's media types. The
// status decides; errorCode only tells the 404s apart. Text taken from the
// body goes through httpcall.SafeMessage or SafeSnippet, which redacts the
// token from the whole text before cutting it.
func (c *Client) classify(resp *http.Response, body []byte) error {
	status := resp.StatusCode
	if status/100 == 2 {
		return nil
	}
	var kerr errorResponse
	decoded := json.Unmarshal(body, &kerr) == nil
	kii := decoded && (kerr.ErrorCode != "" || kiiMedia(resp.Header.Get("Content-Type")))
	message := httpcall.SafeMessage(describe(kerr), c.token)
	if err := httpcall.Common(resp, message, c.now()); err != nil {
		return err
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return httpcall.Permanent(status, batch.CodeUnauthorized, cmp.Or(message, http.StatusText(status)))
	case !kii:
		return httpcall.Foreign(resp, body, c.token)
	case status == http.StatusNotFound && kerr.ErrorCode == errUserNotFound:
		return httpcall.Permanent(status, batch.CodeNotFound, message)
	case status == http.StatusNotFound && kerr.ErrorCode == errAppNotFound:
		return httpcall.Permanent(status, batch.CodeNotFound,
			"app not found: check app_id and the site in base_url (Kii: "+message+")")
	case status == http.StatusNotFound:
		return httpcall.Unexpected(resp, body, c.token)
	case status == http.StatusBadRequest:
		return httpcall.Permanent(status, batch.CodeValidation, cmp.Or(message, http.StatusText(status)))
	}
	return httpcall.Permanent(status, batch.CodeRefused, cmp.Or(message, http.StatusText(status)))
}

// kiiMedia reports whether contentType is one of Kii's own media types
// (application/vnd.kii.*).
func kiiMedia(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && strings.HasPrefix(mt, "application/vnd.kii.")
}

// describe is Kii's message, prefixed by its errorCode when the message does
// not already carry it.
func describe(e errorResponse) string {
	switch {
	case e.Message == "":
		return e.ErrorCode
	case e.ErrorCode == "" || strings.Contains(e.Message, e.ErrorCode):
		return e.Message
	}
	return e.ErrorCode + ": " + e.Message
}

// decodeStatus reads a 2xx answer to GET .../status. Kii documents its own
// media type; application/json and other +json types are tolerated, anything
// else (an HTML page from a proxy) is a bad_response.
func (c *Client) decodeStatus(resp *http.Response, body []byte) (bool, error) {
	if !httpcall.JSONMedia(resp.Header.Get("Content-Type")) {
		return false, &batch.Error{Kind: batch.Permanent, Code: batch.CodeBadResponse, HTTPStatus: resp.StatusCode,
			Message: "answer is " + httpcall.SafeMessage(resp.Header.Get("Content-Type"), c.token) + ", not " + mediaRetrievalResponse,
			Fault:   batch.FaultForeign}
	}
	var st statusResponse
	if err := json.Unmarshal(body, &st); err != nil || st.Disabled == nil {
		return false, &batch.Error{Kind: batch.Permanent, Code: batch.CodeBadResponse, HTTPStatus: resp.StatusCode,
			Message: "answer has no boolean \"disabled\": " + httpcall.SafeSnippet(body, c.token), Fault: batch.FaultForeign}
	}
	return *st.Disabled, nil
}
