package scim

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/batch"
)

func newHostile(t testing.TB, base string, client *http.Client, secret string) batch.Adapter {
	c, err := New(Config{BaseURL: base, Token: secret, Client: client})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// newDiscovered is newHostile past a provider whose discovery succeeded
// with every feature, so that the suite's hostile answers reach the
// userName lookup, the PATCH and their error paths, not only
// /ServiceProviderConfig and GET /Users/{id}.
func newDiscovered(t testing.TB, base string, client *http.Client, secret string) batch.Adapter {
	inner := client.Transport
	if inner == nil {
		inner = http.DefaultTransport
	}
	return newHostile(t, base, &http.Client{Transport: fullConfig{inner}}, secret)
}

// fullConfig answers GET .../ServiceProviderConfig itself, with patch,
// etag and filter supported, and passes every other request on.
type fullConfig struct{ next http.RoundTripper }

const fullConfigBody = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
"patch":{"supported":true},"etag":{"supported":true},"filter":{"supported":true,"maxResults":100},
"bulk":{"supported":false},"changePassword":{"supported":false},"sort":{"supported":false}}`

func (f fullConfig) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/ServiceProviderConfig") {
		return f.next.RoundTrip(r)
	}
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {mediaSCIM}},
		Body:    io.NopCloser(strings.NewReader(fullConfigBody)),
		Request: r}, nil
}

// TestContentTypeEchoRedacted: a provider that quotes the token in its
// Content-Type (the message names the type it got) must not leak it.
func TestContentTypeEchoRedacted(t *testing.T) {
	srv := httptest.NewServer(scimAnswer(http.StatusOK,
		http.Header{"Content-Type": {"text/html; note=" + goodToken}}, `{"id":"u1","active":true}`))
	t.Cleanup(srv.Close)
	_, err := newClient(t, srv.URL, goodToken).Read(context.Background(), op("u1", batch.Disable))
	berr := mustError(t, err, batch.Permanent, batch.CodeBadResponse)
	if frag := adaptertest.Fragment(berr.Message, goodToken); frag != "" || !strings.Contains(berr.Message, "text/html") {
		t.Errorf("message %q: want the type named and no piece of the token (found %q)", berr.Message, frag)
	}
}
