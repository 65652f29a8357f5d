// Package msgkart is the userbatch adapter for the Msgkart business API: it
// enables and disables users and reads their status.
//
// Msgkart takes its credential pair, apikey and the caller's email, in the
// query string, so the request URL is a secret: no error, reply or message
// from this package holds the URL or the key.
package msgkart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
)

// Config configures one msgkart target.
type Config struct {
	// BaseURL is everything before /api/v1/..., e.g.
	// https://alb-backend.msgkart.com; a path prefix is kept.
	BaseURL string
	// APIKey is the account's API key (config key apikey). Secret.
	APIKey string
	// Email is the calling account's email (config key email), used for rows
	// that carry none. It may be empty when every row has its own.
	Email string
	// Client sends the requests (nil: a default client). A copy that does
	// not follow redirects is used: see httpcall.NoRedirects.
	Client *http.Client
	// Now is the clock for Retry-After dates; nil means time.Now.
	Now func() time.Time
}

// Client is a msgkart target. It implements batch.Adapter and batch.Reader
// and is safe for concurrent use.
type Client struct {
	base   string
	apiKey string
	email  string
	client *http.Client
	now    func() time.Time
}

// New checks cfg and returns a Client. It fails when base_url or apikey is
// missing or base_url is not an absolute http(s) URL. An empty email is
// accepted: rows may carry their own.
func New(cfg Config) (*Client, error) {
	if err := httpcall.CheckBaseURL(cfg.BaseURL); err != nil {
		return nil, fmt.Errorf("msgkart: %w", err)
	}
	if cfg.APIKey == "" {
		return nil, errors.New("msgkart: apikey is required")
	}
	return &Client{base: cfg.BaseURL, apiKey: cfg.APIKey, email: cfg.Email,
		client: httpcall.NoRedirects(cfg.Client), now: httpcall.Clock(cfg.Now)}, nil
}

// Supports reports true for disable and enable, the only changes msgkart has.
func (c *Client) Supports(a batch.Action) bool { return a == batch.Disable || a == batch.Enable }

// Idempotent reports true for every supported action: enable and disable set
// an explicit state, and msgkart answers a repeat with 200.
func (c *Client) Idempotent(a batch.Action) bool { return c.Supports(a) }

// Apply POSTs op's enable or disable once. Any 2xx is success; msgkart never
// says "already", so Reply.Already is always false (a Read tells that).
// Errors are *batch.Error as classify describes; an op with no email (neither
// the row's email column nor the target's) or an unsupported action is Permanent validation
// and is not sent.
func (c *Client) Apply(ctx context.Context, op batch.Op) (batch.Reply, error) {
	verb, err := verbFor(op.Action)
	if err != nil {
		return batch.Reply{}, err
	}
	resp, body, err := c.call(ctx, http.MethodPost, op, verb)
	if err != nil {
		return batch.Reply{}, err
	}
	return batch.Reply{HTTPStatus: resp.StatusCode, Message: httpcall.SafeMessage(messageOf(body), c.apiKey)}, nil
}

// Read GETs op's user status once. InState is true when the status is
// Disabled and op disables, or is anything else and op enables. Errors are
// *batch.Error as for Apply; an answer without a userStatus is Permanent
// bad_response.
func (c *Client) Read(ctx context.Context, op batch.Op) (batch.State, error) {
	if _, err := verbFor(op.Action); err != nil {
		return batch.State{}, err
	}
	resp, body, err := c.call(ctx, http.MethodGet, op, verbStatus)
	if err != nil {
		return batch.State{}, err
	}
	var st statusResponse
	if json.Unmarshal(body, &st) != nil || st.UserStatus == "" {
		return batch.State{}, &batch.Error{Kind: batch.Permanent, Code: batch.CodeBadResponse,
			HTTPStatus: resp.StatusCode, Message: "status answer without userStatus: " + httpcall.SafeSnippet(body, c.apiKey),
			Fault: batch.FaultForeign}
	}
	// Compared without case: a respelled "disabled" taken for an enabled
	// user would skip an enable that is needed.
	disabled := strings.EqualFold(st.UserStatus, statusDisabled)
	return batch.State{
		InState:    disabled == (op.Action == batch.Disable),
		HTTPStatus: resp.StatusCode,
		Current:    "userStatus=" + httpcall.SafeMessage(st.UserStatus, c.apiKey),
	}, nil
}

// verbFor maps a supported action to its path verb.
func verbFor(a batch.Action) (string, error) {
	switch a {
	case batch.Disable:
		return verbDisable, nil
	case batch.Enable:
		return verbEnable, nil
	}
	return "", &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation,
		Message: fmt.Sprintf("msgkart cannot %s (supported: disable, enable)", a)}
}

// call sends one request for op's user and classifies the answer. It returns
// the response only when classify called it a success.
func (c *Client) call(ctx context.Context, method string, op batch.Op, verb string) (*http.Response, []byte, error) {
	req, err := c.request(ctx, method, op, verb)
	if err != nil {
		return nil, nil, err
	}
	resp, body, err := httpcall.Do(c.client, req)
	if err != nil {
		return nil, nil, c.scrub(err)
	}
	// Redact the whole body before anything reads it; classify quotes it
	// through httpcall.SafeMessage and SafeSnippet too, which redact before
	// cutting.
	body = []byte(c.redact(string(body)))
	if berr := classify(resp, body, c.now(), c.apiKey); berr != nil {
		return nil, nil, c.scrub(berr)
	}
	return resp, body, nil
}

// request builds base_url + /api/v1/business/user/{userId}/{verb}?apikey=&email=
// with no body. The query is added only after the URL was parsed, so no
// parse error can quote the key.
func (c *Client) request(ctx context.Context, method string, op batch.Op, verb string) (*http.Request, error) {
	email := op.Cell(ColEmail)
	if email == "" {
		email = c.email
	}
	if email == "" {
		return nil, &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation,
			Message: "no email: set email on the target or in the row"}
	}
	if op.User == "" {
		return nil, &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation, Message: "empty user id"}
	}
	u, err := httpcall.URL(c.base, userPath+httpcall.Segment(op.User)+"/"+verb)
	if err != nil {
		return nil, &batch.Error{Kind: batch.Permanent, Code: httpcall.CodeRequest, Message: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		// Not err itself: its text would repeat the URL, base_url included.
		return nil, &batch.Error{Kind: batch.Permanent, Code: httpcall.CodeRequest, Message: "building the request for base_url"}
	}
	// url.Values escapes '+' and '@', so "a+b@example.com" does not arrive as "a b@...".
	req.URL.RawQuery = url.Values{paramAPIKey: {c.apiKey}, paramEmail: {email}}.Encode()
	req.Header.Set("Accept", "application/json")
	return req, nil
}
