// Package kii is the userbatch adapter for Kii Cloud's user status API:
// GET and PUT /api/apps/{appID}/users/{user}/status, where {user} is a user
// id or an account address (LOGIN_NAME:alice, EMAIL:a@example.com,
// PHONE:+81...).
//
// A PUT sets an explicit state, so disable and enable are idempotent, and
// Client is a batch.Reader: a run can read a user's state before writing.
package kii

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
)

// Config configures a Client for one Kii app.
type Config struct {
	// BaseURL is everything before /api/apps/..., e.g. https://api.kii.com
	// or https://api-jp.kii.com; a path prefix is kept.
	BaseURL string
	// AppID is the Kii application id, the first path segment after /apps/.
	AppID string
	// Token is an app admin access token, sent as a bearer token.
	Token string
	// Client sends the requests; nil means a default client.
	Client *http.Client
	// Now reads the clock for Retry-After dates; nil means time.Now.
	Now func() time.Time
}

// Client disables and enables users of one Kii app. It is safe for
// concurrent use.
type Client struct {
	base   string
	appID  string
	token  string
	client *http.Client
	now    func() time.Time
}

// New checks cfg and returns a Client. It fails when base_url is missing or
// not an absolute http(s) URL, or when app_id or token is missing.
func New(cfg Config) (*Client, error) {
	if err := httpcall.CheckBaseURL(cfg.BaseURL); err != nil {
		return nil, fmt.Errorf("kii: %w", err)
	}
	if cfg.AppID == "" {
		return nil, errors.New("kii: app_id is required")
	}
	if cfg.Token == "" {
		return nil, errors.New("kii: token is required")
	}
	return &Client{base: cfg.BaseURL, appID: cfg.AppID, token: cfg.Token,
		client: httpcall.NoRedirects(cfg.Client), now: httpcall.Clock(cfg.Now)}, nil
}

// Supports reports true for batch.Disable and batch.Enable.
func (c *Client) Supports(a batch.Action) bool { return a == batch.Disable || a == batch.Enable }

// Idempotent reports true for the supported actions: a PUT sets the state
// it names, so sending it again changes nothing.
func (c *Client) Idempotent(a batch.Action) bool { return c.Supports(a) }

// Apply sets op.User's status with one PUT. Kii answers 204 whether or not
// the user was already in that state, so the Reply never says Already; Read
// first to learn that. Errors are *batch.Error: Permanent for an unknown user
// or app (not_found), refused credentials (unauthorized) and rejected input
// (validation); Retryable for 429; Ambiguous for 5xx, timeouts and drops.
func (c *Client) Apply(ctx context.Context, op batch.Op) (batch.Reply, error) {
	if err := c.check(op); err != nil {
		return batch.Reply{}, err
	}
	body, err := json.Marshal(statusUpdateRequest{Disabled: op.Action == batch.Disable})
	if err != nil {
		return batch.Reply{}, &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation, Message: "encoding the request: " + err.Error()}
	}
	resp, respBody, err := c.do(ctx, http.MethodPut, op.User, bytes.NewReader(body))
	if err != nil {
		return batch.Reply{}, err
	}
	if err := c.classify(resp, respBody); err != nil {
		return batch.Reply{}, err
	}
	return batch.Reply{HTTPStatus: resp.StatusCode}, nil
}

// Read asks whether op.User is already in the state op asks for, with one
// GET. Its errors are those of Apply; an answer without a boolean
// "disabled" is a Permanent bad_response.
func (c *Client) Read(ctx context.Context, op batch.Op) (batch.State, error) {
	if err := c.check(op); err != nil {
		return batch.State{}, err
	}
	resp, body, err := c.do(ctx, http.MethodGet, op.User, nil)
	if err != nil {
		return batch.State{}, err
	}
	if err := c.classify(resp, body); err != nil {
		return batch.State{}, err
	}
	disabled, err := c.decodeStatus(resp, body)
	if err != nil {
		return batch.State{}, err
	}
	current := "enabled"
	if disabled {
		current = "disabled"
	}
	return batch.State{InState: disabled == (op.Action == batch.Disable), HTTPStatus: resp.StatusCode, Current: current}, nil
}

func (c *Client) check(op batch.Op) error {
	if !c.Supports(op.Action) {
		return &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation,
			Message: fmt.Sprintf("kii does not support %s (supported: %s, %s)", op.Action, batch.Disable, batch.Enable)}
	}
	return nil
}

// do sends one request for user's status resource. The app id and the user
// are escaped as one segment each, so "PHONE:+81..." keeps its '+' and a '/'
// cannot reach another path.
func (c *Client) do(ctx context.Context, method, user string, body io.Reader) (*http.Response, []byte, error) {
	u, err := httpcall.URL(c.base, "/api/apps/"+httpcall.Segment(c.appID)+"/users/"+httpcall.Segment(user)+"/status")
	if err != nil {
		return nil, nil, &batch.Error{Kind: batch.Permanent, Code: httpcall.CodeRequest, Message: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		// Not err itself: its text would repeat the URL.
		return nil, nil, &batch.Error{Kind: batch.Permanent, Code: httpcall.CodeRequest, Message: "building the request for base_url"}
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	// Legacy, and not required with a bearer token, but harmless and it
	// names the app to any proxy that routes on it.
	req.Header.Set("X-Kii-AppID", c.appID)
	if body != nil {
		req.Header.Set("Content-Type", mediaUpdateRequest)
	}
	return httpcall.Do(c.client, req)
}

// Identity is how Kii names users: a bare user id, or an account type and
// address (LOGIN_NAME:, EMAIL:, PHONE:); login names and emails ignore case.
var Identity = batch.PrefixIdentity{Prefixes: []string{"LOGIN_NAME:", "EMAIL:", "PHONE:"}, FoldCase: true}

// Identity returns Kii's identity rules.
func (c *Client) Identity() batch.Identity { return Identity }
