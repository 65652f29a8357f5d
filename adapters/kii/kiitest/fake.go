// Package kiitest is a fake Kii Cloud user status API, written from Kii's
// documentation (GET and PUT /api/apps/{appID}/users/{user}/status) and
// nothing else.
//
// Users are keyed by the exact, unescaped path segment that names them: a
// bare user id ("u-123"), or an account type and address ("LOGIN_NAME:alice",
// "EMAIL:a@example.com", "PHONE:+819012345678"). To reach one user under
// several names, add it under each; they are then separate users at the fake.
package kiitest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/userbatch/userbatch/adapters/fakehttp"
)

// Kii's media types, as documented.
const (
	mediaUpdateRequest     = "application/vnd.kii.userstatusupdaterequest+json" // as mime.ParseMediaType lowercases it
	mediaRetrievalResponse = "application/vnd.kii.UserStatusRetrievalResponse+json"
	mediaUserNotFound      = "application/vnd.kii.UserNotFoundException+json"
	mediaUnauthorized      = "application/vnd.kii.UnauthorizedAccessException+json"
	mediaJSON              = "application/json"
)

// maxBody bounds a request body: the documented one is {"disabled":true}.
const maxBody = 64 << 10

// The two GET answers, encoded once: the fake serves load benchmarks.
var (
	bodyDisabled = []byte(`{"disabled":true}`)
	bodyEnabled  = []byte(`{"disabled":false}`)
)

// Options configures a Server.
type Options struct {
	// AppID is the only app the fake hosts; any other answers APP_NOT_FOUND.
	AppID string
	// Token is the only admin bearer token it accepts. An empty Token
	// accepts nothing.
	Token string
	// AutoCreate creates unknown users, enabled, on first touch (for load
	// benchmarks) instead of answering USER_NOT_FOUND.
	AutoCreate bool
}

// User is one user's state at the fake.
type User struct {
	Disabled bool
}

// Server is the fake. It is safe for concurrent use.
//
// Writes counts the PUTs processed for id, repeats that changed nothing
// included; rejected requests and GETs are not counted.
type Server struct {
	*fakehttp.Fake[User]
	opts Options
}

// New returns a fake with no users.
func New(opts Options) *Server {
	return &Server{Fake: fakehttp.NewFake(opts.AutoCreate, User{}), opts: opts}
}

// AddUser creates or replaces the user named id (the unescaped path segment,
// e.g. "LOGIN_NAME:alice") in state st, with no writes counted.
func (s *Server) AddUser(id string, st User) { s.Users.Add(id, st) }

// ServeHTTP serves GET and PUT /api/apps/{appID}/users/{user}/status at the
// root.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.CountRequest()
	appID, user, ok := parsePath(r.URL.EscapedPath())
	if !ok {
		writeJSON(w, http.StatusNotFound, mediaJSON, kiiError{ErrorCode: "NOT_FOUND", Message: "No such resource"})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPut {
		w.Header().Set("Allow", "GET, PUT")
		writeJSON(w, http.StatusMethodNotAllowed, mediaJSON, kiiError{ErrorCode: "METHOD_NOT_ALLOWED", Message: "Use GET or PUT"})
		return
	}
	// Read the whole body before waiting on the fault injector: net/http
	// notices a client hanging up (and cancels r.Context, which ends an
	// injected delay) only once the body has been read to its end.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, mediaJSON, kiiError{ErrorCode: "INVALID_INPUT_DATA", Message: "The request body could not be read"})
		return
	}
	after := s.Faults.Before(w, r, user)
	if after == nil {
		return
	}
	if appID != s.opts.AppID {
		writeJSON(w, http.StatusNotFound, mediaJSON,
			kiiError{ErrorCode: "APP_NOT_FOUND", Message: fmt.Sprintf("The application %s was not found", appID)})
		return
	}
	if !s.authorized(r) {
		writeJSON(w, http.StatusUnauthorized, mediaUnauthorized, unauthorized{
			ErrorCode: "UNAUTHORIZED", Message: "The provided token is not valid for this app", AuthenticatedAppID: appID})
		return
	}
	if r.Method == http.MethodGet {
		s.get(w, user, after)
		return
	}
	s.put(w, r, user, body, after)
}

