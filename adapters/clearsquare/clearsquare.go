// Package clearsquare is the userbatch adapter for the ClearSquare admin API,
// whose only user operation, POST /api/users/manage-status, toggles a user
// between active and inactive.
//
// Because the request carries no desired state, sending it twice undoes it:
// the adapter reports ToggleStatus as not idempotent, so the pipeline never
// resends a call that may have reached the vendor. Nothing reads a user's
// state back, so Client is not a batch.Reader.
package clearsquare

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
)

// Config configures a Client for one ClearSquare site.
type Config struct {
	// BaseURL is everything before /api/users/manage-status, e.g.
	// https://admin.example.com; a path prefix is kept.
	BaseURL string
	// Token is the admin JWT, sent both as a bearer token and in the body.
	Token string
	// Client sends the requests; nil means a default client.
	Client *http.Client
	// Now reads the clock for Retry-After dates; nil means time.Now.
	Now func() time.Time
}

// Client applies toggle-status operations to one ClearSquare site. It is
// safe for concurrent use.
type Client struct {
	base   string
	token  string
	client *http.Client
	now    func() time.Time
}

// New checks cfg and returns a Client. It fails when base_url is missing or
// not an absolute http(s) URL, or when token is missing.
func New(cfg Config) (*Client, error) {
	if err := httpcall.CheckBaseURL(cfg.BaseURL); err != nil {
		return nil, fmt.Errorf("clearsquare: %w", err)
	}
	if cfg.Token == "" {
		return nil, errors.New("clearsquare: token is required")
	}
	return &Client{base: cfg.BaseURL, token: cfg.Token, client: httpcall.NoRedirects(cfg.Client), now: httpcall.Clock(cfg.Now)}, nil
}

// Supports reports true for batch.ToggleStatus only.
func (c *Client) Supports(a batch.Action) bool { return a == batch.ToggleStatus }

// Idempotent is always false: a repeated toggle reverses the first one.
func (c *Client) Idempotent(batch.Action) bool { return false }

// Apply toggles op.User's status once. It returns an *batch.Error when the
// vendor refuses (Permanent; a 401 means a bad token or an unknown user, which
// the vendor does not tell apart), rate-limits (Retryable), or may have acted
// without saying so (Ambiguous: timeouts, drops, 5xx).
func (c *Client) Apply(ctx context.Context, op batch.Op) (batch.Reply, error) {
	if !c.Supports(op.Action) {
		return batch.Reply{}, &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation,
			Message: fmt.Sprintf("clearsquare does not support %s (supported: %s)", op.Action, batch.ToggleStatus)}
	}
	req, err := c.request(ctx, op.User)
	if err != nil {
		return batch.Reply{}, err
	}
	resp, body, err := httpcall.Do(c.client, req)
	if err != nil {
		return batch.Reply{}, err
	}
	return classify(resp, body, c.now(), c.token)
}

func (c *Client) request(ctx context.Context, user string) (*http.Request, error) {
	u, err := httpcall.URL(c.base, manageStatusPath)
	if err != nil {
		return nil, &batch.Error{Kind: batch.Permanent, Code: httpcall.CodeRequest, Message: err.Error()}
	}
	body, err := json.Marshal(manageStatusRequest{ID: user, Token: c.token})
	if err != nil {
		return nil, &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation, Message: "encoding the request: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		// The URL is not in the message: it came from the config, and the
		// config's base_url is all it could show.
		return nil, &batch.Error{Kind: batch.Permanent, Code: httpcall.CodeRequest, Message: "building the request for base_url"}
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return req, nil
}
