// Package epixel is the adapter for Epixel MLM Software's user API: block
// and unblock a user, upgrade and downgrade a user's role.
//
// Every call is a POST of form fields (multipart, as the vendor's samples
// send them) to a path under the customer's base_url, with the `apikey`
// header and a bearer token. All four actions set an explicit state, so they
// are idempotent and safe to resend. Epixel has no endpoint that reads
// another user's state, so Client is not a batch.Reader.
package epixel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
)

// Config configures a Client. BaseURL, APIKey and Token are required.
type Config struct {
	// BaseURL is everything before the endpoint path, e.g.
	// https://shop.example.com/api/v2. A path prefix is kept.
	BaseURL string
	// APIKey is sent as the `apikey` header.
	APIKey string
	// Token is sent as `Authorization: Bearer <Token>`.
	Token string
	// Client sends the requests; nil means a client with no timeout of its
	// own, since the caller bounds every call with its context.
	Client *http.Client
	// Now is the clock for Retry-After dates; nil means time.Now.
	Now func() time.Time
}

// Client applies operations to one epixel target. It is safe for concurrent
// use.
type Client struct {
	form   form // multipart framing, made once
	base   string
	apiKey string
	token  string
	bearer string            // "Bearer " + token
	urls   map[string]string // each endpoint's URL, made once (README "Performance")
	http   *http.Client
	now    func() time.Time
}

// New checks cfg and returns a Client. A missing or unusable setting is an
// error naming its config key (base_url, apikey, token); the error never
// holds a credential.
func New(cfg Config) (*Client, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, fmt.Errorf("epixel: %w", err)
	}
	return &Client{base: cfg.BaseURL, apiKey: cfg.APIKey, token: cfg.Token, bearer: "Bearer " + cfg.Token,
		urls: endpointURLs(cfg.BaseURL), http: httpcall.NoRedirects(cfg.Client), now: httpcall.Clock(cfg.Now), form: newForm()}, nil
}

// endpointURLs joins base_url and each endpoint path once, rather than
// parsing and printing a URL for every request. A path base_url cannot
// take is left out: newRequest then reports it per row, as it was.
func endpointURLs(base string) map[string]string {
	urls := map[string]string{}
	for _, p := range []string{pathBlock, pathUnblock, pathUpgrade, pathDowngrade} {
		if u, err := httpcall.URL(base, p); err == nil {
			urls[p] = u.String()
		}
	}
	return urls
}

func checkConfig(cfg Config) error {
	if err := httpcall.CheckBaseURL(cfg.BaseURL); err != nil {
		return err
	}
	switch {
	case cfg.APIKey == "":
		return errors.New("apikey is required")
	case cfg.Token == "":
		return errors.New("token is required")
	}
	return nil
}

// Supports reports whether epixel can perform a: disable, enable,
// upgrade-role and downgrade-role. toggle-status is not supported.
func (c *Client) Supports(a batch.Action) bool {
	switch a {
	case batch.Disable, batch.Enable, batch.UpgradeRole, batch.DowngradeRole:
		return true
	}
	return false
}

// Idempotent reports true for every supported action: each names the state
// it wants (blocked, unblocked, a role), and a repeat is answered 200 or
// with an "already" 403.
func (c *Client) Idempotent(a batch.Action) bool { return c.Supports(a) }

// Apply sends op once. It returns a Reply for a 2xx carrying epixel's
// success envelope (applied) and for a 403 saying the user already holds the
// role asked for (Already); otherwise a *batch.Error as classify describes. A
// 2xx whose body is not the envelope (a captive portal, a misrouted proxy) is
// Ambiguous bad_response: the change may or may not have been made.
//
// A downgrade with block_user that gets an "already" answer was not carried
// out at all, block included: Apply then sends POST /block/user/ and returns
// an applied Reply ("role already right, user blocked"), or the block's error.
//
// An op epixel cannot express (an unsupported action, a role the endpoint
// does not take) is a Permanent CodeValidation error and is not sent.
func (c *Client) Apply(ctx context.Context, op batch.Op) (batch.Reply, error) {
	reply, err := c.send(ctx, op)
	if err != nil || !reply.Already || op.Action != batch.DowngradeRole || !op.Flag(ColBlockUser) {
		return reply, err
	}
	return c.blockAfterAlready(ctx, op)
}

