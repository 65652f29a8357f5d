package ledger

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Apply reads the chains of all its users in one statement and writes its
// inserts and its updates in one statement each, instead of two statements
// per step: on PostgreSQL each statement is a round trip to the server, on
// SQLite tens of microseconds of CPU in the driver. Steps the bulk
// statements did not settle (another run inserted the key since it was
// read) go through the per-step path, which looks again.

// bulkChunk bounds the steps one bulk statement carries.
const bulkChunk = 512

// bulkSQL is a dialect's bulk statements. Each takes a list of rows, which
// args turns into the statement's arguments:
//   - chains: (target, user_key), and returns the entries, id first, by id;
//   - insert: rows in columns order, ON CONFLICT DO NOTHING, returning the
//     inserted rows' target and user_key;
//   - update: (id, run_id, outcome, recorded_at, input_sha256, line, actor),
//     marking each entry of run_id done, returning the updated ids.
//
// Steps whose text carries reports false for (nil: all) take the per-step path.
type bulkSQL struct {
	chains, insert, update string
	args                   func(rows [][]any) []any
	carries                func(e Entry) bool
}

// postgresBulk passes each column as an array (unnest).
var postgresBulk = &bulkSQL{
	chains: "SELECT id, " + columns + " FROM " + table +
		" WHERE (target, user_key) IN (SELECT * FROM unnest($1::text[], $2::text[])) ORDER BY id",
	insert: "INSERT INTO " + table + " (" + columns + ") SELECT * FROM unnest(" +
		"$1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], " +
		"$8::text[], $9::text[], $10::timestamptz[], $11::text[], $12::text[], $13::text[], $14::int[]) " +
		"ON CONFLICT DO NOTHING RETURNING target, user_key",
	update: "UPDATE " + table + " AS l SET state = 'done', outcome = v.outcome, recorded_at = v.at, " +
		"input_sha256 = v.sha, line = v.line, actor = v.actor " +
		"FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::int[], $7::text[]) " +
		"AS v(id, run_id, outcome, at, sha, line, actor) WHERE l.id = v.id AND l.run_id = v.run_id RETURNING l.id",
	args: columnArrays,
}

// sqliteBulk passes the rows as one JSON array of arrays, so each statement
// has one text and one argument whatever its size. jsonb_each, unlike
// json_each, hands each row over parsed (JSONB), not as text that every
// "->>" would parse again. The
// update finds entries by id: "+l.run_id" keeps it off the run index.
var sqliteBulk = &bulkSQL{
	chains: "SELECT id, " + columns + " FROM " + table +
		" WHERE (target, user_key) IN (SELECT value ->> 0, value ->> 1 FROM jsonb_each(?)) ORDER BY id",
	insert: "INSERT INTO " + table + " (" + columns + ") SELECT " + jsonFields(strings.Split(columns, ", ")...) +
		" FROM jsonb_each(?) WHERE true ON CONFLICT DO NOTHING RETURNING target, user_key",
	update: "UPDATE " + table + " AS l SET state = 'done', outcome = v.outcome, recorded_at = v.at, " +
		"input_sha256 = v.sha, line = v.line, actor = v.actor " +
		"FROM (SELECT " + jsonFields("entry", "run", "outcome", "at", "sha", "line", "actor") + " FROM jsonb_each(?)) AS v " +
		"WHERE l.id = v.entry AND +l.run_id = v.run RETURNING id",
	args:    jsonArray,
	carries: jsonCarries,
}

// jsonFields selects jsonb_each's value's elements, named names in order.
func jsonFields(names ...string) string {
	fields := make([]string, len(names))
	for i, name := range names {
		fields[i] = "value ->> " + strconv.Itoa(i) + " AS " + name
	}
	return strings.Join(fields, ", ")
}

// jsonArray is rows as one JSON argument. Values are strings and integers.
func jsonArray(rows [][]any) []any {
	b, err := json.Marshal(rows)
	if err != nil { // strings and integers always marshal
		panic(err)
	}
	return []any{string(b)}
}

