package scim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
)

// Features is what a provider's /ServiceProviderConfig says it supports
// (RFC 7643 §5). A feature it does not mention is taken as unsupported.
type Features struct {
	// Patch: writes are PATCH; without it, a PUT of the whole resource.
	Patch bool
	// ETag: writes carry If-Match with the version read.
	ETag bool
	// Filter: "userName:" cells can be looked up.
	Filter bool
	// MaxResults is the provider's cap on a query's results (0: not said).
	MaxResults int
	// Bulk is reported for the log; the adapter does not use /Bulk.
	Bulk bool
}

// String is a one-line summary for a log line, e.g.
// "patch=true etag=true filter=true maxResults=100 bulk=false".
func (f Features) String() string {
	return fmt.Sprintf("patch=%t etag=%t filter=%t maxResults=%d bulk=%t", f.Patch, f.ETag, f.Filter, f.MaxResults, f.Bulk)
}

// discovery runs GET /ServiceProviderConfig once per Client. Unlike
// sync.Once it tries again after a failure (a 429, a timeout), and a
// caller waiting for another's attempt gives up with its context.
type discovery struct {
	lock     chan struct{} // a one-slot semaphore: select-able, unlike a mutex
	done     atomic.Bool
	features Features // written once, before done is set
}

// Discover reads the provider's /ServiceProviderConfig once, at the start
// of a run, and says what it supports: an operator sees at once whether
// PATCH and ETags will be used.
func (c *Client) Discover(ctx context.Context) (string, error) {
	f, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	return f.String(), nil
}

var _ batch.Discoverer = (*Client)(nil)

// discover reads the provider's /ServiceProviderConfig, on the first call
// that succeeds; later calls return what it found without a request.
// Read and Apply call it. Its errors are *batch.Error, as for Apply; a 404
// is Permanent bad_response, saying base_url is not a SCIM root.
func (c *Client) discover(ctx context.Context) (Features, error) {
	if c.disc.done.Load() {
		return c.disc.features, nil
	}
	select {
	case c.disc.lock <- struct{}{}:
	case <-ctx.Done():
		return Features{}, &batch.Error{Kind: batch.Retryable, Code: batch.CodeTimeout,
			Message: "gave up waiting for /ServiceProviderConfig", Err: ctx.Err()}
	}
	defer func() { <-c.disc.lock }()
	if c.disc.done.Load() { // another caller found it while this one waited
		return c.disc.features, nil
	}
	f, err := c.serviceProviderConfig(ctx)
	if err != nil {
		return Features{}, err
	}
	c.disc.features = f
	c.disc.done.Store(true)
	return f, nil
}

// Features describes what discovery found, for a log line: "" until a
// Discover (or Read, or Apply) has succeeded.
func (c *Client) Features() string {
	if !c.disc.done.Load() {
		return ""
	}
	return c.disc.features.String()
}

func (c *Client) serviceProviderConfig(ctx context.Context) (Features, error) {
	resp, body, err := c.do(ctx, http.MethodGet, "/ServiceProviderConfig", "", nil, "")
	if err != nil {
		return Features{}, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return Features{}, &batch.Error{Kind: batch.Permanent, Code: batch.CodeBadResponse, HTTPStatus: resp.StatusCode,
			Message: "no /ServiceProviderConfig under base_url: it must be the SCIM root, e.g. https://api.example.com/scim/v2",
			Fault:   batch.FaultForeign}
	}
	if err := c.classify(resp, body); err != nil {
		return Features{}, err
	}
	var spc serviceProviderConfig
	if !httpcall.JSONMedia(resp.Header.Get("Content-Type")) || json.Unmarshal(body, &spc) != nil {
		return Features{}, c.notSCIM(resp, "/ServiceProviderConfig is not a SCIM ServiceProviderConfig: ", body)
	}
	return Features{
		Patch:      bool(spc.Patch.Supported),
		ETag:       bool(spc.ETag.Supported),
		Filter:     bool(spc.Filter.Supported),
		MaxResults: spc.Filter.MaxResults,
		Bulk:       bool(spc.Bulk.Supported),
	}, nil
}
