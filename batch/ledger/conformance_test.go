package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/userbatch/userbatch/batch"
)

// freshStore returns the DSN of a new, empty store that is removed when t ends.
type freshStore func(t testing.TB) string

// runConformance is the contract every Ledger store meets; sqlite_test.go and
// postgres_test.go run it against each.
func runConformance(t *testing.T, fresh freshStore) {
	tests := []struct {
		name string
		fn   func(*testing.T, freshStore)
	}{
		{"ClaimThenDone", testClaimThenDone},
		{"ClaimHeldByAnotherRun", testClaimHeldByAnotherRun},
		{"PendingOfCrashedRun", testPendingOfCrashedRun},
		{"Release", testRelease},
		{"DoneWithoutClaim", testDoneWithoutClaim},
		{"KeyFields", testKeyFields},
		{"RejectsIncompleteEntries", testRejectsIncompleteEntries},
		{"History", testHistory},
		{"HistoryStopsOnError", testHistoryStopsOnError},
		{"MigrateAndReopen", testMigrateAndReopen},
		{"RefusesNewerSchema", testRefusesNewerSchema},
		{"ConcurrentOpen", testConcurrentOpen},
		{"ConcurrentClaims", testConcurrentClaims},
		{"Close", testClose},
		{"Supersede", testSupersede},
		{"MigrateFromVersion1", testMigrateFromVersion1},
		{"ScheduleRunsOnce", testScheduleRunsOnce},
		{"SameUserByIdentity", testSameUserByIdentity},
		{"ConcurrentClaimsAfterSupersede", testConcurrentClaimsAfterSupersede},
		{"ApplyAnswersEachStep", testApplyAnswersEachStep},
		{"ApplySeesEarlierSteps", testApplySeesEarlierSteps},
		{"ApplyKeepsText", testApplyKeepsText},
		{"ApplyRejectsIncompleteSteps", testApplyRejectsIncompleteSteps},
		{"ConcurrentApplyOverlapping", testConcurrentApplyOverlapping},
		{"BatcherClaimsAheadInOneWrite", testBatcherClaimsAheadInOneWrite},
		{"BatcherReleasesUnasked", testBatcherReleasesUnasked},
		{"BatcherUserRowsInOrder", testBatcherUserRowsInOrder},
		{"BatcherLost", testBatcherLost},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, fresh) })
	}
}

var t0 = time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC)

func entry(user string, a batch.Action, run string) Entry {
	return Entry{
		Key:         Key{Target: "shop-eu", User: user, UserKey: user, Action: a},
		RunID:       run,
		At:          t0,
		InputSHA256: strings.Repeat("ab", 32),
		Line:        7,
	}
}

