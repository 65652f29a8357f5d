package ledger

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/userbatch/userbatch/batch"
)

func mustApply(t *testing.T, l Ledger, steps ...Step) []*Entry {
	t.Helper()
	answers, err := l.Apply(context.Background(), steps)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(answers) != len(steps) {
		t.Fatalf("Apply: %d answers for %d steps", len(answers), len(steps))
	}
	return answers
}

func applied(e Entry) Entry {
	e.Outcome = batch.Applied
	return e
}

// One transaction answers each step as its method would: a claim of a free
// key takes it, a claim of a held key returns the holder, a done of a key
// another run holds returns it and records nothing, a release drops the
// run's own pending entry.
func testApplyAnswersEachStep(t *testing.T, fresh freshStore) {
	l := mustOpen(t, fresh(t))
	other := entry("ana", batch.Disable, "run-a")
	mustClaim(t, l, other)
	answers := mustApply(t, l,
		Step{Kind: StepClaim, Entry: entry("bo", batch.Disable, "run-b")},
		Step{Kind: StepClaim, Entry: entry("ana", batch.Disable, "run-b")},
		Step{Kind: StepDone, Entry: applied(entry("ana", batch.Disable, "run-b"))},
		Step{Kind: StepClaim, Entry: entry("cy", batch.Disable, "run-b")},
		Step{Kind: StepRelease, Entry: entry("cy", batch.Disable, "run-b")},
		Step{Kind: StepDone, Entry: applied(entry("di", batch.Enable, "run-b"))},
	)
	if answers[0] != nil || answers[3] != nil || answers[4] != nil || answers[5] != nil {
		t.Errorf("answers %v: want nil for the free claims, the release and the done", answers)
	}
	for _, i := range []int{1, 2} {
		if answers[i] == nil || answers[i].RunID != "run-a" || answers[i].State != Pending {
			t.Errorf("step %d on run-a's key: answer %+v, want run-a's pending entry", i, answers[i])
		}
	}
	got := map[string]Entry{}
	for _, e := range history(t, l, Filter{}) {
		got[e.User] = e
	}
	if len(got) != 3 || got["ana"].RunID != "run-a" || got["bo"].State != Pending || got["di"].State != Done {
		t.Errorf("after Apply: %+v; want ana run-a's, bo pending, di done, cy released", got)
	}
}

// A step sees the steps before it in the same transaction: a rehire's
// enable recorded done supersedes the leaver's disable of an earlier run,
// so the next disable in the same Apply is a new change.
func testApplySeesEarlierSteps(t *testing.T, fresh freshStore) {
	l := mustOpen(t, fresh(t))
	done(t, l, entry("leo", batch.Disable, "run-1"))
	answers := mustApply(t, l,
		Step{Kind: StepClaim, Entry: entry("leo", batch.Enable, "run-2")},
		Step{Kind: StepDone, Entry: applied(entry("leo", batch.Enable, "run-2"))},
		Step{Kind: StepClaim, Entry: entry("leo", batch.Disable, "run-2")},
	)
	if answers[0] != nil || answers[2] != nil {
		t.Fatalf("answers %v: the enable and the disable after it are new changes", answers)
	}
	if prev := mustClaim(t, l, entry("leo", batch.Disable, "run-3")); prev == nil || prev.RunID != "run-2" {
		t.Errorf("a later claim of the disable: %+v, want run-2's claim", prev)
	}
}

func testApplyRejectsIncompleteSteps(t *testing.T, fresh freshStore) {
	l := mustOpen(t, fresh(t))
	noOutcome := entry("mo", batch.Disable, "run-a")
	for _, steps := range [][]Step{
		{{Kind: StepClaim, Entry: entry("mo", batch.Disable, "run-a")}, {Kind: StepClaim, Entry: entry("", batch.Disable, "run-a")}},
		{{Kind: StepClaim, Entry: entry("mo", batch.Disable, "run-a")}, {Kind: StepDone, Entry: noOutcome}},
		{{Kind: StepKind(9), Entry: entry("mo", batch.Disable, "run-a")}},
	} {
		if _, err := l.Apply(context.Background(), steps); err == nil {
			t.Errorf("Apply(%+v): no error", steps)
		}
	}
	if got := history(t, l, Filter{}); len(got) != 0 {
		t.Errorf("a refused Apply recorded %+v", got)
	}
}

