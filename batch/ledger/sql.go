package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/userbatch/userbatch/batch"
)

// dialect is what differs between the SQL stores; the statements are shared.
type dialect struct {
	// migrations[i] brings the schema from version i to i+1, one statement each.
	migrations [][]string
	// lockMigration, if set, runs first in the migration's transaction so
	// that concurrent Opens of a fresh store migrate it once.
	lockMigration string
	// timeArg encodes a recorded time (UTC, microseconds) as a query argument.
	timeArg func(time.Time) any
	// dollar: placeholders are $1, $2, ... instead of ?.
	dollar bool
	// groupCommit: writes go through one goroutine and share transactions
	// (SQLite has one writer at a time, and each commit is an fsync).
	groupCommit bool
	// conflict reports whether err aborted a transaction only for a
	// conflict with another (a deadlock), so that running it again may pass.
	conflict func(err error) bool
	// bulk: how Apply reads and writes many steps per statement (bulk.go).
	bulk *bulkSQL
}

// sqlLedger is the Ledger over database/sql, shared by SQLite and PostgreSQL.
type sqlLedger struct {
	db *sql.DB
	d  *dialect
	// where names the store in errors, without any password.
	where string
	// secret is scrubbed from every error, should a driver quote it.
	secret string
	group  *groupCommit // nil unless dialect.groupCommit
	q      queries
	// prepared holds the bulk statements, prepared once: preparing them
	// in each transaction cost SQLite about 6% of the ledger's CPU.
	prepared map[string]*sql.Stmt
}

var _ Ledger = (*sqlLedger)(nil)

type queries struct {
	insert, chain, update, release, history string
}

const (
	table   = "userbatch_ledger"
	columns = "target, user_id, user_key, action, role, effective_at, generation, state, outcome, recorded_at, run_id, actor, input_sha256, line"
	// chainQuery finds a user's entries on a target by identity. Entries
	// recorded before identities were kept have their cell as user_key, so
	// the cell is looked up too.
	chainQuery = "SELECT id, " + columns + " FROM " + table + " WHERE target = ? AND user_key IN (?, ?) ORDER BY id"
)

func newQueries(d *dialect) queries {
	q := queries{
		insert:  "INSERT INTO " + table + " (" + columns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
		chain:   chainQuery,
		update:  "UPDATE " + table + " SET state = 'done', outcome = ?, recorded_at = ?, input_sha256 = ?, line = ?, actor = ? WHERE id = ? AND run_id = ?",
		release: "DELETE FROM " + table + " WHERE id = ? AND run_id = ? AND state = 'pending'",
		history: "SELECT " + columns + " FROM " + table,
	}
	if d.dollar {
		q.insert, q.chain, q.update, q.release = rebind(q.insert), rebind(q.chain), rebind(q.update), rebind(q.release)
	}
	return q
}

// rebind turns ? placeholders into $1, $2, ...; the statements hold no other "?".
func rebind(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r != '?' {
			b.WriteRune(r)
			continue
		}
		n++
		b.WriteString("$" + strconv.Itoa(n))
	}
	return b.String()
}

// newSQLLedger makes the ledger over db, migrated already; on error it closes db.
func newSQLLedger(ctx context.Context, db *sql.DB, d *dialect, where, secret string) (*sqlLedger, error) {
	l := &sqlLedger{db: db, d: d, where: where, secret: secret, q: newQueries(d), prepared: map[string]*sql.Stmt{}}
	for _, query := range []string{d.bulk.chains, d.bulk.insert, d.bulk.update} {
		stmt, err := db.PrepareContext(ctx, query)
		if err != nil {
			db.Close()
			return nil, l.errorf("prepare: %w", err)
		}
		l.prepared[query] = stmt
	}
	if d.groupCommit {
		l.group = newGroupCommit(db)
	}
	return l, nil
}

// query runs one of the prepared statements in tx.
func (l *sqlLedger) query(ctx context.Context, tx *sql.Tx, query string, args []any) (*sql.Rows, error) {
	return tx.StmtContext(ctx, l.prepared[query]).QueryContext(ctx, args...)
}

// claimTries bounds the loops that meet an entry inserted or deleted
// between two statements by another run: each try makes progress unless
// another run keeps claiming and releasing the same key.
const claimTries = 10

// stored is an entry with the row's id (its place in insertion order) and
// generation (how many times the change was superseded and made again).
type stored struct {
	Entry
	id         int64
	generation int
}

