package epixel

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"sort"
	"strings"
)

// The endpoint paths, appended to base_url. Epixel's paths all end in '/'.
const (
	pathBlock     = "/block/user/"
	pathUnblock   = "/unblock/user/"
	pathUpgrade   = "/upgrade/user-role/"
	pathDowngrade = "/downgrade/user-role/"
)

// The form fields.
const (
	fieldUniqueID    = "unique_id"
	fieldUpgradeTo   = "upgrade_to"
	fieldGenealogy   = "api_place_genealogy"
	fieldDowngradeTo = "downgrade_to"
	fieldBlockUser   = "api_block_user"
)

// field is one form field; a slice of them keeps the wire order stable.
type field struct{ name, value string }

// boolField spells a flag the way epixel's choice fields accept it.
func boolField(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// form is a client's multipart boundary and the Content-Type naming it.
type form struct{ boundary, contentType string }

func newForm() form {
	b := newBoundary()
	return form{boundary: b, contentType: "multipart/form-data; boundary=" + b}
}

// encode writes fields as multipart/form-data, as the vendor's own samples
// send them, and returns the body and its Content-Type. The boundary is the
// client's own; a value that happens to contain it gets a fresh one from
// mime/multipart. Writing the parts by hand saves most of the per-request
// cost of mime/multipart on the hot path.
func (fm form) encode(fields []field) ([]byte, string, error) {
	boundary := fm.boundary
	size := 8 + len(boundary)
	for _, f := range fields {
		if strings.Contains(f.value, boundary) || strings.ContainsAny(f.name, "\"\r\n") {
			return encodeMultipartSlow(fields)
		}
		size += len(boundary) + len(f.name) + len(f.value) + 50
	}
	b := make([]byte, 0, size)
	for _, f := range fields {
		b = append(b, "--"...)
		b = append(b, boundary...)
		b = append(b, "\r\nContent-Disposition: form-data; name=\""...)
		b = append(b, f.name...)
		b = append(b, "\"\r\n\r\n"...)
		b = append(b, f.value...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "--"...)
	b = append(b, boundary...)
	b = append(b, "--\r\n"...)
	return b, fm.contentType, nil
}

func encodeMultipartSlow(fields []field) ([]byte, string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := mw.WriteField(f.name, f.value); err != nil {
			return nil, "", err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}

// newBoundary is a random multipart boundary, as mime/multipart makes them.
func newBoundary() string {
	return multipart.NewWriter(io.Discard).Boundary()
}

// successEnvelope reports whether body is epixel's documented success
// answer: a JSON object whose status_code is a 2xx number and whose errors,
// if present, are empty. data is not checked: its content is undocumented.
func successEnvelope(body []byte) bool {
	if bytes.Equal(bytes.TrimSpace(body), documentedSuccess) {
		return true // the answer as documented, byte for byte: nothing to decode
	}
	return decodedSuccess(body)
}

// documentedSuccess is epixel's success answer as its documentation gives
// it, and as the vendor sends it.
var documentedSuccess = []byte(`{"status_code":200,"errors":{},"data":{}}`)

// decodedSuccess is successEnvelope for any spelling of the envelope.
func decodedSuccess(body []byte) bool {
	var env struct {
		StatusCode *int            `json:"status_code"`
		Errors     json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(body, &env) != nil || env.StatusCode == nil || *env.StatusCode/100 != 2 {
		return false
	}
	switch string(bytes.TrimSpace(env.Errors)) {
	case "", "null", "{}", "[]":
		return true
	}
	var errs map[string]json.RawMessage
	return json.Unmarshal(env.Errors, &errs) == nil && len(errs) == 0
}

// vendorErrors are the messages of an answer's "errors" object, by key:
// {"detail":"..."} for 401 and 403, {"unique_id":["..."]} for 400.
type vendorErrors map[string][]string

// parseErrors reads the messages of an answer. It takes the envelope's
// "errors" object, or, when the body has none, the top-level object itself
// (a bare {"detail":"..."} as a framework or proxy in front of the vendor
// would send). Values may be a string or a list of strings. It returns nil
// for a body that is not a JSON object.
func parseErrors(body []byte) vendorErrors {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return nil
	}
	obj := top
	if raw, ok := top["errors"]; ok {
		obj = nil
		if json.Unmarshal(raw, &obj) != nil {
			return nil
		}
	} else {
		delete(obj, "status_code")
		delete(obj, "data")
	}
	errs := vendorErrors{}
	for k, raw := range obj {
		if msgs := messages(raw); len(msgs) > 0 {
			errs[k] = msgs
		}
	}
	return errs
}

// messages reads a string or a list of strings; anything else is ignored.
func messages(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one = strings.TrimSpace(one); one != "" {
			return []string{one}
		}
		return nil
	}
	var many []string
	if json.Unmarshal(raw, &many) != nil {
		return nil
	}
	var out []string
	for _, m := range many {
		if m = strings.TrimSpace(m); m != "" {
			out = append(out, m)
		}
	}
	return out
}

// text is the errors as one message: the detail alone when there is one,
// otherwise "field: msg" for every field, in field order.
func (e vendorErrors) text() string {
	if d := e["detail"]; len(d) > 0 {
		return strings.Join(d, " ")
	}
	parts := make([]string, 0, len(e))
	for _, k := range e.keys() {
		parts = append(parts, k+": "+strings.Join(e[k], " "))
	}
	return strings.Join(parts, "; ")
}

// all lists every message, whatever its key: detail first, then by field
// name, so that matching is deterministic.
func (e vendorErrors) all() []string {
	out := append([]string(nil), e["detail"]...)
	for _, k := range e.keys() {
		if k != "detail" {
			out = append(out, e[k]...)
		}
	}
	return out
}

func (e vendorErrors) keys() []string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
