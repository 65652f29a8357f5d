package ledger

import (
	"context"
	"database/sql"
	"errors"
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
}

var _ Ledger = (*sqlLedger)(nil)

type queries struct {
	insert, get, update, release, history string
}

const (
	table   = "userbatch_ledger"
	columns = "target, user_id, action, role, effective_at, state, outcome, recorded_at, run_id, input_sha256, line"
	byKey   = "target = ? AND user_id = ? AND action = ? AND role = ? AND effective_at = ?"
)

func newQueries(d *dialect) queries {
	q := queries{
		insert:  "INSERT INTO " + table + " (" + columns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
		get:     "SELECT " + columns + " FROM " + table + " WHERE " + byKey,
		update:  "UPDATE " + table + " SET state = 'done', outcome = ?, recorded_at = ?, input_sha256 = ?, line = ? WHERE " + byKey + " AND run_id = ?",
		release: "DELETE FROM " + table + " WHERE " + byKey + " AND run_id = ? AND state = 'pending'",
		history: "SELECT " + columns + " FROM " + table,
	}
	if d.dollar {
		q.insert, q.get, q.update, q.release = rebind(q.insert), rebind(q.get), rebind(q.update), rebind(q.release)
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

func newSQLLedger(db *sql.DB, d *dialect, where, secret string) *sqlLedger {
	l := &sqlLedger{db: db, d: d, where: where, secret: secret, q: newQueries(d)}
	if d.groupCommit {
		l.group = newGroupCommit(db)
	}
	return l
}

// claimTries bounds the loops that meet an entry deleted between two
// statements by another run's Release: each try makes progress unless
// another run keeps claiming and releasing the same key.
const claimTries = 10

func (l *sqlLedger) Claim(ctx context.Context, e Entry) (*Entry, error) {
	if err := checkEntry(e); err != nil {
		return nil, err
	}
	at := recordedAt(e.At)
	// Look first: tonight's run over yesterday's file finds most changes
	// held, and a read costs no write lock and no fsync. The insert decides.
	for range claimTries {
		prev, err := l.get(ctx, e.Key)
		if err == nil {
			return prev, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, l.errorf("claim %s: %w", e.Key, err)
		}
		n, err := l.write(ctx, l.q.insert, l.row(e, Pending, "", at)...)
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
	if err := checkEntry(e); err != nil {
		return err
	}
	if e.Outcome != batch.Applied && e.Outcome != batch.Already {
		return fmt.Errorf("ledger: done %s: outcome %q is neither %s nor %s", e.Key, e.Outcome, batch.Applied, batch.Already)
	}
	at := recordedAt(e.At)
	for range claimTries {
		update := append([]any{string(e.Outcome), l.d.timeArg(at), e.InputSHA256, e.Line}, l.keyArgs(e.Key, e.RunID)...)
		n, err := l.write(ctx, l.q.update, update...)
		if err == nil && n == 0 {
			n, err = l.write(ctx, l.q.insert, l.row(e, Done, e.Outcome, at)...)
		}
		if err != nil {
			return l.errorf("done %s: %w", e.Key, err)
		}
		if n == 1 {
			return nil
		}
		prev, err := l.get(ctx, e.Key)
		if errors.Is(err, sql.ErrNoRows) {
			continue // released since our insert met it: try again
		}
		if err != nil {
			return l.errorf("done %s: %w", e.Key, err)
		}
		if prev.RunID != e.RunID {
			return l.errorf("done %s: %w: %s by run %s at %s", e.Key, ErrHeld, prev.State, prev.RunID, prev.At.Format(time.RFC3339))
		}
	}
	return l.errorf("done %s: the entry kept changing (another run claims and releases it)", e.Key)
}

func (l *sqlLedger) Release(ctx context.Context, e Entry) error {
	if err := checkEntry(e); err != nil {
		return err
	}
	if _, err := l.write(ctx, l.q.release, l.keyArgs(e.Key, e.RunID)...); err != nil {
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
	return l.db.Close()
}

// write runs a statement that changes the store and says how many rows it changed.
func (l *sqlLedger) write(ctx context.Context, query string, args ...any) (int64, error) {
	if l.group != nil {
		return l.group.write(ctx, query, args...)
	}
	return execCount(l.db.ExecContext(ctx, query, args...))
}

func (l *sqlLedger) get(ctx context.Context, k Key) (*Entry, error) {
	e, err := scanEntry(l.db.QueryRowContext(ctx, l.q.get, l.keyArgs(k, "")[:5]...))
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// keyArgs are the arguments of byKey, then runID.
func (l *sqlLedger) keyArgs(k Key, runID string) []any {
	return []any{k.Target, k.User, string(k.Action), k.Role, formatEffective(k.EffectiveAt), runID}
}

// row is e's arguments for the insert statement, in columns order.
func (l *sqlLedger) row(e Entry, s State, o batch.Outcome, at time.Time) []any {
	return []any{e.Target, e.User, string(e.Action), e.Role, formatEffective(e.EffectiveAt),
		string(s), string(o), l.d.timeArg(at), e.RunID, e.InputSHA256, e.Line}
}

type scanner interface{ Scan(dest ...any) error }

func scanEntry(s scanner) (Entry, error) {
	var e Entry
	var action, state, outcome, effective string
	err := s.Scan(&e.Target, &e.User, &action, &e.Role, &effective, &state, &outcome,
		timeScanner{&e.At}, &e.RunID, &e.InputSHA256, &e.Line)
	if err != nil {
		return e, err
	}
	e.Action, e.State, e.Outcome = batch.Action(action), State(state), batch.Outcome(outcome)
	if e.EffectiveAt, err = parseEffective(effective); err != nil {
		return e, fmt.Errorf("entry %s/%s %s: effective_at %q: %w", e.Target, e.User, action, effective, err)
	}
	return e, nil
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
