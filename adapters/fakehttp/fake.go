package fakehttp

import "sync/atomic"

// Fake is what every vendor's fake holds: a fault injector, the users and
// a count of the requests received. A fake embeds it and adds its API.
type Fake[U any] struct {
	// Faults injects latency, error statuses, resets and drops.
	Faults Injector
	// Users are the fake's users.
	Users    *Users[U]
	requests atomic.Int64
}

// NewFake returns a Fake with no users; under autoCreate an unknown user
// springs into being as fresh.
func NewFake[U any](autoCreate bool, fresh U) *Fake[U] {
	return &Fake[U]{Users: NewUsers(autoCreate, fresh)}
}

// CountRequest counts one request received, before anything checks it.
func (f *Fake[U]) CountRequest() { f.requests.Add(1) }

// Requests counts every request received, rejected ones included.
func (f *Fake[U]) Requests() int { return int(f.requests.Load()) }

// User returns a snapshot of user id, and whether it exists.
func (f *Fake[U]) User(id string) (U, bool) { return f.Users.Get(id) }

// Writes counts the writes for id the fake processed (what counts is each
// vendor's: see its fake's doc).
func (f *Fake[U]) Writes(id string) int { return f.Users.Writes(id) }
