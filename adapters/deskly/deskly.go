// Package deskly is the adapter of Deskly, a helpdesk whose agents are
// disabled with a handover: their open tickets go to the agent the row's
// handover_to column names. No operator target uses it, and the registry
// does not list it: it proves that a vendor with a column of its own is one
// folder and one registry entry (README "Layout"), and the test that
// registers it drives it through validate and a run.
package deskly

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

// Config is a Deskly target's settings.
type Config struct {
	BaseURL string
	Token   string
	Client  *http.Client
	// Now is the clock Retry-After dates are read against (nil: time.Now).
	Now func() time.Time
}

// Client sends one agent change per call to Deskly's admin API.
type Client struct {
	base, token string
	http        *http.Client
	now         func() time.Time
}

var _ batch.Adapter = (*Client)(nil)

// New checks cfg and returns a client.
func New(cfg Config) (*Client, error) {
	if err := httpcall.CheckBaseURL(cfg.BaseURL); err != nil {
		return nil, fmt.Errorf("deskly: %w", err)
	}
	if cfg.Token == "" {
		return nil, errors.New("deskly: token is required")
	}
	return &Client{base: cfg.BaseURL, token: cfg.Token, http: httpcall.NoRedirects(cfg.Client), now: httpcall.Clock(cfg.Now)}, nil
}

// Supports is true for disable and enable.
func (c *Client) Supports(a batch.Action) bool { return a == batch.Disable || a == batch.Enable }

// Idempotent is true: both set a state.
func (c *Client) Idempotent(batch.Action) bool { return true }

// Apply POSTs /agents/{id}/disable (with the handover) or /enable once.
// Errors are *batch.Error as classify describes.
func (c *Client) Apply(ctx context.Context, op batch.Op) (batch.Reply, error) {
	if !c.Supports(op.Action) {
		return batch.Reply{}, &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation,
			Message: fmt.Sprintf("deskly does not support %s", op.Action)}
	}
	body, err := json.Marshal(agentChange{HandoverTo: op.Cell(ColHandoverTo)})
	if err != nil {
		return batch.Reply{}, err
	}
	u, err := httpcall.URL(c.base, "/agents/"+httpcall.Segment(op.User)+"/"+string(op.Action))
	if err != nil {
		return batch.Reply{}, &batch.Error{Kind: batch.Permanent, Code: batch.CodeRequest, Message: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return batch.Reply{}, &batch.Error{Kind: batch.Permanent, Code: batch.CodeRequest, Message: "the request could not be built"}
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, answer, err := httpcall.Do(c.http, req)
	if err != nil {
		return batch.Reply{}, err
	}
	return classify(resp, answer, c.now(), c.token)
}

// agentChange is the body of a change: the handover, on a disable.
type agentChange struct {
	HandoverTo string `json:"handover_to,omitempty"`
}

// classify turns an answer into a Reply or a *batch.Error: 2xx applied;
// 429 and 5xx as httpcall.Common; 401/403 unauthorized, 404 not_found,
// 400/422 validation, all Permanent; anything else bad_response.
func classify(resp *http.Response, body []byte, now time.Time, secrets ...string) (batch.Reply, error) {
	if resp.StatusCode/100 == 2 {
		return batch.Reply{HTTPStatus: resp.StatusCode}, nil
	}
	msg := httpcall.SafeSnippet(body, secrets...)
	if err := httpcall.Common(resp, msg, now); err != nil {
		return batch.Reply{}, err
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return batch.Reply{}, httpcall.Permanent(resp.StatusCode, batch.CodeUnauthorized, msg)
	case http.StatusNotFound:
		return batch.Reply{}, httpcall.Permanent(resp.StatusCode, batch.CodeNotFound, msg)
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return batch.Reply{}, httpcall.Permanent(resp.StatusCode, batch.CodeValidation, msg)
	}
	return batch.Reply{}, httpcall.Unexpected(resp, body, secrets...)
}
