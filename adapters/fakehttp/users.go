package fakehttp

import "sync"

// Users is a fake's table of users: each one's state, of type U, and how
// many writes it received. A fake decides what a write is: Users only counts
// the ones it is told about. It is safe for concurrent use.
type Users[U any] struct {
	autoCreate bool
	fresh      U

	mu    sync.Mutex
	users map[string]*entry[U]
}

// entry is one user of a Users table.
type entry[U any] struct {
	state  U
	writes int
}

// NewUsers returns a table with no users. With autoCreate, Update creates
// an unknown user in state fresh on first touch, as fakes do for load
// benchmarks; without it, Update leaves unknown users unknown. fresh is
// copied, so it should hold no pointers, maps or slices.
func NewUsers[U any](autoCreate bool, fresh U) *Users[U] {
	return &Users[U]{autoCreate: autoCreate, fresh: fresh, users: map[string]*entry[U]{}}
}

// Add creates or replaces user id in state st, with no writes counted.
func (t *Users[U]) Add(id string, st U) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.users[id] = &entry[U]{state: st}
}

// Get returns a snapshot of user id's state, and whether the user exists.
// It never creates a user.
func (t *Users[U]) Get(id string) (st U, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.users[id]
	if !ok {
		return st, false
	}
	return e.state, true
}

// Writes counts the writes user id received since it was added or created:
// 0 for an unknown user.
func (t *Users[U]) Writes(id string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.users[id]; ok {
		return e.writes
	}
	return 0
}

// Update runs fn on user id's state under the table's lock, counts a write
// when write is true, and returns the state after. An unknown user is first
// created in the fresh state when the table auto-creates; otherwise fn is
// not run, nothing is counted, and ok is false. A nil fn reads the user
// (creating it under auto-create) without changing it. fn runs under the
// lock, so a fake decides there what the state allows (a refusal, say),
// returning its verdict through a variable fn closes over; fn must not call
// the table.
func (t *Users[U]) Update(id string, write bool, fn func(st *U)) (st U, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.users[id]
	if !ok {
		if !t.autoCreate {
			return st, false
		}
		e = &entry[U]{state: t.fresh}
		t.users[id] = e
	}
	if fn != nil {
		fn(&e.state)
	}
	if write {
		e.writes++
	}
	return e.state, true
}
