package batch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// row is one op being processed: its target, its log and its result so far.
type row struct {
	op   Op
	t    *Target
	base zerolog.Logger
	log  *zerolog.Logger // made on first use: most rows log nothing
	res  Result
}

// logger is the row's logger, with its line, target and action.
func (w *row) logger() *zerolog.Logger {
	if w.log == nil {
		l := w.base.With().Int("line", w.op.Line).Str("target", w.op.Target).Str("action", string(w.op.Action)).Logger()
		w.log = &l
	}
	return w.log
}

// process runs one op to its outcome. It returns false when the row was
// abandoned before an outcome (the run was stopped while it waited).
func (r *run) process(ctx, waitCtx context.Context, t *Target, op Op) (Result, bool) {
	w := &row{op: op, t: t, res: Result{Index: op.Index, Line: op.Line, Target: op.Target, User: op.User, Action: op.Action}}
	w.base = r.Log
	done, err := r.gated(ctx, waitCtx, w)
	if err != nil {
		// The gate could not be asked or told: no further change may be
		// claimed or sent, but the row's answer, if it has one, is kept.
		r.haltRun(&GateError{Err: err})
	}
	if !done {
		return Result{}, false
	}
	w.res.FinishedAt = r.Clock.Now().UTC()
	if r.Log.GetLevel() <= zerolog.DebugLevel {
		w.logger().Debug().Str("outcome", string(w.res.Outcome)).Int("attempts", w.res.Attempts).Msg("row done")
	}
	return w.res, true
}

// gated runs the row through the gate, when there is one: admitted, then
// executed, then settled. It returns false when the row was abandoned.
func (r *run) gated(ctx, waitCtx context.Context, w *row) (bool, error) {
	if w.op.DuplicateOf > 0 {
		w.res.Outcome, w.res.Detail = Skipped, duplicateDetail(w.op)
		return true, nil
	}
	if res := r.due(w); res != nil {
		w.res = *res
		return true, nil
	}
	if r.Gate == nil {
		return r.execute(ctx, waitCtx, w), nil
	}
	held, err := r.Gate.Admit(ctx, w.op)
	if err != nil {
		return false, err
	}
	if held != nil {
		w.res = *held
		return r.confirmHeld(ctx, waitCtx, w), nil
	}
	if r.DryRun {
		return r.execute(ctx, waitCtx, w), nil
	}
	if !r.execute(ctx, waitCtx, w) {
		// Abandoned before an outcome: the gate hears of it as skipped,
		// so that a change never sent does not stay claimed.
		return false, r.Gate.Settle(context.WithoutCancel(ctx), w.op, Result{Outcome: Skipped})
	}
	return true, r.Gate.Settle(context.WithoutCancel(ctx), w.op, w.res)
}

func (r *run) execute(ctx, waitCtx context.Context, w *row) bool {
	if stop := w.t.stopped(); stop != nil {
		w.res.Outcome, w.res.ErrorCode, w.res.Detail = Skipped, stop.code, stop.reason
		return true
	}
	if pat, ok := w.t.protects(w.op, w.op.User); ok {
		protect(w, pat)
		return true
	}
	if r.planned(w) {
		return true
	}
	if readsFirst(w) {
		reader := w.t.Adapter.(Reader)
		var st State
		ok, err := r.call(ctx, waitCtx, w, request{mayResend: true}, func(c context.Context) (err error) {
			st, err = reader.Read(c, w.op)
			return err
		})
		if !ok {
			return false
		}
		if err != nil {
			r.readFailed(w, err)
			return true
		}
		w.res.HTTPStatus = st.HTTPStatus
		if pat, ok := w.t.protects(w.op, st.Identities...); ok {
			// The read named the user in a form the row did not.
			protect(w, pat)
			return true
		}
		switch {
		case st.InState && r.DryRun:
			w.res.Outcome, w.res.Detail, w.res.Message = Planned, "no change", "current state: "+st.Current
			return true
		case st.InState && !r.DryRun && r.drifted(w, st.Current):
			return true
		case st.InState && r.Interrupted[w.op.Index]:
			// The process that died had sent this write: the change is
			// this run's, and undo.csv must list it.
			w.res.Outcome, w.res.Detail = Applied, appliedDetail(w.op)+" (sent before the run was interrupted; a read after the restart confirmed it)"
			return true
		case st.InState:
			w.res.Outcome, w.res.Detail = Already, "already "+st.Current
			return true
		case r.DryRun:
			w.res.Outcome, w.res.Detail, w.res.Message = Planned, "would change", "current state: "+st.Current
			return true
		}
	} else if r.DryRun {
		w.res.Outcome, w.res.Detail, w.res.Message = Planned, "unknown state", "this vendor's state cannot be read"
		return true
	}
	return r.apply(ctx, waitCtx, w)
}

// protect ends a row whose user a protected pattern matches, unsent.
func protect(w *row, pattern string) {
	w.res.Outcome = Skipped
	w.res.Detail = fmt.Sprintf("protected: matches %q", pattern)
}