func mustOpen(t testing.TB, dsn string) Ledger {
	t.Helper()
	l, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustClaim(t *testing.T, l Ledger, e Entry) *Entry {
	t.Helper()
	prev, err := l.Claim(context.Background(), e)
	if err != nil {
		t.Fatalf("Claim(%s): %v", e.Key, err)
	}
	return prev
}

func history(t *testing.T, l Ledger, f Filter) []Entry {
	t.Helper()
	var got []Entry
	if err := l.History(context.Background(), f, func(e Entry) error { got = append(got, e); return nil }); err != nil {
		t.Fatalf("History: %v", err)
	}
	return got
}

func sameEntry(t *testing.T, what string, got *Entry, want Entry) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: no entry, want %+v", what, want)
	}
	if !got.At.Equal(want.At) || !got.EffectiveAt.Equal(want.EffectiveAt) {
		t.Errorf("%s: at %v effective %v, want %v and %v", what, got.At, got.EffectiveAt, want.At, want.EffectiveAt)
	}
	g, w := *got, want
	g.At, w.At, g.EffectiveAt, w.EffectiveAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if g != w {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

func testClaimThenDone(t *testing.T, fresh freshStore) {
	ctx := context.Background()
	l := mustOpen(t, fresh(t))
	e := entry("alice", batch.ToggleStatus, "run-a")
	if prev := mustClaim(t, l, e); prev != nil {
		t.Fatalf("first Claim returned %+v, want nil", prev)
	}
	pending := e
	pending.State = Pending
	got := history(t, l, Filter{})
	if len(got) != 1 {
		t.Fatalf("history after Claim: %d entries, want 1", len(got))
	}
	sameEntry(t, "after Claim", &got[0], pending)

	done := e
	done.Outcome, done.At = batch.Applied, t0.Add(1500*time.Millisecond)
	if err := l.Done(ctx, done); err != nil {
		t.Fatalf("Done: %v", err)
	}
	done.State = Done
	for _, run := range []string{"run-b", "run-a"} {
		again := e
		again.RunID, again.Line = run, 99
		sameEntry(t, "Claim by "+run+" after Done", mustClaim(t, l, again), done)
	}
}

func testClaimHeldByAnotherRun(t *testing.T, fresh freshStore) {
	ctx := context.Background()
	l := mustOpen(t, fresh(t))
	a := entry("bob", batch.Disable, "run-a")
	mustClaim(t, l, a)
	b := a
	b.RunID, b.Line = "run-b", 12
	want := a
	want.State = Pending
	sameEntry(t, "Claim by run-b", mustClaim(t, l, b), want)

	b.Outcome = batch.Applied
	if err := l.Done(ctx, b); !errors.Is(err, ErrHeld) {
		t.Fatalf("Done by run-b of run-a's key: %v, want ErrHeld", err)
	} else if !strings.Contains(err.Error(), "run-a") {
		t.Errorf("ErrHeld should name the holder: %v", err)
	}
	if err := l.Release(ctx, b); err != nil {
		t.Fatalf("Release by run-b: %v", err)
	}
	got := history(t, l, Filter{})
	if len(got) != 1 {
		t.Fatalf("history: %d entries, want 1", len(got))
	}
	sameEntry(t, "after run-b's Done and Release", &got[0], want)
}

func testPendingOfCrashedRun(t *testing.T, fresh freshStore) {
	dsn := fresh(t)
	crashed, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	a := entry("carol", batch.ToggleStatus, "run-crashed")
	mustClaim(t, crashed, a)
	crashed.Close() // neither Done nor Release: the request may have been sent

	next := mustOpen(t, dsn)
	b := a
	b.RunID = "run-next"
	want := a
	want.State = Pending
	sameEntry(t, "Claim after a crash", mustClaim(t, next, b), want)
}

func testRelease(t *testing.T, fresh freshStore) {
	ctx := context.Background()
	l := mustOpen(t, fresh(t))
	a := entry("dave", batch.Enable, "run-a")
	if err := l.Release(ctx, a); err != nil {
		t.Fatalf("Release of nothing: %v", err)
	}
	mustClaim(t, l, a)
	if err := l.Release(ctx, a); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if got := history(t, l, Filter{}); len(got) != 0 {
		t.Fatalf("history after Release: %+v, want none", got)
	}
	b := a
	b.RunID = "run-b"
	if prev := mustClaim(t, l, b); prev != nil {
		t.Fatalf("Claim after Release returned %+v, want nil", prev)
	}

	b.Outcome = batch.Already
	if err := l.Done(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx, b); err != nil {
		t.Fatalf("Release of a done entry: %v", err)
	}
	if got := history(t, l, Filter{}); len(got) != 1 || got[0].State != Done || got[0].Outcome != batch.Already {
		t.Fatalf("Release removed or changed a done entry: %+v", got)
	}
}

func testDoneWithoutClaim(t *testing.T, fresh freshStore) {
	ctx := context.Background()
	l := mustOpen(t, fresh(t))
	e := entry("erin", batch.Disable, "run-a")
	e.Outcome = batch.Already
	if err := l.Done(ctx, e); err != nil {
		t.Fatalf("Done without Claim: %v", err)
	}
	e.Outcome, e.At = batch.Applied, t0.Add(time.Minute)
	if err := l.Done(ctx, e); err != nil {
		t.Fatalf("Done again by the same run: %v", err)
	}
	want := e
	want.State = Done
	got := history(t, l, Filter{})
	if len(got) != 1 {
		t.Fatalf("history: %d entries, want 1", len(got))
	}
	sameEntry(t, "after two Dones", &got[0], want)

	for _, o := range []batch.Outcome{batch.Failed, batch.Unknown, ""} {
		bad := entry("erin2", batch.Disable, "run-a")
		bad.Outcome = o
		if err := l.Done(ctx, bad); err == nil {
			t.Errorf("Done with outcome %q: no error", o)
		}
	}
}

// testKeyFields: every field of Key tells changes apart, and one instant in
// two zones is one key.
func testKeyFields(t *testing.T, fresh freshStore) {
	l := mustOpen(t, fresh(t))
	day1 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	base := entry("frank", batch.DowngradeRole, "run-a")
	base.Role = "Customer"
	variants := []func(*Entry){
		func(e *Entry) {},
		func(e *Entry) { e.EffectiveAt = day1 },
		func(e *Entry) { e.EffectiveAt = day1.AddDate(0, 0, 1) },
		func(e *Entry) { e.EffectiveAt = day1.Add(time.Nanosecond) },
		func(e *Entry) { e.Role = "Preferred Customer" },
		func(e *Entry) { e.Action = batch.UpgradeRole },
		func(e *Entry) { e.Target = "shop-us" },
		func(e *Entry) { e.User, e.UserKey = "Frank", "Frank" },
	}
	for i, v := range variants {
		e := base
		v(&e)
		if prev := mustClaim(t, l, e); prev != nil {
			t.Errorf("variant %d (%s) met %s", i, e.Key, prev.Key)
		}
	}
	tokyo := time.FixedZone("JST", 9*3600)
	same := base
	same.EffectiveAt, same.RunID = day1.In(tokyo), "run-b"
	prev := mustClaim(t, l, same)
	if prev == nil || prev.RunID != "run-a" || !prev.EffectiveAt.Equal(day1) {
		t.Fatalf("day 1 given in JST: got %+v, want run-a's entry due %v", prev, day1)
	}
	if prev.EffectiveAt.Location() != time.UTC || prev.At.Location() != time.UTC {
		t.Errorf("times not returned in UTC: %v, %v", prev.EffectiveAt, prev.At)
	}
	if got := history(t, l, Filter{}); len(got) != len(variants) {
		t.Errorf("history: %d entries, want %d", len(got), len(variants))
	}
}

func testRejectsIncompleteEntries(t *testing.T, fresh freshStore) {
	ctx := context.Background()
	l := mustOpen(t, fresh(t))
	good := entry("gina", batch.Disable, "run-a")
	bad := map[string]func(*Entry){
		"no target": func(e *Entry) { e.Target = "" },
		"no user":   func(e *Entry) { e.User = "" },
		"no action": func(e *Entry) { e.Action = "" },
		"no run id": func(e *Entry) { e.RunID = "" },
	}
	for name, f := range bad {
		e := good
		f(&e)
		e.Outcome = batch.Applied
		if _, err := l.Claim(ctx, e); err == nil {
			t.Errorf("Claim with %s: no error", name)
		}
		if err := l.Done(ctx, e); err == nil {
			t.Errorf("Done with %s: no error", name)
		}
		if err := l.Release(ctx, e); err == nil {
			t.Errorf("Release with %s: no error", name)
		}
	}
	if got := history(t, l, Filter{}); len(got) != 0 {
		t.Fatalf("incomplete entries were recorded: %+v", got)
	}
}

func testHistory(t *testing.T, fresh freshStore) {
	ctx := context.Background()
	l := mustOpen(t, fresh(t))
	// Recorded out of time order, two at the same instant, one pending.
	specs := []struct {
		target, user string
		at           time.Duration
		done         bool
	}{
		{"shop-eu", "alice", 3 * time.Hour, true},
		{"shop-eu", "bob", 1 * time.Hour, true},
		{"admin", "alice", 2 * time.Hour, true},
		{"shop-eu", "carol", 2 * time.Hour, true},
		{"admin", "alice-2", 4 * time.Hour, false},
		{"shop-eu", "alice", 90 * time.Minute, true}, // alice again, another action
	}
	for i, s := range specs {
		e := entry(s.user, batch.Disable, fmt.Sprintf("run-%d", i))
		if i == len(specs)-1 {
			e.Action = batch.Enable
		}
		e.Target, e.Line, e.At = s.target, i+2, t0.Add(s.at)
		mustClaim(t, l, e)
		if s.done {
			e.Outcome = batch.Applied
			if err := l.Done(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	lines := func(f Filter) string {
		var s []string
		for _, e := range history(t, l, f) {
			s = append(s, fmt.Sprint(e.Line))
		}
		return strings.Join(s, " ")
	}
	cases := []struct {
		name string
		f    Filter
		want string // lines, oldest first; ties in insertion order
	}{
		{"all", Filter{}, "3 7 4 5 2 6"},
		{"user", Filter{User: "alice"}, "7 4 2"},
		{"target", Filter{Target: "admin"}, "4 6"},
		{"user and target", Filter{User: "alice", Target: "shop-eu"}, "7 2"},
		{"since, inclusive", Filter{Since: t0.Add(2 * time.Hour)}, "4 5 2 6"},
		{"since, in another zone", Filter{Since: t0.Add(2 * time.Hour).In(time.FixedZone("X", -5*3600))}, "4 5 2 6"},
		{"since, a nanosecond later", Filter{Since: t0.Add(2*time.Hour + time.Nanosecond)}, "2 6"},
		{"since and user", Filter{User: "alice", Since: t0.Add(100 * time.Minute)}, "4 2"},
		{"no match", Filter{User: "nobody"}, ""},
	}
	for _, c := range cases {
		if got := lines(c.f); got != c.want {
			t.Errorf("%s: lines %q, want %q", c.name, got, c.want)
		}
	}
	for _, e := range history(t, l, Filter{Target: "admin"}) {
		wantState := Done
		if e.User == "alice-2" {
			wantState = Pending
		}
		if e.State != wantState {
			t.Errorf("%s: state %s, want %s", e.User, e.State, wantState)
		}
	}
}

func testHistoryStopsOnError(t *testing.T, fresh freshStore) {
	l := mustOpen(t, fresh(t))
	for _, u := range []string{"u1", "u2", "u3"} {
		mustClaim(t, l, entry(u, batch.Disable, "run-a"))
	}
	stop := errors.New("stop")
	calls := 0
	err := l.History(context.Background(), Filter{}, func(Entry) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("History with a failing fn: err %v after %d calls, want stop after 1", err, calls)
	}
}

// rawVersion reads the schema version behind l.
func rawVersion(t testing.TB, l Ledger) int {
	t.Helper()
	var v int
	if err := l.(*sqlLedger).db.QueryRow("SELECT version FROM " + schemaTable).Scan(&v); err != nil {
		t.Fatalf("read schema version: %v", err)
	}
	return v
}

func testMigrateAndReopen(t *testing.T, fresh freshStore) {
	dsn := fresh(t)
	l := mustOpen(t, dsn)
	if v, want := rawVersion(t, l), len(l.(*sqlLedger).d.migrations); v != want {
		t.Fatalf("fresh store at schema version %d, want %d", v, want)
	}
	e := entry("hank", batch.Disable, "run-a")
	e.Outcome = batch.Applied
	if err := l.Done(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	l.Close()
	again := mustOpen(t, dsn)
	if v := rawVersion(t, again); v != len(again.(*sqlLedger).d.migrations) {
		t.Fatalf("re-opened store at schema version %d", v)
	}
	if got := history(t, again, Filter{}); len(got) != 1 || got[0].User != "hank" || got[0].State != Done {
		t.Fatalf("re-opened store holds %+v, want hank's done entry", got)
	}
}

func testRefusesNewerSchema(t *testing.T, fresh freshStore) {
	dsn := fresh(t)
	l := mustOpen(t, dsn)
	newer := len(l.(*sqlLedger).d.migrations) + 1
	if _, err := l.(*sqlLedger).db.Exec(fmt.Sprintf("UPDATE %s SET version = %d", schemaTable, newer)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	_, err := Open(context.Background(), dsn)
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open of a newer schema: %v, want ErrNewerSchema", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("version %d", newer)) || !strings.Contains(err.Error(), "newer userbatch") {
		t.Errorf("the refusal should say the version found and what to do: %v", err)
	}
}

func testConcurrentOpen(t *testing.T, fresh freshStore) {
	dsn := fresh(t)
	const n = 4
	ledgers := make([]Ledger, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ledgers[i], errs[i] = Open(context.Background(), dsn) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("concurrent Open %d: %v", i, errs[i])
		}
		defer ledgers[i].Close()
	}
	if v := rawVersion(t, ledgers[0]); v != len(ledgers[0].(*sqlLedger).d.migrations) {
		t.Fatalf("schema version %d after concurrent Opens", v)
	}
	mustClaim(t, ledgers[n-1], entry("ivy", batch.Disable, "run-a"))
	if got := history(t, ledgers[0], Filter{}); len(got) != 1 {
		t.Fatalf("one store expected behind every Open: %+v", got)
	}
}

// testConcurrentClaims: two Ledger instances (two processes) with two
// goroutines each claim the same keys at once; exactly one Claim wins each.
func testConcurrentClaims(t *testing.T, fresh freshStore) {
	dsn := fresh(t)
	instances := []Ledger{mustOpen(t, dsn), mustOpen(t, dsn)}
	const keys, perInstance = 40, 2
	wins := make([][]string, keys) // run ids of the winners of each key
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, l := range instances {
		for g := range perInstance {
			run := fmt.Sprintf("run-%d-%d", i, g)
			wg.Go(func() {
				<-start
				for k := range keys {
					e := entry(fmt.Sprintf("user-%d", k), batch.ToggleStatus, run)
					prev, err := l.Claim(context.Background(), e)
					if err != nil {
						t.Errorf("%s: Claim: %v", run, err)
						return
					}
					if prev == nil {
						mu.Lock()
						wins[k] = append(wins[k], run)
						mu.Unlock()
					}
				}
			})
		}
	}
	close(start)
	wg.Wait()
	checkWinners(t, instances[0], wins)
}

// checkWinners checks that each key user-<k> had exactly one winner,
// wins[k], and that the ledger holds that run's entry, and only it.
func checkWinners(t *testing.T, l Ledger, wins [][]string) {
	t.Helper()
	holders := map[string]string{}
	for _, e := range history(t, l, Filter{}) {
		if _, dup := holders[e.User]; dup {
			t.Errorf("%s: two entries", e.User)
		}
		holders[e.User] = e.RunID
	}
	for k, w := range wins {
		user := fmt.Sprintf("user-%d", k)
		if len(w) != 1 {
			t.Errorf("%s: %d winners %v, want exactly 1", user, len(w), w)
			continue
		}
		if holders[user] != w[0] {
			t.Errorf("%s: the ledger holds run %q, the winner was %q", user, holders[user], w[0])
		}
	}
}

func testClose(t *testing.T, fresh freshStore) {
	l, err := Open(context.Background(), fresh(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close again: %v", err)
	}
	if _, err := l.Claim(context.Background(), entry("jo", batch.Disable, "run-a")); err == nil {
		t.Fatal("Claim after Close: no error")
	}
}

// done records e as applied by its run.
func done(t *testing.T, l Ledger, e Entry) {
	t.Helper()
	if prev := mustClaim(t, l, e); prev != nil {
		t.Fatalf("Claim(%s) by %s met %s's entry", e.Key, e.RunID, prev.RunID)
	}
	e.Outcome = batch.Applied
	if err := l.Done(context.Background(), e); err != nil {
		t.Fatalf("Done(%s): %v", e.Key, err)
	}
}

// A leaver's disable, a rehire's enable, a second leave: the enable
// supersedes the first disable, so the second is a new change, and then
// answers for the key itself.
func testSupersede(t *testing.T, fresh freshStore) {
	ctx := context.Background()
	l := mustOpen(t, fresh(t))
	leave := entry("leo", batch.Disable, "run-1")
	leave.Actor = "ops@host1"
	done(t, l, leave)
	again := leave
	again.RunID = "run-1b"
	if prev := mustClaim(t, l, again); prev == nil || prev.RunID != "run-1" || prev.Actor != "ops@host1" {
		t.Fatalf("before the rehire: %+v, want run-1's entry with its actor", prev)
	}
	rehire := entry("leo", batch.Enable, "run-2")
	done(t, l, rehire)
	if prev, err := l.Lookup(ctx, leave.Key); err != nil || prev != nil {
		t.Fatalf("Lookup of the first leave after the rehire: %+v, %v; want nil (superseded)", prev, err)
	}
	second := entry("leo", batch.Disable, "run-3")
	done(t, l, second)
	third := entry("leo", batch.Disable, "run-4")
	if prev := mustClaim(t, l, third); prev == nil || prev.RunID != "run-3" {
		t.Fatalf("after the second leave: %+v, want run-3's entry", prev)
	}
	// The rehire's enable is itself superseded by the second leave.
	if prev, err := l.Lookup(ctx, rehire.Key); err != nil || prev != nil {
		t.Fatalf("Lookup of the rehire after the second leave: %+v, %v; want nil", prev, err)
	}
	var runs []string
	for _, e := range history(t, l, Filter{User: "leo"}) {
		runs = append(runs, e.RunID+":"+string(e.Action))
	}
	if got, want := strings.Join(runs, " "), "run-1:disable run-2:enable run-3:disable"; got != want {
		t.Errorf("history: %s, want %s", got, want)
	}
	// A pending entry of another action supersedes nothing: its change may
	// not have happened.
	pendingUser := entry("mia", batch.Disable, "run-1")
	done(t, l, pendingUser)
	mustClaim(t, l, entry("mia", batch.Enable, "run-2"))
	if prev := mustClaim(t, l, entry("mia", batch.Disable, "run-3")); prev == nil || prev.RunID != "run-1" {
		t.Errorf("after a pending enable: %+v, want run-1's disable", prev)
	}
}

// Cells that name one user (UserKey equal) share one history of changes.
func testSameUserByIdentity(t *testing.T, fresh freshStore) {
	l := mustOpen(t, fresh(t))
	first := entry("LOGIN_NAME:leo", batch.Disable, "run-1")
	first.UserKey = "leo"
	done(t, l, first)
	spelled := entry("LOGIN_NAME:Leo", batch.Disable, "run-2")
	spelled.UserKey = "leo"
	if prev := mustClaim(t, l, spelled); prev == nil || prev.RunID != "run-1" {
		t.Fatalf("another spelling of the same user: %+v, want run-1's entry", prev)
	}
	rehire := entry("leo", batch.Enable, "run-2")
	done(t, l, rehire)
	if prev := mustClaim(t, l, spelled); prev != nil {
		t.Fatalf("after the rehire spelled another way: %+v, want a new claim", prev)
	}
}

func testConcurrentClaimsAfterSupersede(t *testing.T, fresh freshStore) {
	dsn := fresh(t)
	l := mustOpen(t, dsn)
	done(t, l, entry("nia", batch.Disable, "run-1"))
	done(t, l, entry("nia", batch.Enable, "run-2"))
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prev, err := mustOpen(t, dsn).Claim(context.Background(), entry("nia", batch.Disable, fmt.Sprintf("run-x%d", i)))
			if err != nil {
				t.Error(err)
				return
			}
			if prev == nil {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d concurrent claims of the superseded change won, want exactly 1", won)
	}
}

// A store written by a userbatch of schema version 1 opens, keeps its
// entries (their cell as identity, no actor), and keeps answering for them.
func testMigrateFromVersion1(t *testing.T, fresh freshStore) {
	ctx := context.Background()
	dsn := fresh(t)
	l := mustOpen(t, dsn)
	sl := l.(*sqlLedger)
	// Rebuild the store as version 1 left it.
	if _, err := sl.db.Exec("DROP TABLE " + table); err != nil {
		t.Fatal(err)
	}
	if _, err := sl.db.Exec("DROP TABLE " + schemaTable); err != nil {
		t.Fatal(err)
	}
	v1 := *sl.d
	v1.migrations = v1.migrations[:1]
	if err := migrate(ctx, sl.db, &v1); err != nil {
		t.Fatal(err)
	}
	insert := "INSERT INTO " + table + " (target, user_id, action, role, effective_at, state, outcome, recorded_at, run_id, input_sha256, line) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	if sl.d.dollar {
		insert = rebind(insert)
	}
	for _, u := range []string{"LOGIN_NAME:leo", "LOGIN_NAME:Leo"} {
		if _, err := sl.db.Exec(insert, "shop-eu", u, "disable", "", "", "done", "applied", sl.d.timeArg(t0), "run-old", "", 3); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()

	again := mustOpen(t, dsn)
	if v := rawVersion(t, again); v != len(again.(*sqlLedger).d.migrations) {
		t.Fatalf("migrated store at schema version %d", v)
	}
	e := entry("LOGIN_NAME:leo", batch.Disable, "run-new")
	e.UserKey = "leo"
	if prev := mustClaim(t, again, e); prev == nil || prev.RunID != "run-old" || prev.Actor != "" || prev.User != "LOGIN_NAME:leo" {
		t.Fatalf("the old entry after migration: %+v, want run-old's", prev)
	}
	done(t, again, entry("LOGIN_NAME:leo", batch.Enable, "run-new"))
	if prev := mustClaim(t, again, e); prev != nil {
		t.Fatalf("after a rehire recorded by the new version: %+v, want a new claim", prev)
	}
	if got := history(t, again, Filter{}); len(got) != 4 {
		t.Errorf("history after migration: %d entries, want 4", len(got))
	}
}

// A file holding a dated leave and a later dated rehire, run every night:
// once both are done, neither is sent again.
func testScheduleRunsOnce(t *testing.T, fresh freshStore) {
	l := mustOpen(t, fresh(t))
	leave := entry("ola", batch.Disable, "night-1")
	leave.EffectiveAt = t0
	rehire := entry("ola", batch.Enable, "night-10")
	rehire.EffectiveAt = t0.AddDate(0, 0, 9)
	done(t, l, leave)
	done(t, l, rehire)
	for _, e := range []Entry{leave, rehire} {
		e.RunID = "night-11"
		if prev := mustClaim(t, l, e); prev == nil || prev.State != Done {
			t.Errorf("night 11, %s: %+v, want the done entry", e.Key, prev)
		}
	}
	// An undated change recorded later supersedes the dated leave.
	done(t, l, entry("ola", batch.Enable, "undo"))
	again := leave
	again.RunID = "night-12"
	if prev := mustClaim(t, l, again); prev != nil {
		t.Errorf("after an undated enable: %+v, want a new claim", prev)
	}
}