// jsonCarries reports whether JSON carries e's text unchanged: encoding/json
// replaces bytes that are not UTF-8, which SQLite stores as given.
func jsonCarries(e Entry) bool {
	for _, s := range []string{e.Target, e.User, e.UserKey, string(e.Action), e.Role, e.RunID, e.Actor, e.InputSHA256} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// columnArrays is rows as one typed array per column.
func columnArrays(rows [][]any) []any {
	args := make([]any, len(rows[0]))
	for c := range args {
		switch rows[0][c].(type) {
		case string:
			args[c] = column[string](rows, c, func(v any) string { return v.(string) })
		case time.Time:
			args[c] = column[time.Time](rows, c, func(v any) time.Time { return v.(time.Time) })
		default:
			args[c] = column[int64](rows, c, asInt64)
		}
	}
	return args
}

func column[T any](rows [][]any, c int, conv func(any) T) []T {
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = conv(r[c])
	}
	return out
}

func asInt64(v any) int64 {
	if i, ok := v.(int); ok {
		return int64(i)
	}
	return v.(int64)
}

// bulkSteps is steps in chunks whose steps touch distinct
// users: within a chunk no step's answer depends on another's write.
func (l *sqlLedger) bulkSteps(ctx context.Context, tx *sql.Tx, steps []Step) ([]*Entry, error) {
	answers := make([]*Entry, len(steps))
	for start := 0; start < len(steps); {
		end := chunkEnd(steps, start)
		if err := l.bulkChunk(ctx, tx, steps[start:end], answers[start:end]); err != nil {
			return nil, err
		}
		start = end
	}
	return answers, nil
}

// chunkEnd is where the chunk starting at start ends: before the first
// step whose user a step of the chunk already names, or at bulkChunk.
func chunkEnd(steps []Step, start int) int {
	seen := map[userRef]bool{}
	for i := start; i < len(steps) && i-start < bulkChunk; i++ {
		k := steps[i].Entry.Key
		refs := []userRef{{k.Target, k.userKey()}, {k.Target, k.User}}
		if seen[refs[0]] || seen[refs[1]] {
			return i
		}
		seen[refs[0]], seen[refs[1]] = true, true
	}
	return min(len(steps), start+bulkChunk)
}

type bulkRow struct {
	step int
	row  []any
}

type bulkDone struct {
	step int
	id   int64
	e    Entry
}

func (l *sqlLedger) bulkChunk(ctx context.Context, tx *sql.Tx, steps []Step, answers []*Entry) error {
	chains, err := l.bulkChainsOf(ctx, tx, steps)
	if err != nil {
		return err
	}
	var inserts []bulkRow
	var updates []bulkDone
	var single []int // steps the per-step path makes
	for i, s := range steps {
		if l.d.bulk.carries != nil && !l.d.bulk.carries(s.Entry) {
			single = append(single, i)
			continue
		}
		k := s.Entry.Key
		chain := chains[userRef{k.Target, k.userKey()}]
		if k.User != k.userKey() {
			chain = mergeChains(chain, chains[userRef{k.Target, k.User}])
		}
		ans, superseded := answer(chain, k)
		held := ans != nil && !superseded
		at := recordedAt(s.Entry.At)
		switch {
		case s.Kind == StepClaim && held:
			answers[i] = &ans.Entry
		case s.Kind == StepClaim:
			inserts = append(inserts, bulkRow{i, l.row(s.Entry, nextGeneration(ans), Pending, "", at)})
		case s.Kind == StepDone && ans != nil && ans.RunID == s.Entry.RunID:
			updates = append(updates, bulkDone{i, ans.id, s.Entry})
		case s.Kind == StepDone && !held:
			inserts = append(inserts, bulkRow{i, l.row(s.Entry, nextGeneration(ans), Done, s.Entry.Outcome, at)})
		case s.Kind == StepDone:
			answers[i] = &ans.Entry
		default:
			single = append(single, i)
		}
	}
	missed, err := l.bulkInsert(ctx, tx, steps, inserts)
	if err != nil {
		return err
	}
	single = append(single, missed...)
	if missed, err = l.bulkUpdate(ctx, tx, updates); err != nil {
		return err
	}
	single = append(single, missed...)
	slices.Sort(single)
	within := l.within(tx)
	for _, i := range single {
		if answers[i], err = l.step(ctx, within, steps[i]); err != nil {
			return err
		}
	}
	return nil
}

