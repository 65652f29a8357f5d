// Package acmetest is a fake Acme HR, the made-up vendor of README's worked
// example (Add a vendor without Go), written from that example alone:
//
//	POST /v1/tenants/{tenant}/staff/{id}/suspend   → 200, or 409 already_in_state
//	POST /v1/tenants/{tenant}/staff/{id}/restore   → 200, or 409 already_in_state
//	GET  /v1/tenants/{tenant}/staff/{id}           → {"staff":{"id":…,"suspended":bool}}
//
// with `Authorization: Bearer <token>` and `X-Acme-Tenant`. Staff ids ignore
// case, and an id may be written staff:ID. Errors are {"error":{"code":…,"message":…}}. It is safe for
// concurrent use.
package acmetest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// Server is the fake.
type Server struct {
	Token, Tenant string

	mu       sync.Mutex
	users    map[string]bool // lower-case id → suspended
	writes   map[string]int
	notified map[string][]string
}

// New returns a fake accepting token for tenant, with no staff.
func New(token, tenant string) *Server {
	return &Server{Token: token, Tenant: tenant, users: map[string]bool{}, writes: map[string]int{}, notified: map[string][]string{}}
}

// AddUser creates or replaces staff member id.
func (s *Server) AddUser(id string, suspended bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[strings.ToLower(id)] = suspended
}

// Suspended reports a staff member's state; ok is false for an unknown id.
func (s *Server) Suspended(id string) (suspended, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	suspended, ok = s.users[strings.ToLower(id)]
	return suspended, ok
}

// Writes counts the changes processed for id.
func (s *Server) Writes(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes[strings.ToLower(id)]
}

// Notified lists the notify addresses sent with id's changes.
func (s *Server) Notified(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.notified[strings.ToLower(id)]...)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	if len(segs) < 5 || segs[0] != "v1" || segs[1] != "tenants" || segs[3] != "staff" {
		http.NotFound(w, r) // not Acme's answer: text, no error code
		return
	}
	tenant, err1 := url.PathUnescape(segs[2])
	id, err2 := url.PathUnescape(segs[4])
	if err1 != nil || err2 != nil {
		http.NotFound(w, r)
		return
	}
	if len(id) > len("staff:") && strings.EqualFold(id[:len("staff:")], "staff:") {
		id = id[len("staff:"):]
	}
	if r.Header.Get("Authorization") != "Bearer "+s.Token || r.Header.Get("X-Acme-Tenant") != tenant || tenant != s.Tenant {
		fail(w, http.StatusUnauthorized, "unauthorized", "bad token or tenant")
		return
	}
	switch {
	case len(segs) == 5 && r.Method == http.MethodGet:
		s.read(w, id)
	case len(segs) == 6 && r.Method == http.MethodPost && (segs[5] == "suspend" || segs[5] == "restore"):
		s.change(w, id, segs[5] == "suspend", r.URL.Query().Get("notify"))
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) read(w http.ResponseWriter, id string) {
	suspended, ok := s.Suspended(id)
	if !ok {
		fail(w, http.StatusNotFound, "no_such_user", "no staff member "+id)
		return
	}
	answer(w, http.StatusOK, map[string]any{"staff": map[string]any{"id": id, "suspended": suspended}})
}

func (s *Server) change(w http.ResponseWriter, id string, suspend bool, notify string) {
	s.mu.Lock()
	key := strings.ToLower(id)
	cur, ok := s.users[key]
	if ok {
		s.writes[key]++
		s.users[key] = suspend
		if notify != "" {
			s.notified[key] = append(s.notified[key], notify)
		}
	}
	s.mu.Unlock()
	switch {
	case !ok:
		fail(w, http.StatusNotFound, "no_such_user", "no staff member "+id)
	case cur == suspend:
		fail(w, http.StatusConflict, "already_in_state", "nothing to do")
	default:
		answer(w, http.StatusOK, map[string]any{"staff": map[string]any{"id": id, "suspended": suspend}})
	}
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	answer(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func answer(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
