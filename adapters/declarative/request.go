package declarative

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
)

// jsonBody is a JSON body written in YAML: strings are templates (each
// value escaped as a JSON string), booleans, numbers and null are literal.
type jsonBody struct {
	root jsonNode
}

type jsonKind int

const (
	jsonLiteral jsonKind = iota
	jsonString
	jsonObject
	jsonArray
)

type jsonNode struct {
	kind  jsonKind
	lit   []byte   // jsonLiteral: the encoded value
	str   template // jsonString
	keys  [][]byte // jsonObject: the encoded keys
	items []jsonNode
}

func (b *jsonBody) UnmarshalYAML(n *yaml.Node) error {
	root, err := compileJSON(n)
	b.root = root
	return err
}

func compileJSON(n *yaml.Node) (jsonNode, error) {
	switch n.Kind {
	case yaml.MappingNode:
		out := jsonNode{kind: jsonObject}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, err := json.Marshal(n.Content[i].Value)
			if err != nil {
				return out, posErr(posOf(n.Content[i]), "%v", err)
			}
			v, err := compileJSON(n.Content[i+1])
			if err != nil {
				return out, err
			}
			out.keys, out.items = append(out.keys, k), append(out.items, v)
		}
		return out, nil
	case yaml.SequenceNode:
		out := jsonNode{kind: jsonArray}
		for _, c := range n.Content {
			v, err := compileJSON(c)
			if err != nil {
				return out, err
			}
			out.items = append(out.items, v)
		}
		return out, nil
	case yaml.ScalarNode:
		return compileScalar(n)
	}
	return jsonNode{}, posErr(posOf(n), "not a JSON value")
}

func compileScalar(n *yaml.Node) (jsonNode, error) {
	var v any
	switch n.ShortTag() {
	case "!!str":
		var t template
		if err := t.UnmarshalYAML(n); err != nil {
			return jsonNode{}, err
		}
		return jsonNode{kind: jsonString, str: t}, nil
	case "!!bool", "!!int", "!!float", "!!null":
		if err := n.Decode(&v); err != nil {
			return jsonNode{}, posErr(posOf(n), "%v", err)
		}
	default:
		return jsonNode{}, posErr(posOf(n), "%s is not a JSON value", n.ShortTag())
	}
	lit, err := json.Marshal(v)
	if err != nil {
		return jsonNode{}, posErr(posOf(n), "%v", err)
	}
	return jsonNode{kind: jsonLiteral, lit: lit}, nil
}

// templates lists every template in the body, for the load checks.
func (n *jsonNode) templates() []*template {
	if n.kind == jsonString {
		return []*template{&n.str}
	}
	var out []*template
	for i := range n.items {
		out = append(out, n.items[i].templates()...)
	}
	return out
}

// render appends the node; extra are fields added to a top-level object
// (auth body fields).
func (n *jsonNode) render(dst []byte, v *values, extra []param) ([]byte, error) {
	var err error
	switch n.kind {
	case jsonLiteral:
		return append(dst, n.lit...), nil
	case jsonString:
		dst = append(dst, '"')
		if dst, err = n.str.render(dst, v, inJSON); err != nil {
			return dst, err
		}
		return append(dst, '"'), nil
	case jsonArray:
		dst = append(dst, '[')
		for i := range n.items {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = n.items[i].render(dst, v, nil); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	}
	dst = append(dst, '{')
	for i := range n.items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(append(dst, n.keys[i]...), ':')
		if dst, err = n.items[i].render(dst, v, nil); err != nil {
			return dst, err
		}
	}
	for i := range extra {
		if len(n.items) > 0 || i > 0 {
			dst = append(dst, ',')
		}
		dst = append(appendJSONInner(append(dst, '"'), extra[i].Name), '"', ':', '"')
		if dst, err = extra[i].Value.render(dst, v, inJSON); err != nil {
			return dst, err
		}
		dst = append(dst, '"')
	}
	return append(dst, '}'), nil
}

// build makes one request for op. Nothing in its errors quotes the URL or
// a value: base_url and the values may hold credentials.
func (a *Adapter) build(ctx context.Context, rq *requestSpec, v *values) (*http.Request, error) {
	buf := make([]byte, 0, 128)
	path, err := rq.Path.render(buf, v, inPath)
	if err != nil {
		return nil, err
	}
	u, err := httpcall.URL(a.base, string(path))
	if err != nil {
		return nil, &batch.Error{Kind: batch.Permanent, Code: httpcall.CodeRequest, Message: err.Error()}
	}
	body, contentType, err := a.body(rq, v)
	if err != nil {
		return nil, err
	}
	var rd *bytes.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := newRequest(ctx, rq.Method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	// The query is added after the URL was parsed, so no parse error can
	// quote a key that travels in it.
	if req.URL.RawQuery, err = a.query(rq, v, req.URL.RawQuery); err != nil {
		return nil, err
	}
	if err := a.headers(req.Header, rq, v); err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req, nil
}

// newRequest builds the request; a nil body stays a nil io.Reader (a nil
// *bytes.Reader in one would not be).
func newRequest(ctx context.Context, method, u string, body *bytes.Reader) (*http.Request, error) {
	var req *http.Request
	var err error
	if body == nil {
		req, err = http.NewRequestWithContext(ctx, method, u, nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, u, body)
	}
	if err != nil {
		return nil, &batch.Error{Kind: batch.Permanent, Code: httpcall.CodeRequest, Message: "building the request for base_url"}
	}
	return req, nil
}

// query appends auth's then the request's parameters to base's own query,
// each name and value query-escaped.
func (a *Adapter) query(rq *requestSpec, v *values, raw string) (string, error) {
	var b strings.Builder
	b.WriteString(raw)
	for _, list := range [2][]param{a.spec.file.Auth.Query, rq.Query} {
		for i := range list {
			val, ok, err := a.paramValue(&list[i], v, inQuery)
			if err != nil {
				return "", err
			}
			if !ok {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(list[i].Name))
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(val))
		}
	}
	return b.String(), nil
}

