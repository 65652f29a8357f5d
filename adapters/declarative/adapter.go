package declarative

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
)

// Settings are a target's settings from targets.yaml, expanded.
type Settings struct {
	BaseURL string
	// Config holds the target's keys the spec reads: apikey, token and the
	// keys under the spec's config.
	Config map[string]string
	// Client sends the requests (nil: a default client); a copy that does
	// not follow redirects is used.
	Client *http.Client
	// Now is the clock for Retry-After dates; nil means time.Now.
	Now func() time.Time
}

// Adapter sends one target's operations as its spec describes. It is safe
// for concurrent use. New returns a *Reader, which also reads state, when
// the spec says how.
type Adapter struct {
	spec    *Spec
	base    string
	config  map[string]string
	secrets []string
	// forms are every secret as sent and as escaped in a query or a path:
	// a body is redacted only when it holds one.
	forms    [][]byte
	client   *http.Client
	now      func() time.Time
	boundary string
	identity batch.Identity
	// cols are the columns each action reads, by name.
	cols map[batch.Action]map[string]*columnSpec
	// colList is cols in name order, checked before every request.
	colList map[batch.Action][]*columnSpec
	// static holds the params that name only config keys (auth headers,
	// mostly), rendered once: they are the same for every row.
	static map[*param]string
}

// Reader is an Adapter whose spec says how to read a user's state.
type Reader struct{ *Adapter }

// New checks s against the spec and returns the target's adapter: a
// *Reader when the spec has a read, else an *Adapter. Its errors name the
// config key at fault and never quote a value.
func New(spec *Spec, s Settings) (batch.Adapter, error) {
	a, err := newAdapter(spec, s)
	if err != nil {
		return nil, err
	}
	if spec.file.Read != nil {
		return &Reader{a}, nil
	}
	return a, nil
}

func newAdapter(spec *Spec, s Settings) (*Adapter, error) {
	if err := httpcall.CheckBaseURL(s.BaseURL); err != nil {
		return nil, fmt.Errorf("%s: %w", spec.file.Vendor, err)
	}
	a := &Adapter{spec: spec, base: s.BaseURL, config: map[string]string{}, client: httpcall.NoRedirects(s.Client),
		now: httpcall.Clock(s.Now), boundary: multipart.NewWriter(io.Discard).Boundary(), identity: spec.Identity(),
		cols: map[batch.Action]map[string]*columnSpec{}, colList: map[batch.Action][]*columnSpec{}}
	for _, k := range slices.Sorted(maps.Keys(spec.file.Config)) {
		ks := spec.file.Config[k]
		v := s.Config[k]
		if v == "" && ks.Required {
			return nil, fmt.Errorf("%s: %s is required%s", spec.file.Vendor, k, helpSuffix(ks.Help))
		}
		a.config[k] = v
		if v != "" && (ks.Secret || k == "apikey" || k == "token") {
			a.secrets = append(a.secrets, v)
			a.forms = append(a.forms, []byte(v), []byte(url.QueryEscape(v)), []byte(url.PathEscape(v)))
		}
	}
	a.static = staticParams(spec, a)
	for name, act := range spec.file.Actions {
		cols := spec.columnsOf(act)
		a.cols[batch.Action(name)] = cols
		for _, c := range slices.Sorted(maps.Keys(cols)) {
			a.colList[batch.Action(name)] = append(a.colList[batch.Action(name)], cols[c])
		}
	}
	return a, nil
}

// staticParams renders, once, every auth param whose value names nothing
// but config keys; a param that cannot be rendered now is left to each row,
// which reports it.
func staticParams(spec *Spec, a *Adapter) map[*param]string {
	out := map[*param]string{}
	auth := &spec.file.Auth
	for _, list := range [][]param{auth.Headers, auth.Query} {
		for i := range list {
			p := &list[i]
			if len(p.When) > 0 || !configOnly(p.Value) {
				continue
			}
			if s, err := p.Value.renderString(&values{a: a}, inHeader); err == nil {
				out[p] = s
			}
		}
	}
	return out
}

func configOnly(t template) bool {
	for _, r := range t.refs() {
		if r.kind != refConfig {
			return false
		}
	}
	return true
}

func helpSuffix(h string) string {
	if h == "" {
		return ""
	}
	return " (" + h + ")"
}

// Spec returns the spec the adapter follows.
func (a *Adapter) Spec() *Spec { return a.spec }

// Supports reports whether the spec describes action x.
func (a *Adapter) Supports(x batch.Action) bool {
	_, ok := a.spec.file.Actions[actionName(x)]
	return ok
}

// Idempotent is what the spec says of the action; an action it lacks is
// not.
func (a *Adapter) Idempotent(x batch.Action) bool {
	act, ok := a.spec.file.Actions[actionName(x)]
	return ok && *act.Idempotent
}

