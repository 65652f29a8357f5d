// Package scim is the userbatch adapter for any SCIM 2.0 service provider
// (RFC 7643, RFC 7644): Slack, Zoom, Atlassian, AWS IAM Identity Center,
// PagerDuty and the other apps that Okta or Entra ID provision. It sets a
// User's "active" attribute, so it supports disable and enable only.
//
// A user cell is the SCIM id, or "userName:alice@example.com", found with
// the filter userName eq "...". The adapter discovers what the provider
// supports (GET /ServiceProviderConfig) once, on first use. Writes are
// PATCH /Users/{id} with one replace operation on "active", or a PUT of the
// resource as read when the provider has no PATCH; either carries If-Match
// when the provider supports ETags, so a user that changed since it was
// read is read again and decided again instead of being overwritten.
//
// What active=false means is the provider's choice (RFC 7643 §4.1.1):
// PagerDuty deletes the user, Atlassian hides inactive users from GET
// /Users. Config.HidesInactive is for the second kind.
package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
)

// CodeAmbiguous is the error_code of a row whose userName matches more
// than one user: the adapter never guesses which one was meant.
const CodeAmbiguous = "ambiguous"

// CurrentHidden is State.Current for a user that a provider which hides
// inactive users (Config.HidesInactive) does not show: most likely
// inactive, possibly missing. A report reading it back should call it
// unreadable, not drift.
const CurrentHidden = "hidden (the provider does not show inactive users)"

// Config configures a Client for one SCIM service provider.
type Config struct {
	// BaseURL is the SCIM root, e.g. https://api.example.com/scim/v2: the
	// adapter appends /ServiceProviderConfig and /Users.
	BaseURL string
	// Token is the bearer token the provider issued for SCIM.
	Token string
	// HidesInactive says the provider answers 404 for inactive users, as
	// Atlassian does. A read that finds no user by id then reports
	// CurrentHidden (not in state) instead of failing, and the write,
	// which such providers accept, decides: 2xx or 404 not_found.
	HidesInactive bool
	// Client sends the requests; nil means a default client.
	Client *http.Client
	// Now reads the clock for Retry-After dates and X-Rate-Limit-Reset;
	// nil means time.Now.
	Now func() time.Time
}

// Client disables and enables the users of one SCIM service provider. It
// is safe for concurrent use.
type Client struct {
	base          string
	token         string
	hidesInactive bool
	client        *http.Client
	now           func() time.Time
	disc          discovery
	reads         memo
}

var (
	_ batch.Adapter = (*Client)(nil)
	_ batch.Reader  = (*Client)(nil)
)

// New checks cfg and returns a Client. It fails when base_url is missing or
// not an absolute http(s) URL, or when token is missing. It sends nothing:
// discovery happens on first use (or Discover).
func New(cfg Config) (*Client, error) {
	if err := httpcall.CheckBaseURL(cfg.BaseURL); err != nil {
		return nil, fmt.Errorf("scim: %w", err)
	}
	if cfg.Token == "" {
		return nil, errors.New("scim: token is required")
	}
	c := &Client{
		base:          cfg.BaseURL,
		token:         cfg.Token,
		hidesInactive: cfg.HidesInactive,
		client:        httpcall.NoRedirects(cfg.Client),
		now:           httpcall.Clock(cfg.Now),
		disc:          discovery{lock: make(chan struct{}, 1)},
		reads:         memo{users: map[string]current{}},
	}
	return c, nil
}

// Supports reports true for batch.Disable and batch.Enable: roles are
// provider-specific in SCIM.
func (c *Client) Supports(a batch.Action) bool { return a == batch.Disable || a == batch.Enable }

// Idempotent reports true for the supported actions: a write sets
// "active" to the value it names.
func (c *Client) Idempotent(a batch.Action) bool { return c.Supports(a) }

// Read asks whether op.User is already active (enable) or inactive
// (disable): one GET /Users/{id}, or one filtered GET /Users for a
// userName, after discovery on first use. What it read is kept for the
// Apply that follows, which then writes under If-Match without reading
// again. Errors are *batch.Error as for Apply; a userName matching several
// users is Permanent CodeAmbiguous, and an answer without a boolean
// "active" is Permanent bad_response.
func (c *Client) Read(ctx context.Context, op batch.Op) (batch.State, error) {
	f, err := c.prepare(ctx, op)
	if err != nil {
		return batch.State{}, err
	}
	cur, err := c.fetch(ctx, f, op)
	if c.hidden(err) {
		c.reads.forget(op.User)
		return batch.State{HTTPStatus: http.StatusNotFound, Current: CurrentHidden}, nil
	}
	if err != nil {
		return batch.State{}, hint(op, err)
	}
	st := cur.state(op)
	if st.InState {
		c.reads.forget(op.User)
	} else {
		c.reads.remember(op.User, cur)
	}
	return st, nil
}