func (a *Adapter) headers(h http.Header, rq *requestSpec, v *values) error {
	accept := rq.Accept
	if accept == "" {
		accept = "application/json"
	}
	h["Accept"] = []string{accept}
	for _, list := range [2][]param{a.spec.file.Auth.Headers, rq.Headers} {
		for i := range list {
			val, ok, err := a.paramValue(&list[i], v, inHeader)
			if err != nil {
				return err
			}
			if ok {
				h[list[i].key] = []string{val}
			}
		}
	}
	return nil
}

// paramValue is p's value for this row: rendered once at New when it
// names only config keys, else now.
func (a *Adapter) paramValue(p *param, v *values, w where) (string, bool, error) {
	if s, ok := a.static[p]; ok {
		return s, true, nil
	}
	return p.value(v, w)
}

// value renders one parameter; ok is false when it is left out (its when
// does not hold, or it is empty and omit_empty).
func (p *param) value(v *values, w where) (string, bool, error) {
	if !holds(p.When, v.op) {
		return "", false, nil
	}
	s, err := p.Value.renderString(v, w)
	if err != nil {
		var berr *batch.Error
		if p.OmitEmpty && errors.As(err, &berr) && berr.Code == batch.CodeValidation {
			return "", false, nil
		}
		return "", false, err
	}
	return s, true, nil
}

// body renders the request's JSON or form body and says its content type.
func (a *Adapter) body(rq *requestSpec, v *values) ([]byte, string, error) {
	auth := a.spec.file.Auth.Body
	switch {
	case rq.JSON != nil:
		extra := auth
		if rq.JSON.root.kind != jsonObject {
			extra = nil
		}
		b, err := rq.JSON.root.render(make([]byte, 0, 64), v, extra)
		return b, cmp.Or(rq.ContentType, "application/json"), err
	case len(rq.Form) > 0:
		fields := make([][2]string, 0, len(rq.Form)+len(auth))
		for _, list := range [2][]param{rq.Form, auth} {
			for i := range list {
				val, ok, err := list[i].value(v, inForm)
				if err != nil {
					return nil, "", err
				}
				if ok {
					fields = append(fields, [2]string{list[i].Name, val})
				}
			}
		}
		if rq.Encoding == "multipart" {
			return a.multipart(fields)
		}
		return urlencoded(fields), cmp.Or(rq.ContentType, "application/x-www-form-urlencoded"), nil
	}
	return nil, rq.ContentType, nil
}

func urlencoded(fields [][2]string) []byte {
	var b []byte
	for i, f := range fields {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, url.QueryEscape(f[0])...)
		b = append(b, '=')
		b = append(b, url.QueryEscape(f[1])...)
	}
	return b
}

// multipart writes form fields as multipart/form-data under the adapter's
// boundary. A value holding the boundary, or a name holding a quote, a
// backslash or a line break, goes through mime/multipart, which picks a
// fresh boundary and escapes the name; the usual fields are written
// directly, which costs a fraction of it per row.
func (a *Adapter) multipart(fields [][2]string) ([]byte, string, error) {
	size := len(a.boundary) + 8
	for _, f := range fields {
		if strings.Contains(f[1], a.boundary) || strings.ContainsAny(f[0], "\"\\\r\n") {
			return slowMultipart(fields)
		}
		size += len(a.boundary) + len(f[0]) + len(f[1]) + 48
	}
	b := make([]byte, 0, size)
	for _, f := range fields {
		b = append(append(append(b, "--"...), a.boundary...), "\r\nContent-Disposition: form-data; name=\""...)
		b = append(append(append(append(b, f[0]...), "\"\r\n\r\n"...), f[1]...), "\r\n"...)
	}
	b = append(append(append(b, "--"...), a.boundary...), "--\r\n"...)
	return b, "multipart/form-data; boundary=" + a.boundary, nil
}

func slowMultipart(fields [][2]string) ([]byte, string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return nil, "", &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation, Message: "encoding the form"}
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation, Message: "encoding the form"}
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}