// parsePath splits the escaped path itself, so that an escaped '/' inside
// the app id or user stays in its segment, then unescapes each segment.
func parsePath(escaped string) (appID, user string, ok bool) {
	seg := strings.Split(escaped, "/")
	if len(seg) != 7 || seg[0] != "" || seg[1] != "api" || seg[2] != "apps" || seg[4] != "users" || seg[6] != "status" {
		return "", "", false
	}
	appID, err1 := url.PathUnescape(seg[3])
	user, err2 := url.PathUnescape(seg[5])
	if err1 != nil || err2 != nil || appID == "" || user == "" {
		return "", "", false
	}
	return appID, user, true
}

func (s *Server) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && s.opts.Token != "" && token == s.opts.Token
}

func (s *Server) get(w http.ResponseWriter, user string, after *fakehttp.After) {
	st, ok := s.Users.Update(user, false, nil)
	if !ok {
		s.notFound(w, user)
		return
	}
	body := bodyEnabled
	if st.Disabled {
		body = bodyDisabled
	}
	if after.Answer(w) {
		write(w, http.StatusOK, mediaRetrievalResponse, body)
	}
}

func (s *Server) put(w http.ResponseWriter, r *http.Request, user string, body []byte, after *fakehttp.After) {
	disabled, msg := decodeUpdate(r.Header.Get("Content-Type"), body)
	if msg != "" {
		writeJSON(w, http.StatusBadRequest, mediaJSON, kiiError{ErrorCode: "INVALID_INPUT_DATA", Message: msg})
		return
	}
	if _, ok := s.Users.Update(user, true, func(u *User) { u.Disabled = disabled }); !ok {
		s.notFound(w, user)
		return
	}
	if after.Answer(w) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// decodeUpdate reads a PUT body, returning a message for a 400 when it is
// not a UserStatusUpdateRequest with a boolean "disabled".
func decodeUpdate(contentType string, body []byte) (bool, string) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != mediaUpdateRequest {
		return false, "Content-Type must be application/vnd.kii.UserStatusUpdateRequest+json"
	}
	var req struct {
		Disabled *bool `json:"disabled"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return false, "The request body is not valid: disabled must be a boolean"
	}
	if req.Disabled == nil {
		return false, "The field disabled is required"
	}
	return *req.Disabled, ""
}

func (s *Server) notFound(w http.ResponseWriter, user string) {
	field, value := searchField(user)
	writeJSON(w, http.StatusNotFound, mediaUserNotFound, userNotFound{
		ErrorCode: "USER_NOT_FOUND", Message: fmt.Sprintf("User with %s %s was not found", field, value),
		Field: field, Value: value, AppID: s.opts.AppID})
}

// searchField names the user field a path segment searches, as Kii reports
// it in USER_NOT_FOUND, and the value searched for.
func searchField(user string) (field, value string) {
	kind, address, ok := strings.Cut(user, ":")
	if ok {
		switch kind {
		case "LOGIN_NAME":
			return "loginName", address
		case "EMAIL":
			return "emailAddress", address
		case "PHONE":
			return "phoneNumber", address
		}
	}
	return "userID", user
}

type kiiError struct {
	ErrorCode string `json:"errorCode"`
	Message   string `json:"message"`
}

type userNotFound struct {
	ErrorCode string `json:"errorCode"`
	Message   string `json:"message"`
	Field     string `json:"field"`
	Value     string `json:"value"`
	AppID     string `json:"appID"`
}

type unauthorized struct {
	ErrorCode          string `json:"errorCode"`
	Message            string `json:"message"`
	AuthenticatedAppID string `json:"authenticatedAppID"`
	// AuthenticatedPrincipalID is null: a token the fake rejects names no one.
	AuthenticatedPrincipalID *string `json:"authenticatedPrincipalID"`
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	body, _ := json.Marshal(v)
	write(w, status, contentType, body)
}

func write(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