// Apply sets op.User's "active" attribute with one PATCH (or PUT, for a
// provider without PATCH). It writes under If-Match the version its Read
// saw; without one it reads first when it must (a userName to resolve, a
// PUT to build), and otherwise sends the PATCH unconditionally, which is
// safe because it names the state it sets. A 412 (changed since read) is
// read again and decided again: Reply.Already when the user now is in the
// requested state, else one more write under the new version; a second 412
// is Permanent conflict. Errors are *batch.Error: Permanent for refused
// credentials (unauthorized), an unknown user (not_found), a userName
// matching several users (CodeAmbiguous), 400 (validation) and 409
// (conflict); Retryable for 429, with Retry-After or X-Rate-Limit-Reset;
// Ambiguous for 5xx, timeouts and dropped connections. No error holds the
// token.
func (c *Client) Apply(ctx context.Context, op batch.Op) (batch.Reply, error) {
	f, err := c.prepare(ctx, op)
	if err != nil {
		return batch.Reply{}, err
	}
	cur, err := c.before(ctx, f, op)
	if err != nil {
		return batch.Reply{}, c.settle(op, hint(op, err))
	}
	if cur.known && cur.state(op).InState {
		c.reads.forget(op.User)
		return batch.Reply{Already: true, HTTPStatus: cur.status, Message: "already " + cur.describe()}, nil
	}
	reply, err := c.write(ctx, f, op, cur)
	if errors.Is(err, errPrecondition) {
		return c.redecide(ctx, f, op)
	}
	if err != nil {
		return batch.Reply{}, c.settle(op, hint(op, err))
	}
	c.reads.forget(op.User)
	return reply, nil
}

// prepare checks op and makes sure discovery has run.
func (c *Client) prepare(ctx context.Context, op batch.Op) (Features, error) {
	if !c.Supports(op.Action) {
		return Features{}, &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation,
			Message: fmt.Sprintf("scim does not support %s (supported: %s, %s)", op.Action, batch.Disable, batch.Enable)}
	}
	if name, ok := userName(op.User); (ok && name == "") || op.User == "" {
		return Features{}, &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation,
			Message: "the user cell is empty: give a SCIM id or userName:<name>"}
	}
	return c.discover(ctx)
}

// before finds the user's id and version for a write: what Read kept, or a
// fresh read when the write needs one.
func (c *Client) before(ctx context.Context, f Features, op batch.Op) (current, error) {
	if cur, ok := c.reads.recall(op.User); ok && (f.Patch || f.ETag) {
		// A PUT without ETags has no guard against an old copy: it reads
		// afresh below.
		return cur, nil
	}
	if _, byName := userName(op.User); byName || !f.Patch {
		return c.fetch(ctx, f, op)
	}
	return current{id: op.User}, nil
}

// redecide handles a 412: the user changed since it was read.
func (c *Client) redecide(ctx context.Context, f Features, op batch.Op) (batch.Reply, error) {
	cur, err := c.fetch(ctx, f, op)
	if err != nil {
		return batch.Reply{}, c.settle(op, hint(op, err))
	}
	if cur.state(op).InState {
		c.reads.forget(op.User)
		return batch.Reply{Already: true, HTTPStatus: cur.status,
			Message: "the user changed since it was read and now is " + cur.describe()}, nil
	}
	c.reads.remember(op.User, cur)
	reply, err := c.write(ctx, f, op, cur)
	if errors.Is(err, errPrecondition) {
		var berr *batch.Error
		errors.As(err, &berr)
		berr.Message = "the user changed twice while being written (412 twice): check it by hand"
		err = berr
	}
	if err != nil {
		return batch.Reply{}, c.settle(op, hint(op, err))
	}
	c.reads.forget(op.User)
	return reply, nil
}

// settle forgets the read kept for op once its outcome is decided. After a
// retryable or ambiguous error it is kept: a resend then goes under the
// same If-Match, so a first attempt that did land is found (412), read
// again, and not written twice.
func (c *Client) settle(op batch.Op, err error) error {
	var berr *batch.Error
	if !errors.As(err, &berr) || berr.Kind == batch.Permanent {
		c.reads.forget(op.User)
	}
	return err
}

