// Package ledger remembers, across runs, which changes were applied, so that a
// later run over the same (or a grown) input never sends a change again: a
// toggle sent twice undoes itself. It outlives report directories and is kept
// in SQLite (one file, the embedded default) or PostgreSQL (for shards on
// many machines); Open takes "sqlite:PATH" or "postgres://...".
//
// The run loop uses it per row that would change something, around the request:
//
//	prev, err := l.Claim(ctx, e) // records e as Pending unless the key is held
//	switch {
//	case err != nil:
//		// fatal: stop the run (exit 3, resumable)
//	case prev == nil:
//		// this run owns the key: send, then either
//		//   l.Done(keep, e) with e.Outcome applied or already, or
//		//   l.Release(keep, e) when the change provably did not happen,
//		// where keep = context.WithoutCancel(ctx): a stopping run still records.
//		// An unknown outcome (it may have reached the vendor) keeps Pending.
//	case prev.State == Done:
//		// send nothing; the row is already, "done by run <prev.RunID> at <prev.At>"
//	case prev.RunID == e.RunID:
//		// this run's own claim (--resume with the same run id): its journal
//		// says whether the request may have been sent
//	default:
//		// another run claimed it and never finished (it crashed, or it is
//		// running now): the change may have been sent, so do not send it
//	}
//
// Every write is durable when it returns: SQLite runs with WAL and
// synchronous=FULL, and PostgreSQL commits each statement. On SQLite, the writes
// of concurrent workers share a transaction and so its fsync. Apply makes many
// claims and records in one transaction, each answered as its method would;
// a Batcher is how a run uses it: rows claimed ahead, in batches, and their
// ends recorded many at a time, so one worker does not pay a sync per row.
//
// A key holds its EffectiveAt as an instant: a date read in another --tz is
// another instant, so another key.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/userbatch/userbatch/batch"
)

// Key is the identity of a change: what the ledger is keyed by. Two rows with
// the same Key are the same change, whichever run or input line they come from.
type Key struct {
	Target string
	User   string
	// UserKey is the user's identity at the vendor (batch.Identity's Key):
	// "LOGIN_NAME:Leo" and "leo" may be one user. Empty means User.
	UserKey string
	Action  batch.Action
	// Role is the canonical role for role actions, "" otherwise.
	Role string
	// EffectiveAt is when the row became due; the zero time means none. It is
	// compared as an instant: the same time in two zones is one key.
	EffectiveAt time.Time
}

// State says whether a change is in flight or finished.
type State string

// The states of an entry.
const (
	// Pending: a run claimed the key and may have sent the change.
	Pending State = "pending"
	// Done: the change was applied, or the vendor said it already held.
	Done State = "done"
)

// Entry is one change the ledger holds.
type Entry struct {
	Key
	State State
	// Outcome is batch.Applied or batch.Already for a Done entry, "" for Pending.
	Outcome batch.Outcome
	// At is when the entry was recorded, in UTC, kept to the microsecond. A
	// zero At given to Claim or Done means now.
	At    time.Time
	RunID string
	// Actor is who ran the run (--actor).
	Actor string
	// InputSHA256 is the hex SHA-256 of the input file the change came from.
	InputSHA256 string
	// Line is the change's line in that input.
	Line int
}

// Filter selects entries for History. Empty fields match everything.
type Filter struct {
	User   string
	Target string
	// Since keeps the entries recorded at or after it.
	Since time.Time
	// RunID keeps one run's entries.
	RunID string
	// Match, when set, keeps the entries it accepts (history --user
	// compares users the way their vendor does).
	Match func(Entry) bool
}

