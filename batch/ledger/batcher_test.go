package ledger

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userbatch/userbatch/batch"
)

// countingLedger counts the transactions Apply writes.
type countingLedger struct {
	Ledger
	applies atomic.Int32
}

func (c *countingLedger) Apply(ctx context.Context, steps []Step) ([]*Entry, error) {
	c.applies.Add(1)
	return c.Ledger.Apply(ctx, steps)
}

func rowEntry(i int) Entry {
	e := entry(fmt.Sprintf("user-%d", i), batch.Disable, "run-b")
	e.Line = i + 2
	return e
}

func states(t *testing.T, l Ledger) map[string]State {
	t.Helper()
	m := map[string]State{}
	for _, e := range history(t, l, Filter{}) {
		m[e.User] = e.State
	}
	return m
}

func mustBatchClaim(t *testing.T, b *Batcher, id int, e Entry) *Entry {
	t.Helper()
	prev, err := b.Claim(context.Background(), id, e)
	if err != nil {
		t.Fatalf("Claim(%d): %v", id, err)
	}
	return prev
}

// The first claim of a run takes the rows expected after it in the same
// transaction; the claims after it are answered without writing.
func testBatcherClaimsAheadInOneWrite(t *testing.T, fresh freshStore) {
	l := &countingLedger{Ledger: mustOpen(t, fresh(t))}
	b := NewBatcher(l, 16, 16, time.Now)
	const n = 10
	for i := range n {
		b.Expect(i, rowEntry(i), true)
	}
	if prev := mustBatchClaim(t, b, 0, rowEntry(0)); prev != nil {
		t.Fatalf("Claim(0): %+v", prev)
	}
	if got := states(t, l); len(got) != n {
		t.Fatalf("after the first claim the store holds %v, want all %d rows pending", got, n)
	}
	for i := 1; i < n; i++ {
		if prev := mustBatchClaim(t, b, i, rowEntry(i)); prev != nil {
			t.Fatalf("Claim(%d): %+v", i, prev)
		}
	}
	if got := l.applies.Load(); got != 1 {
		t.Errorf("%d transactions for %d claims, want 1", got, n)
	}
	for i := range n {
		if err := b.Done(i, applied(rowEntry(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for u, s := range states(t, l) {
		if s != Done {
			t.Errorf("%s: %s after Close, want done", u, s)
		}
	}
}

// Rows claimed ahead that the run never sends are released: one it ended
// otherwise (Leave) at once, those it never reached (a stop) by Close.
// Another run then claims them.
func testBatcherReleasesUnasked(t *testing.T, fresh freshStore) {
	l := mustOpen(t, fresh(t))
	b := NewBatcher(l, 16, 16, time.Now)
	for i := range 6 {
		b.Expect(i, rowEntry(i), true)
	}
	mustBatchClaim(t, b, 0, rowEntry(0))
	if err := b.Done(0, applied(rowEntry(0))); err != nil {
		t.Fatal(err)
	}
	mustBatchClaim(t, b, 1, rowEntry(1))
	if err := b.Release(1, rowEntry(1)); err != nil { // failed: nothing sent
		t.Fatal(err)
	}
	b.Leave(2) // e.g. too late: never asked for
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := states(t, l); len(got) != 1 || got["user-0"] != Done {
		t.Fatalf("after Close the store holds %v, want only user-0 done", got)
	}
	later := rowEntry(3)
	later.RunID = "run-later"
	if prev := mustClaim(t, l, later); prev != nil {
		t.Errorf("a later run's claim of a row released: %+v", prev)
	}
	if _, err := b.Claim(context.Background(), 4, rowEntry(4)); err == nil {
		t.Error("Claim after Close: no error")
	}
}

// A user's second row is not claimed ahead of the first's record: a
// leaver's disable recorded supersedes yesterday's enable, so today's
// rehire enable after it is a new change, not "already".
func testBatcherUserRowsInOrder(t *testing.T, fresh freshStore) {
	l := mustOpen(t, fresh(t))
	done(t, l, entry("leo", batch.Enable, "run-yesterday"))
	b := NewBatcher(l, 16, 16, time.Now)
	leave, rehire := entry("leo", batch.Disable, "run-b"), entry("leo", batch.Enable, "run-b")
	b.Expect(0, leave, true)
	b.Expect(1, rehire, true)
	b.Expect(2, rowEntry(2), true)
	if prev := mustBatchClaim(t, b, 0, leave); prev != nil {
		t.Fatalf("the leave: %+v", prev)
	}
	if err := b.Done(0, applied(leave)); err != nil {
		t.Fatal(err)
	}
	if prev := mustBatchClaim(t, b, 1, rehire); prev != nil {
		t.Fatalf("the rehire after today's leave: %+v, want a new change", prev)
	}
	if prev := mustBatchClaim(t, b, 2, rowEntry(2)); prev != nil {
		t.Fatalf("row 2: %+v", prev)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Once a write fails, nothing more is claimed or sent: claims, even those
// made ahead, and records fail with the error, Close too; the run's entries
// stay pending for its resume.
func testBatcherLost(t *testing.T, fresh freshStore) {
	dsn := fresh(t)
	l, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBatcher(l, 16, 16, time.Now)
	for i := range 4 {
		b.Expect(i, rowEntry(i), true)
	}
	mustBatchClaim(t, b, 0, rowEntry(0))
	l.Close() // the store goes away
	if err := b.Done(0, applied(rowEntry(0))); err == nil {
		if err = b.flush(); err == nil {
			t.Fatal("writing to a closed store: no error")
		}
	}
	if _, err := b.Claim(context.Background(), 1, rowEntry(1)); err == nil {
		t.Error("Claim of a row claimed ahead, after the store failed: no error")
	}
	if err := b.Done(2, applied(rowEntry(2))); err == nil {
		t.Error("Done after the store failed: no error")
	}
	if err := b.Close(context.Background()); err == nil {
		t.Error("Close after the store failed: no error")
	}
	left := states(t, mustOpen(t, dsn))
	if len(left) != 4 {
		t.Errorf("the store holds %v, want the 4 rows claimed", left)
	}
	for u, s := range left {
		if s != Pending {
			t.Errorf("%s: %s, want pending (this run's, for its resume)", u, s)
		}
	}
}
