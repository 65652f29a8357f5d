// Package desklytest is a fake Deskly admin API, written from the
// vendor's description alone: POST /agents/{id}/disable with a JSON body
// {"handover_to": "<agent id>"} (required), POST /agents/{id}/enable,
// "Authorization: Bearer <token>".
package desklytest

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// Request is one change the fake accepted.
type Request struct {
	Agent, Verb, HandoverTo string
}

// Fake is the API. The zero value is not usable: call New.
type Fake struct {
	token string
	mu    sync.Mutex
	got   []Request
}

// New returns a fake that accepts token.
func New(token string) *Fake { return &Fake{token: token} }

// Requests returns the changes accepted so far, in order.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.got...)
}

func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		answer(w, http.StatusUnauthorized, "bad token")
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if r.Method != http.MethodPost || len(parts) != 3 || parts[0] != "agents" || (parts[2] != "disable" && parts[2] != "enable") {
		answer(w, http.StatusNotFound, "no such endpoint")
		return
	}
	var body struct {
		HandoverTo string `json:"handover_to"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		answer(w, http.StatusBadRequest, "body is not JSON")
		return
	}
	if parts[2] == "disable" && body.HandoverTo == "" {
		answer(w, http.StatusUnprocessableEntity, "handover_to is required")
		return
	}
	f.mu.Lock()
	f.got = append(f.got, Request{Agent: parts[1], Verb: parts[2], HandoverTo: body.HandoverTo})
	f.mu.Unlock()
	answer(w, http.StatusOK, "done")
}

func answer(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