// Ledger is a store of changes shared by every run that names it. All methods
// are safe for concurrent use, by goroutines and by processes on any machine
// that reach the same store.
type Ledger interface {
	// Claim atomically looks up e.Key as Lookup does: if an entry answers
	// for it (pending or done, from any run) it returns it and changes
	// nothing; otherwise it records a Pending entry for e (its Key, RunID,
	// Actor, At, InputSHA256 and Line) and returns (nil, nil). Of several
	// concurrent Claims of one key, exactly one returns (nil, nil).
	Claim(ctx context.Context, e Entry) (*Entry, error)
	// Lookup returns the entry that answers for k, or nil: the latest entry
	// with k's key unless it is superseded, that is unless a later entry for
	// the same user (by UserKey) with another action or role is done. A
	// rehire's enable after a leaver's disable makes the next disable a new
	// change (README "Scheduling"). A later entry due after k's own
	// effective_at (both dated) supersedes nothing: the rows of one schedule
	// each run once.
	Lookup(ctx context.Context, k Key) (*Entry, error)
	// Done marks e.RunID's entry for e.Key done with e.Outcome (batch.Applied
	// or batch.Already) and e.At, inserting it if no entry answers for the key. It is durable when
	// it returns. If another run holds e.Key, Done changes nothing and returns
	// an error that matches ErrHeld. Give it a context that a stopping run
	// does not cancel (context.WithoutCancel): a change made must be recorded.
	Done(ctx context.Context, e Entry) error
	// Release deletes e.RunID's Pending entry for e.Key: the change provably
	// did not happen (failed, skipped, stopped before sending). Entries that
	// are Done, or held by another run, are left alone; releasing nothing is
	// not an error.
	Release(ctx context.Context, e Entry) error
	// Apply makes steps, in order, in one transaction: each as the method
	// of its kind would, seeing the steps before it. It is durable when it
	// returns, with one commit (one fsync) for all of them, and an error
	// records none of them. answers[i] is, for a Claim, what Claim returns;
	// for a Done, the entry of the run that holds the key (Done's ErrHeld),
	// in which case that step records nothing; nil otherwise. Concurrent
	// Applys and Claims of one key, from any process, still claim it once.
	// Apply retries by itself where the store aborted the transaction for
	// a conflict with another one (a PostgreSQL deadlock).
	Apply(ctx context.Context, steps []Step) (answers []*Entry, err error)
	// History calls fn with the entries matching f, oldest first (by At, then
	// by insertion). An error from fn stops it and is returned.
	History(ctx context.Context, f Filter, fn func(Entry) error) error
	// Close releases the store's connections.
	Close() error
}

// StepKind says which method a Step of Apply stands for.
type StepKind int

// The kinds of steps.
const (
	StepClaim StepKind = iota
	StepDone
	StepRelease
)

// Step is one write of Apply: a Claim, Done or Release of Entry.
type Step struct {
	Kind  StepKind
	Entry Entry
}

// ErrHeld is matched (with errors.Is) by Done's error when another run holds the key.
var ErrHeld = errors.New("held by another run")

// ErrNewerSchema is matched by Open's error when the store was written by a
// newer userbatch than this one.
var ErrNewerSchema = errors.New("written by a newer userbatch")

// Accepted lists the ledger DSN forms Open takes, for help texts and errors.
const Accepted = "sqlite:PATH, postgres://... or postgresql://..."

// Open opens the ledger named by dsn, creating and migrating its schema as
// needed: "sqlite:PATH" (the file is created 0600 and its directory 0700) or
// "postgres://..." / "postgresql://...". It refuses a store whose schema is
// newer than this version's (ErrNewerSchema). Errors never hold the DSN's
// password.
func Open(ctx context.Context, dsn string) (Ledger, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn)
	}
	return nil, fmt.Errorf("ledger: unsupported ledger %s: accepted: %s", schemeOf(dsn), Accepted)
}

// schemeOf names dsn's scheme for an error without quoting the rest of it,
// which may hold a password.
func schemeOf(dsn string) string {
	scheme, _, found := strings.Cut(dsn, ":")
	if !found || scheme == "" || len(scheme) > 20 || strings.ContainsAny(scheme, "/@ \t") {
		return "(no scheme)"
	}
	return fmt.Sprintf("%q", scheme+":")
}

// Redact returns dsn with any password replaced by "xxxxx", fit for logs.
// A DSN it cannot parse is replaced whole.
func Redact(dsn string) string {
	if strings.HasPrefix(dsn, "sqlite:") {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	for _, k := range []string{"password", "sslpassword"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

func (k Key) String() string {
	s := fmt.Sprintf("%s/%s %s", k.Target, k.User, k.Action)
	if k.Role != "" {
		s += " " + k.Role
	}
	if !k.EffectiveAt.IsZero() {
		s += " due " + formatEffective(k.EffectiveAt)
	}
	return s
}

// formatEffective is the canonical text of an effective time: the key's
// stored form, so one instant always maps to one key.
func formatEffective(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseEffective(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// recordedAt is e.At as stored: now when zero, UTC, to the microsecond
// (PostgreSQL's precision, applied to SQLite too so both return the same).
func recordedAt(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Truncate(time.Microsecond)
}

// userKey is k's identity of the user: UserKey, or User when none is given.
func (k Key) userKey() string {
	if k.UserKey != "" {
		return k.UserKey
	}
	return k.User
}

// sameChange reports whether a and b are one change for one user: the same
// action, role and effective time.
func sameChange(a, b Key) bool {
	return a.Action == b.Action && a.Role == b.Role && a.EffectiveAt.Equal(b.EffectiveAt)
}

func checkKey(k Key) error {
	if k.Target == "" || k.User == "" || k.Action == "" {
		return fmt.Errorf("ledger: a key needs a target, a user and an action (got %q)", k.String())
	}
	return nil
}

func checkEntry(e Entry) error {
	if err := checkKey(e.Key); err != nil {
		return err
	}
	if e.RunID == "" {
		return fmt.Errorf("ledger: %s: no run id", e.Key)
	}
	return nil
}