// answer finds, among a user's entries (in insertion order), the latest
// with k's change, and whether a later done entry with another action or
// role supersedes it.
func answer(chain []stored, k Key) (ans *stored, superseded bool) {
	for i := range chain {
		e := &chain[i]
		switch {
		case sameChange(e.Key, k):
			ans, superseded = e, false
		case ans != nil && e.State == Done && (e.Action != k.Action || e.Role != k.Role) && !scheduledAfter(e.Key, k):
			superseded = true
		}
	}
	return ans, superseded
}

// scheduledAfter reports whether l and k are both dated and l is due after
// k: a file holding a leave and a later rehire keeps both done, rather than
// sending the leave again once the rehire is recorded.
func scheduledAfter(l, k Key) bool {
	return !l.EffectiveAt.IsZero() && !k.EffectiveAt.IsZero() && l.EffectiveAt.After(k.EffectiveAt)
}

// nextGeneration is the generation a new entry for k takes after ans.
func nextGeneration(ans *stored) int {
	if ans == nil {
		return 0
	}
	return ans.generation + 1
}

func (l *sqlLedger) Lookup(ctx context.Context, k Key) (*Entry, error) {
	if err := checkKey(k); err != nil {
		return nil, err
	}
	chain, err := l.chain(ctx, l.db, k)
	if err != nil {
		return nil, l.errorf("look up %s: %w", k, err)
	}
	if ans, superseded := answer(chain, k); ans != nil && !superseded {
		return &ans.Entry, nil
	}
	return nil, nil
}

func (l *sqlLedger) Claim(ctx context.Context, e Entry) (*Entry, error) {
	if err := checkEntry(e); err != nil {
		return nil, err
	}
	return l.claim(ctx, l.pooled(), e)
}

// claim is Claim through a: look first, insert, and look again when
// another run inserted the key in between.
func (l *sqlLedger) claim(ctx context.Context, a access, e Entry) (*Entry, error) {
	at := recordedAt(e.At)
	// Look first: tonight's run over yesterday's file finds most changes
	// held, and a read costs no write lock and no fsync. The insert decides.
	for range claimTries {
		chain, err := a.chain(ctx, e.Key)
		if err != nil {
			return nil, l.errorf("claim %s: %w", e.Key, err)
		}
		ans, superseded := answer(chain, e.Key)
		if ans != nil && !superseded {
			return &ans.Entry, nil
		}
		n, err := a.write(ctx, l.q.insert, l.row(e, nextGeneration(ans), Pending, "", at)...)
		if err != nil {
			return nil, l.errorf("claim %s: %w", e.Key, err)
		}
		if n == 1 {
			return nil, nil
		}
		// Another run inserted it since we looked: read it on the next try.
	}
	return nil, l.errorf("claim %s: the entry kept changing (another run claims and releases it)", e.Key)
}

func (l *sqlLedger) Done(ctx context.Context, e Entry) error {
	if err := checkDone(e); err != nil {
		return err
	}
	held, err := l.done(ctx, l.pooled(), e)
	if err == nil && held != nil {
		err = l.errorf("done %s: %w: %s by run %s at %s", e.Key, ErrHeld, held.State, held.RunID, held.At.Format(time.RFC3339))
	}
	return err
}

func checkDone(e Entry) error {
	if err := checkEntry(e); err != nil {
		return err
	}
	if e.Outcome != batch.Applied && e.Outcome != batch.Already {
		return fmt.Errorf("ledger: done %s: outcome %q is neither %s nor %s", e.Key, e.Outcome, batch.Applied, batch.Already)
	}
	return nil
}

// done is Done through a. When another run holds the key it records
// nothing and returns that run's entry.
func (l *sqlLedger) done(ctx context.Context, a access, e Entry) (*Entry, error) {
	at := recordedAt(e.At)
	for range claimTries {
		chain, err := a.chain(ctx, e.Key)
		if err != nil {
			return nil, l.errorf("done %s: %w", e.Key, err)
		}
		ans, superseded := answer(chain, e.Key)
		var n int64
		switch {
		case ans != nil && ans.RunID == e.RunID:
			n, err = a.write(ctx, l.q.update, string(e.Outcome), l.d.timeArg(at), e.InputSHA256, e.Line, e.Actor, ans.id, e.RunID)
		case ans == nil || superseded:
			n, err = a.write(ctx, l.q.insert, l.row(e, nextGeneration(ans), Done, e.Outcome, at)...)
		default:
			return &ans.Entry, nil
		}
		if err != nil {
			return nil, l.errorf("done %s: %w", e.Key, err)
		}
		if n == 1 {
			return nil, nil
		}
		// Released or inserted by another run since we looked: look again.
	}
	return nil, l.errorf("done %s: the entry kept changing (another run claims and releases it)", e.Key)
}

