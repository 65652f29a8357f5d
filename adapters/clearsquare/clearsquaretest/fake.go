// Package clearsquaretest is a fake ClearSquare admin API, written from the
// vendor's documentation (POST /api/users/manage-status) and nothing else.
//
// Each accepted request toggles a user between active and inactive. A bad
// token and an unknown user id get the same documented 401, as at the vendor.
package clearsquaretest

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/userbatch/userbatch/adapters/fakehttp"
)

// path is the one endpoint the vendor documents.
const path = "/api/users/manage-status"

// maxBody bounds a request body: the documented one is two short strings.
const maxBody = 64 << 10

// The documented answers, encoded once: the fake serves load benchmarks.
var (
	bodyUpdated      = []byte(`{"message":"User status updated successfully","status":"success"}`)
	bodyUnauthorized = []byte(`{"message":"Invalid token or user ID","status":"error"}`)
)

// Options configures a Server.
type Options struct {
	// Token is the only JWT the fake accepts, in the Authorization header
	// and in the body alike. An empty Token accepts nothing.
	Token string
	// AutoCreate creates unknown users, active, on first touch (for load
	// benchmarks) instead of answering 401.
	AutoCreate bool
}

// User is one user's state at the fake.
type User struct {
	Active bool
}

// Server is the fake. It is safe for concurrent use.
//
// Writes counts the toggles processed for id: requests that passed
// validation and authentication and changed the user's state.
type Server struct {
	*fakehttp.Fake[User]
	opts Options
}

// New returns a fake with no users.
func New(opts Options) *Server {
	return &Server{Fake: fakehttp.NewFake(opts.AutoCreate, User{Active: true}), opts: opts}
}

// AddUser creates or replaces user id in state st, with no writes counted.
func (s *Server) AddUser(id string, st User) { s.Users.Add(id, st) }

// manageStatus is the documented request body.
type manageStatus struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}

// ServeHTTP serves POST /api/users/manage-status at the root.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.CountRequest()
	if r.URL.Path != path {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "Method not allowed")
		return
	}
	req, msg := decode(w, r)
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	after := s.Faults.Before(w, r, req.ID)
	if after == nil {
		return
	}
	if !s.authorized(r, req.Token) || !s.toggle(req.ID) {
		write(w, http.StatusUnauthorized, bodyUnauthorized)
		return
	}
	if after.Answer(w) {
		write(w, http.StatusOK, bodyUpdated)
	}
}

// decode reads the body, returning a message for a 400 when it is unusable.
func decode(w http.ResponseWriter, r *http.Request) (manageStatus, string) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return manageStatus{}, "Content-Type must be application/json"
	}
	// Read to the end, not just one JSON value: net/http notices a client
	// hanging up (and cancels r.Context, which ends an injected delay) only
	// once the body has been read to its end.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return manageStatus{}, "The request body could not be read"
	}
	var req manageStatus
	if err := json.Unmarshal(body, &req); err != nil {
		return manageStatus{}, "Malformed JSON body"
	}
	if req.ID == "" {
		return manageStatus{}, "id is required"
	}
	return req, ""
}

// authorized checks the contract's two copies of the JWT: the bearer token
// and the body's token must both be the configured one.
func (s *Server) authorized(r *http.Request, bodyToken string) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && s.opts.Token != "" &&
		token == s.opts.Token && bodyToken == s.opts.Token
}

// toggle flips user id, creating it first, active, under AutoCreate. It
// reports false for an unknown user.
func (s *Server) toggle(id string) bool {
	_, ok := s.Users.Update(id, true, func(u *User) { u.Active = !u.Active })
	return ok
}

func writeError(w http.ResponseWriter, status int, msg string) {
	body, _ := json.Marshal(struct {
		Message string `json:"message"`
		Status  string `json:"status"`
	}{msg, "error"})
	write(w, status, body)
}

func write(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