// Identity is the spec's identity rules.
func (a *Adapter) Identity() batch.Identity { return a.identity }

// Apply sends op's steps: the first always, each next one only when the
// previous one's result and op's columns let it go on. The last step sent
// decides the reply. An action the spec lacks, or a value the request
// needs and op lacks, is a Permanent validation error and nothing is sent.
func (a *Adapter) Apply(ctx context.Context, op batch.Op) (batch.Reply, error) {
	act, ok := a.spec.file.Actions[actionName(op.Action)]
	if !ok {
		return batch.Reply{}, a.unsupported(op.Action)
	}
	if err := a.checkColumns(op); err != nil {
		return batch.Reply{}, err
	}
	v := &values{op: &op, a: a, cols: a.cols[op.Action]}
	res, err := a.send(ctx, a.stepRequest(&act.Steps[0]), v)
	for i := 1; i < len(act.Steps) && err == nil; i++ {
		st := &act.Steps[i]
		if !st.goesOn(res) || !holds(st.When, &op) {
			break
		}
		res, err = a.send(ctx, a.stepRequest(st), a.stepValues(st, v))
		var berr *batch.Error
		if errors.As(err, &berr) {
			laterStepFailed(berr, st, *act.Idempotent)
		}
		if err == nil && st.Reply != "" {
			res.message = st.Reply
		}
	}
	if err != nil {
		return batch.Reply{}, err
	}
	return batch.Reply{Already: res.already, HTTPStatus: res.status, Message: res.message}, nil
}

// laterStepFailed adjusts the error of a step after the first: the steps
// before it were carried out, so for an action that is not idempotent even
// a failure that provably sent nothing must not make the pipeline send the
// whole action again: it becomes ambiguous, and the row ends unknown.
func laterStepFailed(berr *batch.Error, st *step, idempotent bool) {
	berr.Message = st.ErrorPrefix + berr.Message
	if !idempotent && berr.Kind == batch.Retryable {
		berr.Kind = batch.Ambiguous
		berr.Message += " (an earlier step of this action was carried out: not sent again)"
	}
}

// checkColumns refuses, before anything is sent, an op whose cells the
// action's columns do not accept (an op that skipped validate).
func (a *Adapter) checkColumns(op batch.Op) error {
	for _, c := range a.colList[op.Action] {
		if p := c.problems(op, a.config, "this target"); len(p) > 0 {
			msg := p[0].Msg
			if c.Fallback != "" && Column(op, c.Name) == "" {
				msg = "no " + c.Name + ": set " + c.Fallback + " on the target or " + c.Name + " in the row"
			}
			return &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation, Message: msg + " (accepted: " + p[0].Accepted + ")"}
		}
	}
	return nil
}

// stepValues are the values a step classifies with: a step that sends
// another action's request is that action's, as its rules expect.
func (a *Adapter) stepValues(st *step, v *values) *values {
	if st.Action == "" {
		return v
	}
	op := *v.op
	op.Action = batch.Action(st.Action)
	return &values{op: &op, a: a, cols: a.cols[op.Action]}
}

// stepRequest is the step's own request, or the first request of the
// action it names.
func (a *Adapter) stepRequest(st *step) *requestSpec {
	if st.Action != "" {
		return a.stepRequest(&a.spec.file.Actions[st.Action].Steps[0])
	}
	return &st.Request
}

func (st *step) goesOn(res result) bool {
	for _, after := range st.After {
		if (after == thenAlready) == res.already {
			return true
		}
	}
	return false
}

func (a *Adapter) unsupported(x batch.Action) error {
	return &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation,
		Message: fmt.Sprintf("%s does not support %s (supported: %s)", a.spec.file.Vendor, x, strings.Join(a.spec.ActionNames(), ", "))}
}

// send sends one request and classifies its answer. Every error it
// returns has had each secret removed from its message and wrapped error.
func (a *Adapter) send(ctx context.Context, rq *requestSpec, v *values) (result, error) {
	_, res, err := a.exchange(ctx, rq, v)
	return res, err
}

// exchange sends one request and classifies its answer, which it returns
// with its body redacted. Every error it returns has been scrubbed.
func (a *Adapter) exchange(ctx context.Context, rq *requestSpec, v *values) (*answer, result, error) {
	req, err := a.build(ctx, rq, v)
	if err != nil {
		return nil, result{}, a.scrub(err)
	}
	resp, body, err := httpcall.Do(a.client, req)
	if err != nil {
		return nil, result{}, a.scrub(err)
	}
	an := &answer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), header: resp.Header, body: a.redact(body)}
	res, err := a.classify(rq, v, an)
	if err != nil {
		return nil, result{}, a.scrub(err)
	}
	return an, res, nil
}

