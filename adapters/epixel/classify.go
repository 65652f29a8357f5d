package epixel

import (
	"bytes"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
)

// classify turns epixel's answer to op into a Reply or a *batch.Error. It
// matches on the status first and on the message text second, tolerating
// case, whitespace and a missing trailing period in the text. Every piece of
// the vendor's text it quotes goes through httpcall.SafeMessage or
// SafeSnippet with secrets, which redacts before cutting.
//
//   - 2xx with the documented envelope ({"status_code":200,"errors":{},...}):
//     applied.
//   - 2xx with any other body (HTML from a captive portal, an empty body,
//     another JSON shape, an error status_code inside): Ambiguous
//     bad_response quoting the body's start, marked batch.FaultForeign.
//     Something answered 2xx, so the change may have been made; it may as
//     well be a proxy that never forwarded it.
//   - 429, 5xx: httpcall.Common (Retryable, Ambiguous).
//   - 401: Permanent CodeUnauthorized.
//   - any other status whose answer is not epixel's (see epixels: a 404
//     page, an HTML page, a redirect): httpcall.Foreign.
//   - 400: Permanent; CodeNotFound when unique_id's message is "User not exist
//     or invalid unique id.", otherwise CodeValidation with "field: msg".
//   - 403: see forbidden.
//   - anything else (404, 405, ... in epixel's JSON): httpcall.Unexpected.
func classify(op batch.Op, resp *http.Response, body []byte, now time.Time, secrets ...string) (batch.Reply, error) {
	if resp.StatusCode/100 == 2 {
		if !successEnvelope(body) {
			return batch.Reply{}, &batch.Error{Kind: batch.Ambiguous, Code: batch.CodeBadResponse, HTTPStatus: resp.StatusCode,
				Message: "not epixel's success envelope: " + httpcall.SafeSnippet(body, secrets...), Fault: batch.FaultForeign}
		}
		return batch.Reply{HTTPStatus: resp.StatusCode}, nil
	}
	errs := parseErrors(body)
	text := httpcall.SafeMessage(errs.text(), secrets...)
	if err := httpcall.Common(resp, text, now); err != nil {
		return batch.Reply{}, err
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return batch.Reply{}, permanent(batch.CodeUnauthorized, resp.StatusCode, orElse(text, "credentials refused"))
	case !epixels(resp.StatusCode, body, errs):
		return batch.Reply{}, httpcall.Foreign(resp, body, secrets...)
	case resp.StatusCode == http.StatusBadRequest:
		return batch.Reply{}, invalid(errs, text, body, secrets)
	case resp.StatusCode == http.StatusForbidden:
		return forbidden(op, errs, text, body, secrets)
	}
	return batch.Reply{}, httpcall.Unexpected(resp, body, secrets...)
}

// epixels reports whether an error answer can be epixel's own: a JSON
// object (its envelope, or the bare {"detail":...} of the framework in front
// of it), or no body at all on a status it documents (400, 403).
func epixels(status int, body []byte, errs vendorErrors) bool {
	if errs != nil {
		return true
	}
	documented := status == http.StatusBadRequest || status == http.StatusForbidden
	return documented && len(bytes.TrimSpace(body)) == 0
}

// invalid classifies a 400. Epixel reports an unknown user as a validation
// error of unique_id, which is the only way to tell a missing user. text is
// errs as one safe message.
func invalid(errs vendorErrors, text string, body []byte, secrets []string) *batch.Error {
	for _, m := range errs[fieldUniqueID] {
		if normalize(m) == "user not exist or invalid unique id" {
			return permanent(batch.CodeNotFound, http.StatusBadRequest, httpcall.SafeMessage(m, secrets...))
		}
	}
	return permanent(batch.CodeValidation, http.StatusBadRequest, orElse(text, httpcall.SafeSnippet(body, secrets...)))
}

// forbidden classifies a 403 ("Request Failed"). A message saying the user
// already holds exactly the role op asks for is Already: the vendor refused
// only because there was nothing to do. A message saying the user holds a
// different role ("User role is already upgraded.", "User already have a
// downgraded role.", or an "already have a <role>" naming another role) is a
// Permanent CodeConflict: reporting it as already would hide that the user is
// not in the state asked for. Any other 403 (free-package messages,
// "Somthing went wrong.") is a Permanent CodeRefused.
func forbidden(op batch.Op, errs vendorErrors, text string, body []byte, secrets []string) (batch.Reply, error) {
	if isRoleAction(op.Action) {
		for _, m := range errs.all() {
			switch verdict(op.Role, m) {
			case held:
				return batch.Reply{Already: true, HTTPStatus: http.StatusForbidden, Message: httpcall.SafeMessage(m, secrets...)}, nil
			case different:
				return batch.Reply{}, permanent(batch.CodeConflict, http.StatusForbidden, httpcall.SafeMessage(m, secrets...))
			}
		}
	}
	return batch.Reply{}, permanent(batch.CodeRefused, http.StatusForbidden, orElse(text, httpcall.SafeSnippet(body, secrets...)))
}

// roleState is what a 403 message says about the user's role.
type roleState int

const (
	unrelated roleState = iota // the message is not about the user's role
	held                       // the user already holds the role asked for
	different                  // the user holds another role that blocks the change
)

// alreadyHas matches "User already have a member role." and its variants
// (normalized: lower case, single spaces, no trailing period).
var alreadyHas = regexp.MustCompile(`^user already ha(?:ve|s) (?:an? )?(member|preferred customer|customer) role$`)

// verdict reads one 403 message for a role change to role.
func verdict(role, msg string) roleState {
	n := normalize(msg)
	switch n {
	case "user role is already upgraded", "user already have a downgraded role", "user already has a downgraded role":
		return different
	}
	m := alreadyHas.FindStringSubmatch(n)
	switch {
	case m == nil:
		return unrelated
	case strings.EqualFold(m[1], role):
		return held
	}
	return different
}

// normalize lowers case, collapses whitespace and drops trailing periods, so
// that small variations of the vendor's messages still match.
func normalize(s string) string {
	s = strings.ToLower(strings.Join(strings.Fields(s), " "))
	return strings.TrimRight(s, ".! ")
}

func isRoleAction(a batch.Action) bool {
	return a == batch.UpgradeRole || a == batch.DowngradeRole
}

func permanent(code string, status int, msg string) *batch.Error {
	return &batch.Error{Kind: batch.Permanent, Code: code, HTTPStatus: status, Message: msg}
}

func orElse(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