// testConcurrentApplyOverlapping: two Ledger instances (two processes'
// connections) claim overlapping batches covering every key at once, in
// opposite orders; each key is won by exactly one claim, the one the store
// holds.
func testConcurrentApplyOverlapping(t *testing.T, fresh freshStore) {
	dsn := fresh(t)
	instances := []Ledger{mustOpen(t, dsn), mustOpen(t, dsn)}
	const keys, batchSize, rounds = 60, 20, 4
	wins := make([][]string, keys)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, l := range instances {
		for g := range 2 {
			run := fmt.Sprintf("run-%d-%d", i, g)
			wg.Go(func() {
				<-start
				for r := range rounds {
					// Each claim overlaps the others' by half a batch,
					// and runs 1 go down the keys while 0 goes up.
					var steps []Step
					for j := range batchSize {
						k := (r*batchSize/2 + j + g*batchSize/2) % keys
						if i == 1 {
							k = keys - 1 - k
						}
						steps = append(steps, Step{Kind: StepClaim, Entry: entry(fmt.Sprintf("user-%d", k), batch.ToggleStatus, run)})
					}
					answers, err := l.Apply(context.Background(), steps)
					if err != nil {
						t.Errorf("%s: Apply: %v", run, err)
						return
					}
					mu.Lock()
					for j, a := range answers {
						if a == nil {
							var k int
							fmt.Sscanf(steps[j].Entry.User, "user-%d", &k)
							wins[k] = append(wins[k], run)
						}
					}
					mu.Unlock()
				}
			})
		}
	}
	close(start)
	wg.Wait()
	checkWinners(t, instances[0], wins) // the batches cover every key
}

// Apply stores text as the per-step methods do, whatever it holds: quotes,
// backslashes, brackets and non-ASCII letters pass through the bulk
// statements' arguments unchanged, and later steps and look-ups find them.
func testApplyKeepsText(t *testing.T, fresh freshStore) {
	applyKeepsText(t, mustOpen(t, fresh(t)), `o"brien\]},[{`, "zoë 日本", `role "a\b"`)
}

func applyKeepsText(t *testing.T, l Ledger, users ...string) {
	t.Helper()
	var steps []Step
	for _, u := range users {
		e := entry(u, batch.Disable, "run-a")
		e.Role, e.Actor = u, u
		steps = append(steps, Step{Kind: StepClaim, Entry: e})
	}
	mustApply(t, l, steps...)
	for i := range steps {
		steps[i].Kind, steps[i].Entry.Outcome = StepDone, batch.Applied
	}
	if answers := mustApply(t, l, steps...); slices.ContainsFunc(answers, func(e *Entry) bool { return e != nil }) {
		t.Fatalf("done of the run's own claims: answers %v, want none held by another", answers)
	}
	var stored []string
	for _, e := range history(t, l, Filter{}) {
		stored = append(stored, e.User)
	}
	if slices.Sort(stored); !slices.Equal(stored, slices.Sorted(slices.Values(users))) {
		t.Errorf("History holds users %q, want %q, each once", stored, users)
	}
	for _, s := range steps {
		got, err := l.Lookup(context.Background(), s.Entry.Key)
		if err != nil || got == nil || got.User != s.Entry.User || got.Role != s.Entry.Role || got.Actor != s.Entry.Actor || got.State != Done {
			t.Errorf("Lookup(%q) = %+v, %v; want the done entry with the text as given", s.Entry.User, got, err)
		}
		again := s.Entry
		again.RunID = "run-b"
		if answers := mustApply(t, l, Step{Kind: StepClaim, Entry: again}); answers[0] == nil || answers[0].RunID != "run-a" {
			t.Errorf("claim of %q by another run: answer %+v, want run-a's entry", s.Entry.User, answers[0])
		}
	}
}
