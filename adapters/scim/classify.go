package scim

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
)

// errPrecondition marks a 412: the user changed since it was read.
var errPrecondition = errors.New("precondition failed: the resource changed since it was read")

// classify returns nil for a 2xx answer and a *batch.Error for any other
// (RFC 7644 §3.12):
//
//	401, 403   → Permanent unauthorized
//	412        → Permanent conflict, wrapping errPrecondition (Apply reads again)
//	not a SCIM error body → Permanent bad_response, marked batch.FaultForeign
//	             (httpcall.Foreign): a 404 page or an HTML page from another
//	             server, so base_url is not the SCIM root
//	404        → Permanent not_found
//	400        → Permanent validation (invalidFilter, invalidValue, mutability...)
//	409        → Permanent conflict (uniqueness, mutability)
//	429        → Retryable, waiting Retry-After, else X-Rate-Limit-Reset
//	501        → Permanent refused: the provider does not implement it
//	other 5xx  → Ambiguous: the provider may have acted; writes are idempotent
//	other      → Permanent refused with the provider's detail, or bad_response
//
// The status decides; the body (status, scimType, detail) only words the
// message, which is scrubbed of the token before it is cut to a snippet.
func (c *Client) classify(resp *http.Response, body []byte) error {
	status := resp.StatusCode
	if status/100 == 2 {
		return nil
	}
	var serr errorResponse
	scimError := json.Unmarshal(body, &serr) == nil && (slices.Contains(serr.Schemas, schemaError) ||
		len(serr.Status) > 0 || serr.Detail != "" || serr.ScimType != "" || serr.Message != "")
	message := httpcall.SafeMessage(describe(serr), c.token)
	if status == http.StatusNotImplemented {
		return httpcall.Permanent(status, batch.CodeRefused, cmp.Or(message, "the provider does not implement this request"))
	}
	if err := httpcall.Common(resp, message, c.now()); err != nil {
		if err.Code == batch.CodeRateLimited && err.RetryAfter == 0 {
			err.RetryAfter = rateLimitReset(resp.Header, c.now())
		}
		return err
	}
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return httpcall.Permanent(status, batch.CodeUnauthorized, cmp.Or(message, http.StatusText(status)))
	case http.StatusPreconditionFailed:
		e := httpcall.Permanent(status, batch.CodeConflict, cmp.Or(message, "the user changed since it was read"))
		e.Err = errPrecondition
		return e
	}
	if !scimError {
		return httpcall.Foreign(resp, body, c.token)
	}
	switch status {
	case http.StatusNotFound:
		return httpcall.Permanent(status, batch.CodeNotFound, cmp.Or(message, "no such user"))
	case http.StatusBadRequest:
		return httpcall.Permanent(status, batch.CodeValidation, cmp.Or(message, http.StatusText(status)))
	case http.StatusConflict:
		return httpcall.Permanent(status, batch.CodeConflict, cmp.Or(message, http.StatusText(status)))
	}
	return httpcall.Permanent(status, batch.CodeRefused, cmp.Or(message, http.StatusText(status)))
}

// describe words a SCIM error body: "scimType: detail".
func describe(e errorResponse) string {
	detail := e.Detail
	if detail == "" {
		detail = e.Message
	}
	switch {
	case e.ScimType == "":
		return detail
	case detail == "":
		return e.ScimType
	}
	return e.ScimType + ": " + detail
}

// rateLimitReset reads X-Rate-Limit-Reset (or X-RateLimit-Reset) as a wait
// from now. Providers send epoch seconds; a small number is taken as
// seconds to wait, as a few send that instead. 0 when absent or past.
func rateLimitReset(h http.Header, now time.Time) time.Duration {
	v := h.Get("X-Rate-Limit-Reset")
	if v == "" {
		v = h.Get("X-RateLimit-Reset")
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	switch {
	case err != nil || n <= 0:
		return 0
	case n < 1e9: // before 2001 as an epoch: a number of seconds
		return time.Duration(n) * time.Second
	}
	if d := time.Unix(n, 0).Sub(now); d > 0 {
		return d.Round(time.Second)
	}
	return 0
}

// decodeUser reads a User resource. Only the raw JSON of a provider
// without PATCH is kept: the PUT sends it back.
func (c *Client) decodeUser(resp *http.Response, raw []byte, f Features) (current, error) {
	if !httpcall.JSONMedia(resp.Header.Get("Content-Type")) {
		// The header is the provider's text too: redacted like the body.
		return current{}, c.notSCIM(resp, "answer is "+httpcall.SafeMessage(resp.Header.Get("Content-Type"), c.token)+", not "+mediaSCIM+": ", raw)
	}
	var u userResource
	if err := json.Unmarshal(raw, &u); err != nil || u.ID == "" || u.Active == nil {
		return current{}, c.notSCIM(resp, "answer is not a User with an id and a boolean \"active\": ", raw)
	}
	cur := current{id: u.ID, version: u.Meta.Version, active: bool(*u.Active), known: true, status: resp.StatusCode, names: u.names()}
	if !f.Patch {
		cur.raw = raw
	}
	return cur, nil
}

func (c *Client) badResponse(resp *http.Response, prefix string, body []byte) *batch.Error {
	return &batch.Error{Kind: batch.Permanent, Code: batch.CodeBadResponse, HTTPStatus: resp.StatusCode,
		Message: prefix + httpcall.SafeSnippet(body, c.token)}
}

// notSCIM is a badResponse for an answer that is not SCIM at all (an HTML
// page, another API's JSON), marked batch.FaultForeign.
func (c *Client) notSCIM(resp *http.Response, prefix string, body []byte) *batch.Error {
	e := c.badResponse(resp, prefix, body)
	e.Fault = batch.FaultForeign
	return e
}