func (l *sqlLedger) Release(ctx context.Context, e Entry) error {
	if err := checkEntry(e); err != nil {
		return err
	}
	return l.release(ctx, l.pooled(), e)
}

func (l *sqlLedger) release(ctx context.Context, a access, e Entry) error {
	chain, err := a.chain(ctx, e.Key)
	if err != nil {
		return l.errorf("release %s: %w", e.Key, err)
	}
	ans, _ := answer(chain, e.Key)
	if ans == nil || ans.RunID != e.RunID || ans.State != Pending {
		return nil
	}
	if _, err := a.write(ctx, l.q.release, ans.id, e.RunID); err != nil {
		return l.errorf("release %s: %w", e.Key, err)
	}
	return nil
}

func (l *sqlLedger) History(ctx context.Context, f Filter, fn func(Entry) error) error {
	query, args := l.historyQuery(f)
	rows, err := l.db.QueryContext(ctx, query, args...)
	if err != nil {
		return l.errorf("history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return l.errorf("history: %w", err)
		}
		if f.Match != nil && !f.Match(e) {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return l.errorf("history: %w", err)
	}
	return nil
}

func (l *sqlLedger) historyQuery(f Filter) (string, []any) {
	var where []string
	var args []any
	if f.User != "" {
		where, args = append(where, "user_id = ?"), append(args, f.User)
	}
	if f.Target != "" {
		where, args = append(where, "target = ?"), append(args, f.Target)
	}
	if f.RunID != "" {
		where, args = append(where, "run_id = ?"), append(args, f.RunID)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "recorded_at >= ?"), append(args, l.d.timeArg(ceilMicro(f.Since)))
	}
	query := l.q.history
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY recorded_at, id"
	if l.d.dollar {
		query = rebind(query)
	}
	return query, args
}

// ceilMicro rounds t up to the microsecond, the precision entries are kept
// at, so that "at or after t" keeps its meaning.
func ceilMicro(t time.Time) time.Time {
	t = t.UTC()
	if tr := t.Truncate(time.Microsecond); tr.Before(t) {
		return tr.Add(time.Microsecond)
	}
	return t
}

// Close waits for the write under way, if any; writes called after it fail.
func (l *sqlLedger) Close() error {
	if l.group != nil {
		l.group.close()
	}
	for _, stmt := range l.prepared {
		stmt.Close()
	}
	return l.db.Close()
}

// write runs a statement that changes the store and says how many rows it changed.
func (l *sqlLedger) write(ctx context.Context, query string, args ...any) (int64, error) {
	if l.group != nil {
		return l.group.write(ctx, query, args...)
	}
	return execCount(l.db.ExecContext(ctx, query, args...))
}

// store is what a write reads and changes: the pool, or one transaction.
type store interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// access is how Claim, Done and Release read a user's entries and write.
type access struct {
	chain func(ctx context.Context, k Key) ([]stored, error)
	write func(ctx context.Context, query string, args ...any) (int64, error)
}

// pooled reads through the pool and makes each write durable on its own
// (on SQLite, through the group commit).
func (l *sqlLedger) pooled() access {
	return access{
		chain: func(ctx context.Context, k Key) ([]stored, error) { return l.chain(ctx, l.db, k) },
		write: l.write,
	}
}

// within reads and writes in tx, so that each step sees the steps before it.
func (l *sqlLedger) within(tx store) access {
	return access{
		chain: func(ctx context.Context, k Key) ([]stored, error) { return l.chain(ctx, tx, k) },
		write: func(ctx context.Context, query string, args ...any) (int64, error) {
			return execCount(tx.ExecContext(ctx, query, args...))
		},
	}
}

// chain is the entries for k's user on k's target, in insertion order.
func (l *sqlLedger) chain(ctx context.Context, s store, k Key) ([]stored, error) {
	rows, err := s.QueryContext(ctx, l.q.chain, k.Target, k.userKey(), k.User)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var chain []stored
	for rows.Next() {
		var s stored
		if err := scanInto(rows, &s.Entry, []any{&s.id}, &s.generation); err != nil {
			return nil, err
		}
		chain = append(chain, s)
	}
	return chain, rows.Err()
}