// blockAfterAlready sends the block that an "already" downgrade skipped.
func (c *Client) blockAfterAlready(ctx context.Context, op batch.Op) (batch.Reply, error) {
	reply, err := c.send(ctx, batch.Op{User: op.User, Action: batch.Disable})
	var berr *batch.Error
	if errors.As(err, &berr) {
		berr.Message = "role already right; blocking the user: " + berr.Message
	}
	if err != nil {
		return batch.Reply{}, err
	}
	return batch.Reply{HTTPStatus: reply.HTTPStatus, Message: MessageBlockedAfterAlready}, nil
}

// MessageBlockedAfterAlready is the Reply.Message of a downgrade with
// block_user whose role was already right, after the block was sent.
const MessageBlockedAfterAlready = "role already right, user blocked"

// send sends op's one request and classifies the answer.
func (c *Client) send(ctx context.Context, op batch.Op) (batch.Reply, error) {
	path, fields, err := request(op)
	if err != nil {
		return batch.Reply{}, err
	}
	req, err := c.newRequest(ctx, path, fields)
	if err != nil {
		return batch.Reply{}, err
	}
	resp, body, err := httpcall.Do(c.http, req)
	if err != nil {
		return batch.Reply{}, err
	}
	return classify(op, resp, body, c.now(), c.apiKey, c.token)
}

// request maps op to its endpoint and form fields. unique_id travels in the
// body, never in the path, so it needs no path escaping.
func request(op batch.Op) (string, []field, error) {
	id := field{fieldUniqueID, op.User}
	switch op.Action {
	case batch.Disable:
		return pathBlock, []field{id}, nil
	case batch.Enable:
		return pathUnblock, []field{id}, nil
	case batch.UpgradeRole:
		return upgradeRequest(op, id)
	case batch.DowngradeRole:
		return downgradeRequest(op, id)
	}
	return "", nil, invalidOp(fmt.Sprintf("epixel does not support %s", op.Action))
}

// upgradeRequest sends api_place_genealogy only for Preferred Customer, where
// it is required; the vendor documents it for that upgrade alone.
func upgradeRequest(op batch.Op, id field) (string, []field, error) {
	role, ok := canonicalRole(op.Role, RoleMember, RolePreferredCustomer)
	if !ok {
		return "", nil, invalidOp(fmt.Sprintf("upgrade-role takes %s or %s, not %q",
			RoleMember, RolePreferredCustomer, op.Role))
	}
	fields := []field{id, {fieldUpgradeTo, role}}
	if role == RolePreferredCustomer {
		fields = append(fields, field{fieldGenealogy, boolField(op.Flag(ColPlaceGenealogy))})
	}
	return pathUpgrade, fields, nil
}

// downgradeRequest always sends api_block_user: the vendor marks it required
// even though its own sample leaves it out.
func downgradeRequest(op batch.Op, id field) (string, []field, error) {
	role, ok := canonicalRole(op.Role, RoleCustomer, RolePreferredCustomer)
	if !ok {
		return "", nil, invalidOp(fmt.Sprintf("downgrade-role takes %s or %s, not %q",
			RoleCustomer, RolePreferredCustomer, op.Role))
	}
	return pathDowngrade, []field{id, {fieldDowngradeTo, role}, {fieldBlockUser, boolField(op.Flag(ColBlockUser))}}, nil
}

// canonicalRole returns the vendor's spelling of role when it is one of allowed.
func canonicalRole(role string, allowed ...string) (string, bool) {
	role = strings.TrimSpace(role)
	for _, a := range allowed {
		if strings.EqualFold(role, a) {
			return a, true
		}
	}
	return "", false
}

func invalidOp(msg string) *batch.Error {
	return &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation, Message: msg}
}

// newRequest builds one POST. Its errors quote neither the URL nor a value:
// base_url may hold credentials.
func (c *Client) newRequest(ctx context.Context, path string, fields []field) (*http.Request, error) {
	u, ok := c.urls[path]
	if !ok {
		_, err := httpcall.URL(c.base, path)
		return nil, &batch.Error{Kind: batch.Permanent, Code: httpcall.CodeRequest, Message: err.Error()}
	}
	body, contentType, err := c.form.encode(fields)
	if err != nil {
		return nil, invalidOp("encoding the form: " + httpcall.SafeMessage(err.Error(), c.apiKey, c.token))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, &batch.Error{Kind: batch.Permanent, Code: httpcall.CodeRequest, Message: "building the request for base_url"}
	}
	// The header's keys are written in canonical form and its values in
	// one slice: Header.Set would canonicalize and allocate each.
	v := []string{c.apiKey, c.bearer, contentType, "application/json"}
	req.Header = http.Header{"Apikey": v[0:1:1], "Authorization": v[1:2:2], "Content-Type": v[2:3:3], "Accept": v[3:4:4]}
	return req, nil
}
