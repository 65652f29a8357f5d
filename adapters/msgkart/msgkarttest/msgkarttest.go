// Package msgkarttest is an in-memory fake of the Msgkart business API,
// written from Msgkart's documentation alone.
//
// It serves, at its root:
//
//	POST /api/v1/business/user/{userId}/enable?apikey=&email=
//	POST /api/v1/business/user/{userId}/disable?apikey=&email=
//	GET  /api/v1/business/user/{userId}/status?apikey=&email=
//
// Every answer is application/json with a "message" (or, for status, a
// "userStatus") field: 400 when apikey or email is missing, 401 when either is
// wrong, 404 for an unknown user or path, 405 for a wrong method, 200
// otherwise; enable and disable repeat with 200.
package msgkarttest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/userbatch/userbatch/adapters/fakehttp"
)

// The user statuses msgkart documents. Only Disabled is a disabled user.
const (
	StatusAvailable = "Available"
	StatusBusy      = "Busy"
	StatusInCall    = "InCall"
	StatusAway      = "Away"
	StatusDisabled  = "Disabled"
)

// Options are the credentials the fake accepts.
type Options struct {
	// APIKey and Email are the only accepted apikey and email query values.
	APIKey string
	Email  string
	// AutoCreate creates an unknown user, Available, on first touch, instead
	// of answering 404 (for load benchmarks).
	AutoCreate bool
}

// User is a user's state at the fake.
type User struct {
	// Status is one of Available, Busy, InCall, Away, Disabled.
	Status string
}

// Server is the fake. It is safe for concurrent use.
//
// Writes counts the enable and disable POSTs for id that passed the
// credential check and were processed, repeats that changed nothing included.
type Server struct {
	*fakehttp.Fake[User]
	opts Options
}

// New returns a fake with no users.
func New(opts Options) *Server {
	return &Server{Fake: fakehttp.NewFake(opts.AutoCreate, User{Status: StatusAvailable}), opts: opts}
}

// AddUser creates or replaces user id, with no writes counted. An empty
// Status means Available.
func (s *Server) AddUser(id string, u User) {
	if u.Status == "" {
		u.Status = StatusAvailable
	}
	s.Users.Add(id, u)
}

// The fixed answers. Their texts are the ones the documentation gives, or
// ours where it gives none.
const (
	bodyEnabled       = `{"message":"User enabled successfully"}`
	bodyDisabled      = `{"message":"User disabled successfully"}`
	bodyMissingParams = `{"message":"apikey and email are required"}`
	bodyBadCreds      = `{"message":"Invalid credentials"}`
	bodyUserNotFound  = `{"message":"User not found"}`
	bodyNoRoute       = `{"message":"Not found"}`
	bodyBadMethod     = `{"message":"Method not allowed"}`
)

// methodFor is the one method a path verb accepts; ok is false for an
// unknown verb.
func methodFor(verb string) (method string, ok bool) {
	switch verb {
	case "enable", "disable":
		return http.MethodPost, true
	case "status":
		return http.MethodGet, true
	}
	return "", false
}

// ServeHTTP serves the documented paths at the root; mount it under any
// prefix with http.StripPrefix.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.CountRequest()
	id, verb, ok := Route(r.URL.EscapedPath())
	if !ok {
		answer(w, http.StatusNotFound, bodyNoRoute)
		return
	}
	if want, _ := methodFor(verb); r.Method != want {
		w.Header().Set("Allow", want)
		answer(w, http.StatusMethodNotAllowed, bodyBadMethod)
		return
	}
	q := r.URL.Query()
	key, email := q.Get("apikey"), q.Get("email")
	if key == "" || email == "" {
		answer(w, http.StatusBadRequest, bodyMissingParams)
		return
	}
	after := s.Faults.Before(w, r, id)
	if after == nil {
		return
	}
	if key != s.opts.APIKey || email != s.opts.Email {
		if after.Answer(w) {
			answer(w, http.StatusUnauthorized, bodyBadCreds)
		}
		return
	}
	status, found := s.touch(id, verb)
	if !after.Answer(w) {
		return
	}
	switch {
	case !found:
		answer(w, http.StatusNotFound, bodyUserNotFound)
	case verb == "enable":
		answer(w, http.StatusOK, bodyEnabled)
	case verb == "disable":
		answer(w, http.StatusOK, bodyDisabled)
	default:
		b, _ := json.Marshal(struct {
			UserStatus string `json:"userStatus"`
		}{status})
		answer(w, http.StatusOK, string(b))
	}
}

// Route splits /api/v1/business/user/{userId}/{verb}. It splits the escaped
// path, then unescapes the user segment, so an escaped '/' stays in the id.
// ServeHTTP routes with it; it is exported for the fake's tests, which
// cover escaped paths no client can send.
func Route(escaped string) (id, verb string, ok bool) {
	seg := strings.Split(escaped, "/")
	if len(seg) != 7 || seg[0] != "" || seg[1] != "api" || seg[2] != "v1" || seg[3] != "business" || seg[4] != "user" {
		return "", "", false
	}
	if _, known := methodFor(seg[6]); !known {
		return "", "", false
	}
	id, err := url.PathUnescape(seg[5])
	if err != nil || id == "" {
		return "", "", false
	}
	return id, seg[6], true
}

// touch applies verb to user id and returns the resulting status; found is
// false for an unknown user unless AutoCreate is set.
func (s *Server) touch(id, verb string) (status string, found bool) {
	write := verb == "enable" || verb == "disable"
	st, found := s.Users.Update(id, write, func(u *User) {
		switch verb {
		case "enable":
			// Enabling a user who is merely Busy or Away must not reset them.
			if u.Status == StatusDisabled {
				u.Status = StatusAvailable
			}
		case "disable":
			u.Status = StatusDisabled
		}
	})
	return st.Status, found
}

func answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}