// row is e's arguments for the insert statement, in columns order.
func (l *sqlLedger) row(e Entry, generation int, s State, o batch.Outcome, at time.Time) []any {
	return []any{e.Target, e.User, e.userKey(), string(e.Action), e.Role, formatEffective(e.EffectiveAt), generation,
		string(s), string(o), l.d.timeArg(at), e.RunID, e.Actor, e.InputSHA256, e.Line}
}

type scanner interface{ Scan(dest ...any) error }

// scanEntry reads a row of columns.
func scanEntry(s scanner) (Entry, error) {
	var e Entry
	var generation int
	err := scanInto(s, &e, nil, &generation)
	return e, err
}

// scanInto reads a row of pre's columns, then columns, into e.
func scanInto(s scanner, e *Entry, pre []any, generation *int) error {
	var action, state, outcome, effective string
	dest := append(pre, &e.Target, &e.User, &e.UserKey, &action, &e.Role, &effective, generation,
		&state, &outcome, timeScanner{&e.At}, &e.RunID, &e.Actor, &e.InputSHA256, &e.Line)
	if err := s.Scan(dest...); err != nil {
		return err
	}
	e.Action, e.State, e.Outcome = batch.Action(action), State(state), batch.Outcome(outcome)
	var err error
	if e.EffectiveAt, err = parseEffective(effective); err != nil {
		return fmt.Errorf("entry %s/%s %s: effective_at %q: %w", e.Target, e.User, action, effective, err)
	}
	return nil
}

// timeScanner reads a recorded time as PostgreSQL (timestamptz) or SQLite
// (fixed-width text) returns it.
type timeScanner struct{ t *time.Time }

func (s timeScanner) Scan(v any) error {
	var err error
	switch x := v.(type) {
	case time.Time:
		*s.t = x.UTC()
	case string:
		*s.t, err = time.Parse(time.RFC3339Nano, x)
	case []byte:
		*s.t, err = time.Parse(time.RFC3339Nano, string(x))
	default:
		err = fmt.Errorf("recorded_at: unexpected %T", v)
	}
	return err
}

// errorf wraps an error with the store's name and scrubs the password from it.
func (l *sqlLedger) errorf(format string, args ...any) error {
	return scrub(fmt.Errorf("ledger %s: "+format, append([]any{l.where}, args...)...), l.secret)
}

// scrub removes secret from err's message, keeping err matchable with errors.Is.
func scrub(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &scrubbed{msg: strings.ReplaceAll(err.Error(), secret, "xxxxx"), err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (s *scrubbed) Error() string { return s.msg }
func (s *scrubbed) Unwrap() error { return s.err }

// applyTries bounds the transactions Apply starts again after the store
// aborted one for a conflict with another.
const applyTries = 5

func (l *sqlLedger) Apply(ctx context.Context, steps []Step) ([]*Entry, error) {
	for _, s := range steps {
		if err := checkStep(s); err != nil {
			return nil, err
		}
	}
	if len(steps) == 0 {
		return nil, nil
	}
	var answers []*Entry
	var err, stepErr error
	for range applyTries {
		err = l.inTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			answers, stepErr = l.bulkSteps(ctx, tx, steps)
			return stepErr
		})
		if err == nil || l.d.conflict == nil || !l.d.conflict(err) {
			break
		}
	}
	switch {
	case err == nil:
		return answers, nil
	case err == stepErr: // says already which step and where
		return nil, err
	}
	return nil, l.errorf("write %d changes: %w", len(steps), err)
}

func checkStep(s Step) error {
	switch s.Kind {
	case StepClaim, StepRelease:
		return checkEntry(s.Entry)
	case StepDone:
		return checkDone(s.Entry)
	}
	return fmt.Errorf("ledger: step %s: unknown kind %d", s.Entry.Key, s.Kind)
}

// step makes s through a and returns its answer.
func (l *sqlLedger) step(ctx context.Context, a access, s Step) (*Entry, error) {
	switch s.Kind {
	case StepClaim:
		return l.claim(ctx, a, s.Entry)
	case StepDone:
		return l.done(ctx, a, s.Entry)
	case StepRelease:
		return nil, l.release(ctx, a, s.Entry)
	}
	return nil, nil
}

// inTx runs fn in one transaction and commits it. On SQLite the
// transaction is the group commit's, shared with concurrent writes, which
// a cancelled ctx must not roll back: fn gets one that is never cancelled.
func (l *sqlLedger) inTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if l.group != nil {
		return l.group.do(ctx, func(tx *sql.Tx) error { return fn(context.WithoutCancel(ctx), tx) })
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(ctx, tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
