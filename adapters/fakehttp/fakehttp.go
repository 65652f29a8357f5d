// Package fakehttp holds what the fake vendor servers share. Injector injects
// faults: latency, error statuses, 429 with Retry-After, connection resets
// before a request is processed, and connections dropped after it was. A fake
// parses a request, asks Before whether to go on, changes its state, and asks
// After whether to answer. Users is a fake's table of user states and the
// writes each received. Fakes share these and nothing else: each is written
// from its vendor's contract alone.
package fakehttp

import (
	"net/http"
	"sync"
	"time"
)

// Fault is one injected misbehaviour.
type Fault struct {
	// Status, when set, is answered instead of processing the request.
	Status int
	// RetryAfter is sent as the Retry-After header with Status.
	RetryAfter string
	// Body is sent with Status (default: empty).
	Body string
	// Reset drops the connection before the request is processed.
	Reset bool
	// DropAfter processes the request, then drops the connection unanswered.
	DropAfter bool
	// Delay holds the answer back this long (or until the client gives up).
	Delay time.Duration
}

// Rule applies Fault to matching requests.
type Rule struct {
	// User matches the request's user id; empty matches every user.
	User string
	// Method matches the HTTP method; empty matches every method.
	Method string
	// Times is how many matching requests get the fault; 0 means all of them.
	Times int
	Fault Fault
}

// Injector holds the rules of one fake. The zero value injects nothing.
type Injector struct {
	mu      sync.Mutex
	rules   []*Rule
	latency time.Duration
}

// Add appends a rule. Rules are tried in order; the first match wins.
func (in *Injector) Add(r Rule) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules = append(in.rules, &r)
}

// Reset removes every rule and the latency.
func (in *Injector) Reset() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules = nil
	in.latency = 0
}

// SetLatency delays every answer by d.
func (in *Injector) SetLatency(d time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.latency = d
}

// match finds and consumes the first rule for (user, method).
func (in *Injector) match(user, method string) (Fault, time.Duration, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i, r := range in.rules {
		if (r.User != "" && r.User != user) || (r.Method != "" && r.Method != method) {
			continue
		}
		f := r.Fault
		if r.Times > 0 {
			r.Times--
			if r.Times == 0 {
				in.rules = append(in.rules[:i:i], in.rules[i+1:]...)
			}
		}
		return f, in.latency, true
	}
	return Fault{}, in.latency, false
}

// Before is called once the fake knows the request's user and before it
// changes any state. The fake must have read the request body to its end:
// net/http notices a client that hung up (ending a Delay early) only then. It returns a non-nil After when the fake should go on,
// and nil when the request was answered or dropped here.
func (in *Injector) Before(w http.ResponseWriter, r *http.Request, user string) *After {
	f, latency, ok := in.match(user, r.Method)
	if !wait(r, latency+f.Delay) {
		return nil
	}
	if !ok {
		return &After{}
	}
	switch {
	case f.Reset:
		drop(w)
		return nil
	case f.Status != 0:
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		w.WriteHeader(f.Status)
		_, _ = w.Write([]byte(f.Body))
		return nil
	}
	return &After{drop: f.DropAfter}
}

// After says what to do once the fake has processed a request.
type After struct{ drop bool }

// Answer reports whether the fake should write its answer. When it returns
// false the connection was dropped after the state changed.
func (a *After) Answer(w http.ResponseWriter) bool {
	if a.drop {
		drop(w)
		return false
	}
	return true
}

// wait holds the answer back for d, or until the client goes away.
func wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// drop closes the connection without an answer, as a crashed proxy would.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(interface{ SetLinger(int) error }); ok {
		_ = tcp.SetLinger(0) // RST, not FIN: a reset, as the name says
	}
	_ = conn.Close()
}