// hidden reports whether err is a 404 on GET /Users/{id} at a provider
// that hides inactive users.
func (c *Client) hidden(err error) bool {
	var berr *batch.Error
	return c.hidesInactive && errors.As(err, &berr) && berr.Code == batch.CodeNotFound && berr.HTTPStatus == http.StatusNotFound
}

// errMaybeHidden marks a userName that no user has at a provider that
// hides inactive users (Config.HidesInactive): the user may be inactive.
var errMaybeHidden = errors.New("the provider hides inactive users")

// hint adds, to a userName not found at a provider that hides inactive
// users (and only at one), that an inactive user is not found either.
func hint(op batch.Op, err error) error {
	var berr *batch.Error
	if !errors.Is(err, errMaybeHidden) || !errors.As(err, &berr) || berr.Code != batch.CodeNotFound {
		return err
	}
	if op.Action == batch.Disable {
		berr.Message += " (this provider hides inactive users (hides_inactive: true): a user already inactive is not found)"
	} else {
		berr.Message += " (this provider hides inactive users (hides_inactive: true): an inactive user is not found by userName; give its SCIM id)"
	}
	berr.Hint += "; or the user is inactive, which this provider hides (to enable one, give its SCIM id)"
	return err
}

// current is a user as read: enough to decide and to write.
type current struct {
	id      string
	version string // meta.version, or the ETag header; "" if none
	active  bool
	known   bool   // false for a write sent without reading
	status  int    // the HTTP status of the read
	raw     []byte // the resource as read, kept only for a PUT
	names   []string
}

// state is what a read tells: whether op's user is in state, and every
// name the user goes by (a userName lookup resolves to the id, an id to
// the userName).
func (cur current) state(op batch.Op) batch.State {
	return batch.State{InState: cur.active == (op.Action == batch.Enable), HTTPStatus: cur.status, Current: cur.describe(),
		Identities: cur.names}
}

func (cur current) describe() string {
	if cur.active {
		return "active"
	}
	return "inactive (active=false)"
}

// fetch reads op's user: by id, or by userName through a filter.
func (c *Client) fetch(ctx context.Context, f Features, op batch.Op) (current, error) {
	if name, ok := userName(op.User); ok {
		return c.lookup(ctx, f, name)
	}
	resp, body, err := c.do(ctx, http.MethodGet, userPath(op.User), "", nil, "")
	if err != nil {
		return current{}, err
	}
	if err := c.classify(resp, body); err != nil {
		return current{}, err
	}
	cur, err := c.decodeUser(resp, body, f)
	if err != nil {
		return current{}, err
	}
	if cur.version == "" {
		cur.version = resp.Header.Get("ETag")
	}
	return cur, nil
}

// lookup finds the one user whose userName is name (RFC 7644 §3.4.2.2).
func (c *Client) lookup(ctx context.Context, f Features, name string) (current, error) {
	if !f.Filter {
		return current{}, &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation,
			Message: "the provider does not support filters (ServiceProviderConfig): give SCIM ids, not userName:"}
	}
	resp, body, err := c.do(ctx, http.MethodGet, "/Users", filterQuery(name), nil, "")
	if err != nil {
		return current{}, err
	}
	if err := c.classify(resp, body); err != nil {
		return current{}, err
	}
	var list listResponse
	if !httpcall.JSONMedia(resp.Header.Get("Content-Type")) || json.Unmarshal(body, &list) != nil {
		return current{}, c.notSCIM(resp, "answer is not a SCIM ListResponse: ", body)
	}
	switch n := max(list.TotalResults, len(list.Resources)); {
	case n == 0:
		// No HTTP status: the search answered 200; nothing said 404.
		e := &batch.Error{Kind: batch.Permanent, Code: batch.CodeNotFound,
			Message: fmt.Sprintf("no user has the userName %q (the search found none)", name),
			Hint:    "no user has this userName at the provider: check the userName, or give the SCIM id, then re-run failed.csv"}
		if c.hidesInactive {
			e.Err = errMaybeHidden
		}
		return current{}, e
	case n > 1:
		return current{}, &batch.Error{Kind: batch.Permanent, Code: CodeAmbiguous, HTTPStatus: resp.StatusCode,
			Message: fmt.Sprintf("%d users match this userName: give the SCIM id instead", n)}
	case len(list.Resources) != 1:
		return current{}, c.badResponse(resp, "totalResults is 1 but no resource came with it: ", body)
	}
	return c.decodeUser(resp, list.Resources[0], f)
}