func (r *run) apply(ctx, waitCtx context.Context, w *row) bool {
	mayResend := w.t.MayResend(w.op.Action)
	var reply Reply
	ok, err := r.call(ctx, waitCtx, w, request{write: true, mayResend: mayResend}, func(c context.Context) (err error) {
		reply, err = w.t.Adapter.Apply(c, w.op)
		return err
	})
	if !ok {
		return false
	}
	if err != nil {
		r.fail(w, err, mayResend)
		return true
	}
	w.res.HTTPStatus, w.res.Message = reply.HTTPStatus, reply.Message
	w.res.ErrorCode = ""
	switch {
	case reply.Already && r.Interrupted[w.op.Index] && !readsFirst(w):
		// No read came before the lost write: the user may have been in
		// this state before the run, so the change is not claimed for undo.
		w.res.Outcome, w.res.Detail = Already, AlreadyAfterInterruption
	case reply.Already:
		w.res.Outcome, w.res.Detail = Already, "the vendor says the user already is in this state"
	default:
		w.res.Outcome, w.res.Detail = Applied, appliedDetail(w.op)
	}
	return true
}

// readsFirst reports whether w's state is read before its write.
func readsFirst(w *row) bool {
	_, ok := w.t.Adapter.(Reader)
	return ok && (w.op.Action == Disable || w.op.Action == Enable)
}

// AlreadyAfterInterruption is the detail of a row whose write was in
// flight when a process died, on a vendor that cannot read state, and that
// the vendor called already done when it was sent again. Whether this run
// made the change is not known: the row goes to check.csv, not undo.csv.
const AlreadyAfterInterruption = "already, and whether this run made the change is not known: " +
	"the write was in flight when an earlier process was interrupted, and the vendor, which cannot be read, said already done when it was sent again"

func appliedDetail(op Op) string {
	switch op.Action {
	case Disable:
		return "disabled"
	case Enable:
		return "enabled"
	case UpgradeRole, DowngradeRole:
		return "role set to " + op.Role
	case ToggleStatus:
		return "status toggled"
	}
	return string(op.Action)
}

// request says what a call sends: a write is journalled before each
// attempt; mayResend says it may be sent again after an ambiguous answer
// (Target.MayResend).
type request struct{ write, mayResend bool }

// call sends one request through the target's pacing, retrying as the policy
// allows. It returns ok=false when the row was abandoned while waiting (the
// run stopped); otherwise the last error, nil on success.
func (r *run) call(ctx, waitCtx context.Context, w *row, req request, send func(context.Context) error) (bool, error) {
	var last error
	for n := 1; ; n++ {
		if err := r.ready(waitCtx, w.t); err != nil {
			return false, nil
		}
		readyAt := r.Clock.Now()
		if stop := w.t.stopped(); stop != nil {
			r.release(w.t)
			if last != nil {
				return true, last // sent before the stop: its own last answer decides
			}
			return true, &Error{Kind: Permanent, Code: stop.code, Message: stop.reason, skip: true}
		}
		if req.write && r.halted() {
			r.release(w.t)
			return false, nil // the gate failed: no further change is sent
		}
		if req.write {
			if err := r.intent(w.op, n); err != nil {
				r.release(w.t)
				return false, nil // the writer failed: the run is ending
			}
		}
		if req.write {
			w.res.Writes++
		}
		w.t.awaitWindow(ctx, r.Clock) // bounded by the window's second
		err := r.send(ctx, w, readyAt, send)
		w.t.count(err, w.op.Line, r.Log)
		if err == nil {
			return true, nil
		}
		last = err
		if r.Retry.decide(err, n, req.mayResend) != retry {
			return true, err
		}
		w.res.Retries++
		wait := r.Retry.backoff(n)
		w.logger().Info().Err(err).Int("attempt", n).Str("backoff", wait.String()).Msg("retrying")
		if err := r.Clock.Sleep(waitCtx, wait); err != nil {
			return false, nil
		}
	}
}

// ready takes an in-flight slot of the target and of the run, then waits
// out any Retry-After pause and for the limiter's token, so that the token
// is spent right before the request goes: a token taken while waiting for a
// slot would let requests bunch up past the rate once slots free.
func (r *run) ready(ctx context.Context, t *Target) error {
	if err := t.slots.acquire(ctx); err != nil {
		return err
	}
	if r.global != nil {
		if err := r.global.Acquire(ctx, 1); err != nil {
			t.slots.release()
			return err
		}
	}
	if err := t.ready(ctx, r.Clock); err != nil {
		r.release(t)
		return err
	}
	return nil
}

func (r *run) release(t *Target) {
	t.slots.release()
	if r.global != nil {
		r.global.Release(1)
	}
}