// bulkChainsOf reads the entries of every user steps name, by (target,
// user_key), in insertion order.
func (l *sqlLedger) bulkChainsOf(ctx context.Context, tx *sql.Tx, steps []Step) (map[userRef][]stored, error) {
	refs := make([][]any, 0, 2*len(steps))
	for _, s := range steps {
		k := s.Entry.Key
		refs = append(refs, []any{k.Target, k.userKey()})
		if k.User != k.userKey() {
			refs = append(refs, []any{k.Target, k.User})
		}
	}
	rows, err := l.query(ctx, tx, l.d.bulk.chains, l.d.bulk.args(refs))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	chains := map[userRef][]stored{}
	for rows.Next() {
		var s stored
		if err := scanInto(rows, &s.Entry, []any{&s.id}, &s.generation); err != nil {
			return nil, err
		}
		ref := userRef{s.Target, s.UserKey}
		chains[ref] = append(chains[ref], s)
	}
	return chains, rows.Err()
}

// mergeChains is a and b in insertion order.
func mergeChains(a, b []stored) []stored {
	if len(b) == 0 {
		return a
	}
	m := append(slices.Clone(a), b...)
	slices.SortFunc(m, func(x, y stored) int { return cmp.Compare(x.id, y.id) })
	return m
}

// bulkInsert inserts rows in one statement and returns the steps whose row
// met one inserted by another run since the chains were read.
func (l *sqlLedger) bulkInsert(ctx context.Context, tx *sql.Tx, steps []Step, rows []bulkRow) ([]int, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	values := make([][]any, len(rows))
	for i, r := range rows {
		values[i] = r.row
	}
	res, err := l.query(ctx, tx, l.d.bulk.insert, l.d.bulk.args(values))
	if err != nil {
		return nil, err
	}
	defer res.Close()
	inserted := map[userRef]bool{}
	for res.Next() {
		var ref userRef
		if err := res.Scan(&ref.target, &ref.user); err != nil {
			return nil, err
		}
		inserted[ref] = true
	}
	if err := res.Err(); err != nil {
		return nil, err
	}
	var missed []int
	for _, r := range rows {
		if k := steps[r.step].Entry.Key; !inserted[userRef{k.Target, k.userKey()}] {
			missed = append(missed, r.step)
		}
	}
	return missed, nil
}

// bulkUpdate marks done, in one statement, entries of the steps' runs and
// returns the steps whose entry was gone (released since it was read).
func (l *sqlLedger) bulkUpdate(ctx context.Context, tx *sql.Tx, updates []bulkDone) ([]int, error) {
	if len(updates) == 0 {
		return nil, nil
	}
	values := make([][]any, len(updates))
	for i, u := range updates {
		values[i] = []any{u.id, u.e.RunID, string(u.e.Outcome), l.d.timeArg(recordedAt(u.e.At)), u.e.InputSHA256, u.e.Line, u.e.Actor}
	}
	res, err := l.query(ctx, tx, l.d.bulk.update, l.d.bulk.args(values))
	if err != nil {
		return nil, err
	}
	defer res.Close()
	updated := map[int64]bool{}
	for res.Next() {
		var id int64
		if err := res.Scan(&id); err != nil {
			return nil, err
		}
		updated[id] = true
	}
	if err := res.Err(); err != nil {
		return nil, err
	}
	var missed []int
	for _, u := range updates {
		if !updated[u.id] {
			missed = append(missed, u.step)
		}
	}
	return missed, nil
}