// write sends the PATCH (or the PUT) that sets op's state.
func (c *Client) write(ctx context.Context, f Features, op batch.Op, cur current) (batch.Reply, error) {
	active := op.Action == batch.Enable
	method := http.MethodPatch
	body, err := json.Marshal(activePatch(active))
	if !f.Patch {
		method = http.MethodPut
		body, err = putBody(cur.raw, active)
	}
	if err != nil {
		return batch.Reply{}, &batch.Error{Kind: batch.Permanent, Code: batch.CodeBadResponse,
			Message: "building the " + method + " body from the user as read: " + err.Error()}
	}
	ifMatch := ""
	if f.ETag {
		ifMatch = cur.version
	}
	resp, respBody, err := c.do(ctx, method, userPath(cur.id), "", body, ifMatch)
	if err != nil {
		return batch.Reply{}, err
	}
	if err := c.classify(resp, respBody); err != nil {
		return batch.Reply{}, err
	}
	return batch.Reply{HTTPStatus: resp.StatusCode}, nil
}

// putBody is the resource as read with "active" set and "meta" dropped:
// meta is read-only (RFC 7643 §3.1) and the version goes in If-Match.
func putBody(raw []byte, active bool) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber() // keep numbers as the provider wrote them
	var res map[string]any
	if err := d.Decode(&res); err != nil {
		return nil, err
	}
	res["active"] = active
	delete(res, "meta")
	return json.Marshal(res)
}

// do sends one request. path is escaped already; query is raw.
func (c *Client) do(ctx context.Context, method, path, query string, body []byte, ifMatch string) (*http.Response, []byte, error) {
	u, err := httpcall.URL(c.base, path)
	if err != nil {
		return nil, nil, &batch.Error{Kind: batch.Permanent, Code: httpcall.CodeRequest, Message: err.Error()}
	}
	u.RawQuery = query
	var rd *bytes.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := newRequest(ctx, method, u.String(), rd)
	if err != nil {
		// Not err itself: its text would repeat the URL.
		return nil, nil, &batch.Error{Kind: batch.Permanent, Code: httpcall.CodeRequest, Message: "building the request for base_url"}
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", mediaSCIM+", application/json")
	if body != nil {
		req.Header.Set("Content-Type", mediaSCIM)
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	return httpcall.Do(c.client, req)
}

// newRequest keeps a nil body nil: a typed nil *bytes.Reader would be sent
// as an empty body with Content-Length 0 on a GET.
func newRequest(ctx context.Context, method, u string, body *bytes.Reader) (*http.Request, error) {
	if body == nil {
		return http.NewRequestWithContext(ctx, method, u, nil)
	}
	return http.NewRequestWithContext(ctx, method, u, body)
}

func userPath(id string) string { return "/Users/" + httpcall.Segment(id) }

// userName returns the name in a "userName:" cell. The prefix is matched
// in any case, as SCIM attribute names are (RFC 7643 §2.1).
func userName(user string) (string, bool) {
	if len(user) < len(userNamePrefix) || !strings.EqualFold(user[:len(userNamePrefix)], userNamePrefix) {
		return "", false
	}
	return user[len(userNamePrefix):], true
}

// filterQuery is the query string for userName eq "name": the value is a
// JSON string in the filter grammar (RFC 7644 §3.4.2.2), so '"' and '\'
// are escaped, and the whole is URL-encoded with %20 for spaces, which
// every server decodes (not all read '+' as a space).
func filterQuery(name string) string {
	quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name)
	return "filter=" + strings.ReplaceAll(url.QueryEscape(`userName eq "`+quoted+`"`), "+", "%20")
}

// memo keeps the last read of each user until the write it prepared is
// settled. Rows for one user run one at a time, so an entry is used by the
// row that made it. It holds at most memoCap users: reads that no write
// follows (a dry run) must not grow it without end; losing an entry only
// costs a write without If-Match, or a read.
type memo struct {
	mu    sync.Mutex
	users map[string]current
}

const memoCap = 4096

func (m *memo) remember(user string, cur current) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[user]; !ok && len(m.users) >= memoCap {
		for k := range m.users { // any one: map order is random
			delete(m.users, k)
			break
		}
	}
	m.users[user] = cur
}

func (m *memo) recall(user string) (current, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.users[user]
	return cur, ok
}

func (m *memo) forget(user string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.users, user)
}

// Identity is how a SCIM provider names users: the id, or userName: and the
// userName, which RFC 7643 §4.1.1 makes case-insensitive.
var Identity = batch.PrefixIdentity{Prefixes: []string{"userName:"}, FoldCase: true}

// Identity returns SCIM's identity rules.
func (c *Client) Identity() batch.Identity { return Identity }
