package ledger

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// PostgreSQL answers each statement over the network, so Apply there reads
// the chains of all its users in one statement and writes its inserts and
// its updates in one statement each (unnest of arrays), instead of two
// round trips per step. Steps the bulk statements did not settle (another
// run inserted the key since it was read) go through the per-step path,
// which looks again.

// bulkChunk bounds the steps one bulk statement carries.
const bulkChunk = 512

const (
	bulkChains = "SELECT id, " + columns + " FROM " + table +
		" WHERE (target, user_key) IN (SELECT * FROM unnest($1::text[], $2::text[])) ORDER BY id"
	bulkInsert = "INSERT INTO " + table + " (" + columns + ") SELECT * FROM unnest(" +
		"$1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], " +
		"$8::text[], $9::text[], $10::timestamptz[], $11::text[], $12::text[], $13::text[], $14::int[]) " +
		"ON CONFLICT DO NOTHING RETURNING target, user_key"
	bulkUpdate = "UPDATE " + table + " AS l SET state = 'done', outcome = v.outcome, recorded_at = v.at, " +
		"input_sha256 = v.sha, line = v.line, actor = v.actor " +
		"FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::int[], $7::text[]) " +
		"AS v(id, run_id, outcome, at, sha, line, actor) WHERE l.id = v.id AND l.run_id = v.run_id RETURNING l.id"
)

// bulkSteps is steps for PostgreSQL, in chunks whose steps touch distinct
// users: within a chunk no step's answer depends on another's write.
func (l *sqlLedger) bulkSteps(ctx context.Context, tx store, steps []Step) ([]*Entry, error) {
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

func (l *sqlLedger) bulkChunk(ctx context.Context, tx store, steps []Step, answers []*Entry) error {
	chains, err := l.bulkChainsOf(ctx, tx, steps)
	if err != nil {
		return err
	}
	var inserts []bulkRow
	var updates []bulkDone
	var single []int // steps the per-step path makes
	for i, s := range steps {
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
	for _, i := range single {
		one, err := l.steps(ctx, l.within(tx), steps[i:i+1])
		if err != nil {
			return err
		}
		answers[i] = one[0]
	}
	return nil
}

// bulkChainsOf reads the entries of every user steps name, by (target,
// user_key), in insertion order.
func (l *sqlLedger) bulkChainsOf(ctx context.Context, tx store, steps []Step) (map[userRef][]stored, error) {
	var targets, users []string
	for _, s := range steps {
		k := s.Entry.Key
		targets, users = append(targets, k.Target, k.Target), append(users, k.userKey(), k.User)
	}
	rows, err := tx.QueryContext(ctx, bulkChains, targets, users)
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
func (l *sqlLedger) bulkInsert(ctx context.Context, tx store, steps []Step, rows []bulkRow) ([]int, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	cols := make([][]any, 14)
	for _, r := range rows {
		for c, v := range r.row {
			cols[c] = append(cols[c], v)
		}
	}
	args := []any{
		strs(cols[0]), strs(cols[1]), strs(cols[2]), strs(cols[3]), strs(cols[4]), strs(cols[5]), ints(cols[6]),
		strs(cols[7]), strs(cols[8]), times(cols[9]), strs(cols[10]), strs(cols[11]), strs(cols[12]), ints(cols[13]),
	}
	res, err := tx.QueryContext(ctx, bulkInsert, args...)
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
func (l *sqlLedger) bulkUpdate(ctx context.Context, tx store, updates []bulkDone) ([]int, error) {
	if len(updates) == 0 {
		return nil, nil
	}
	var ids []int64
	var runs, outcomes, shas, actors []string
	var ats []time.Time
	var lines []int64
	for _, u := range updates {
		ids, runs, outcomes = append(ids, u.id), append(runs, u.e.RunID), append(outcomes, string(u.e.Outcome))
		ats, shas = append(ats, recordedAt(u.e.At)), append(shas, u.e.InputSHA256)
		lines, actors = append(lines, int64(u.e.Line)), append(actors, u.e.Actor)
	}
	res, err := tx.QueryContext(ctx, bulkUpdate, ids, runs, outcomes, ats, shas, lines, actors)
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

func strs(vs []any) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.(string)
	}
	return out
}

func ints(vs []any) []int64 {
	out := make([]int64, len(vs))
	for i, v := range vs {
		out[i] = int64(v.(int))
	}
	return out
}

func times(vs []any) []time.Time {
	out := make([]time.Time, len(vs))
	for i, v := range vs {
		out[i] = v.(time.Time)
	}
	return out
}