// redact removes every secret from a body before anything reads it: a
// vendor or proxy that echoes the request would otherwise quote one.
func (a *Adapter) redact(body []byte) []byte {
	for _, f := range a.forms {
		if bytes.Contains(body, f) {
			return []byte(httpcall.Redact(string(body), a.secrets...))
		}
	}
	return body
}

// scrub returns err with every secret removed from its message and from
// the error it wraps. Anything that is not a *batch.Error becomes one
// (Ambiguous network), so the Adapter contract holds.
func (a *Adapter) scrub(err error) error {
	var berr *batch.Error
	if !errors.As(err, &berr) {
		return &batch.Error{Kind: batch.Ambiguous, Code: batch.CodeNetwork, Message: httpcall.Redact(err.Error(), a.secrets...)}
	}
	out := *berr
	out.Message = httpcall.Redact(out.Message, a.secrets...)
	if out.Err != nil {
		if text := out.Err.Error(); httpcall.Redact(text, a.secrets...) != text {
			out.Err = errors.New(httpcall.Redact(text, a.secrets...))
		}
	}
	return &out
}

// Read asks once whether op's user is already in the state op asks for,
// as the spec's read says. Errors are those of Apply; an answer without
// the value the spec points at is a Permanent bad_response.
func (r *Reader) Read(ctx context.Context, op batch.Op) (batch.State, error) {
	rs := r.spec.file.Read
	m, ok := rs.InState[actionName(op.Action)]
	if !ok || !r.Supports(op.Action) {
		return batch.State{}, &batch.Error{Kind: batch.Permanent, Code: batch.CodeValidation,
			Message: fmt.Sprintf("%s cannot read the state of %s", r.spec.file.Vendor, op.Action)}
	}
	if err := r.checkColumns(op); err != nil {
		return batch.State{}, err
	}
	v := &values{op: &op, a: r.Adapter, cols: r.cols[op.Action]}
	an, err := r.readAnswer(ctx, &rs.Request, v)
	if err != nil {
		return batch.State{}, err
	}
	value, err := r.readValue(rs, an)
	if err != nil {
		return batch.State{}, err
	}
	current := value
	if name, ok := rs.Names[value]; ok {
		current = name
	}
	current = strings.ReplaceAll(cmp.Or(rs.Current, "{value}"), "{value}", current)
	return batch.State{InState: m.holds(value), HTTPStatus: an.status,
		Current: httpcall.SafeMessage(current, r.secrets...)}, nil
}

// readAnswer sends the read and classifies it: only an applied answer is
// read further.
func (r *Reader) readAnswer(ctx context.Context, rq *requestSpec, v *values) (*answer, error) {
	an, _, err := r.exchange(ctx, rq, v)
	return an, err
}

// readValue is the value at the read's pointer, as text. An answer
// without it is not the vendor's own (a login portal's page): it counts
// toward stopping the target (README, "Targets that stop").
func (r *Reader) readValue(rs *readSpec, an *answer) (string, error) {
	bad := func(msg string) error {
		return &batch.Error{Kind: batch.Permanent, Code: batch.CodeBadResponse, HTTPStatus: an.status, Message: msg, Fault: batch.FaultForeign}
	}
	if rs.Media == "json" && !httpcall.JSONMedia(an.contentType) {
		return "", bad("answer is " + httpcall.SafeMessage(an.contentType, r.secrets...) + ", not JSON")
	}
	doc, _ := an.json()
	v, found := lookup(doc, rs.Value.tokens)
	switch x := v.(type) {
	case bool:
		if found && rs.Type == "bool" {
			return fmt.Sprint(x), nil
		}
	case string:
		if found && rs.Type == "string" && x != "" {
			return x, nil
		}
	}
	return "", bad(fmt.Sprintf("answer has no %s %s: %s", rs.Type, rs.Value.raw, httpcall.SafeSnippet(an.body, r.secrets...)))
}

func (m match) holds(value string) bool {
	if len(m.Equals) > 0 {
		return inFold(m.Equals, value)
	}
	return !inFold(m.NotEquals, value)
}

// Invert lists the undo rows for op, applied, as the spec's invert says.
func (a *Adapter) Invert(op batch.Op) []batch.Inverse { return a.spec.Invert(op) }

// UndoColumns are the spec's (Spec.UndoColumns).
func (a *Adapter) UndoColumns(h batch.Header) []string { return a.spec.UndoColumns(h) }

var (
	_ batch.Inverter  = (*Adapter)(nil)
	_ batch.Inverter  = (*Spec)(nil)
	_ batch.Validator = (*Spec)(nil)
	_ batch.Columner  = (*Spec)(nil)
)