// send makes one request with the target's timeout. readyAt is when the
// request's slot and token were taken.
func (r *run) send(ctx context.Context, w *row, readyAt time.Time, send func(context.Context) error) error {
	defer r.release(w.t)
	ctx, cancel := context.WithTimeout(ctx, w.t.Timeout)
	defer cancel()
	w.res.Attempts++
	// The row's duration is its time at the vendor: the sum of its
	// requests, never the rate limit's queue, a pause or a backoff.
	start := r.Clock.Now()
	err := send(ctx)
	end := r.Clock.Now()
	w.res.Duration += end.Sub(start)
	// The auto cap sizes for how long a slot is held once its token is
	// taken: the request and the intent's sync before it (README
	// "targets.yaml"), or a sync slower than the vendor starves the rate.
	w.t.observe(end.Sub(readyAt))
	// Pause before this request's slots are released: a request waiting for
	// them must find the pause in place.
	var berr *Error
	if !errors.As(err, &berr) || berr.RetryAfter <= 0 {
		return err
	}
	if berr.RetryAfter > w.t.MaxWait {
		return tooLong(berr, w.t.MaxWait)
	}
	w.t.pause(r.Clock.Now().Add(berr.RetryAfter))
	w.logger().Warn().Str("retry_after", berr.RetryAfter.String()).Msg("vendor asked to wait: pausing the target")
	return err
}

// tooLong turns an answer whose Retry-After passes max_wait into the row's
// last: the target is not paused for it, and the row is not retried.
func tooLong(e *Error, maxWait time.Duration) *Error {
	c := *e
	c.Code, c.RetryAfter, c.final = CodeWaitTooLong, 0, true
	c.Message = fmt.Sprintf("the vendor asked to wait %v, longer than max_wait %v: not waited (raise max_wait in targets.yaml, or re-run failed.csv later)", e.RetryAfter.Round(time.Second), maxWait)
	if e.Message != "" {
		c.Message += "; the vendor said: " + e.Message
	}
	return &c
}

// fail records a failed row: failed when the vendor refused or retries ran
// out on errors that prove nothing was done, unknown when the last attempt
// may have taken effect.
func (r *run) fail(w *row, err error, mayResend bool) {
	var berr *Error
	if !errors.As(err, &berr) {
		berr = &Error{Kind: Ambiguous, Code: "error", Message: err.Error()}
	}
	if berr.skip {
		w.res.Outcome, w.res.ErrorCode, w.res.Detail = Skipped, berr.Code, berr.Message
		return
	}
	w.res.HTTPStatus, w.res.ErrorCode, w.res.Message = berr.HTTPStatus, berr.Code, berr.Message
	if berr.Kind == Ambiguous {
		w.res.Outcome = Unknown
		w.res.Detail = "the request may have taken effect: check the user by hand before sending it again"
		if mayResend {
			w.res.Detail = fmt.Sprintf("no clear answer after %d attempts; the change may have taken effect: check by hand or re-run failed.csv", w.res.Attempts)
		}
		return
	}
	w.res.Outcome, w.res.Detail = Failed, failHint(berr, w.res.Attempts)
}

// readFailed records a row whose state could not be read. Nothing was
// changed, so it is failed whatever the error's kind.
func (r *run) readFailed(w *row, err error) {
	r.fail(w, err, true)
	if w.res.Outcome == Unknown {
		w.res.Outcome = Failed
		w.res.Detail = fmt.Sprintf("could not read the user's state after %d attempts; nothing was changed: re-run failed.csv later", w.res.Attempts)
	}
}

func failHint(e *Error, attempts int) string {
	switch {
	case e.Hint != "":
		return e.Hint
	case e.Fault == FaultForeign:
		return "the answer did not come from the vendor's API (a page from another server?): check base_url, then re-run failed.csv"
	case e.Fault == FaultUnreachable && e.Code != CodeTLS:
		return fmt.Sprintf("could not connect to the target (%d attempts; nothing was sent): check base_url and the network, then re-run failed.csv", attempts)
	case e.Code == CodeUnauthorized && e.CredentialsUnsure:
		return "the vendor gives this refusal both for bad credentials and for an unknown user, and does not say which: check that the user exists and the target's token, then re-run failed.csv"
	}
	switch e.Code {
	case CodeUnauthorized:
		return "credentials refused: check the target's apikey and token, then re-run failed.csv"
	case CodeNotFound:
		return "no such user at the vendor: check the user id"
	case CodeConflict:
		return "the user's state conflicts with the row (a different role, or the user changed while it was written): check the user and the row"
	case CodeValidation:
		return "the vendor rejected a field: fix the row and re-run failed.csv"
	case CodeTLS:
		return "the TLS connection failed (certificate or handshake): nothing was sent; check base_url and the vendor's certificate"
	case CodeRequest:
		return "the request could not be built (a credential or the user id holds a character HTTP cannot carry): nothing was sent"
	case CodeAmbiguous:
		return "several users match this user cell: give the vendor's id instead"
	case CodeWaitTooLong:
		return "the vendor asked to wait longer than max_wait: re-run failed.csv later"
	case CodeRateLimited, CodeNetwork, CodeServer, CodeTimeout:
		return fmt.Sprintf("gave up after %d attempts: re-run failed.csv later", attempts)
	}
	return "the vendor refused the change"
}
