// Package epixeltest is a fake Epixel MLM user-management API, written from
// the vendor's documentation alone. It serves
// POST /block/user/, /unblock/user/, /upgrade/user-role/ and
// /downgrade/user-role/ at its root; mount it under any prefix with
// http.StripPrefix. It is safe for concurrent use.
package epixeltest

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/userbatch/userbatch/adapters/fakehttp"
)

// The roles, in the vendor's spelling. Their order is
// Customer < Preferred Customer < Member.
const (
	Customer          = "Customer"
	PreferredCustomer = "Preferred Customer"
	Member            = "Member"
)

// Options configures a fake.
type Options struct {
	// APIKey is the only `apikey` header value accepted.
	APIKey string
	// Token is the only bearer token accepted (`Authorization: Bearer <Token>`).
	Token string
	// AutoCreate creates an unknown user on first touch, unblocked and a
	// Customer, instead of answering 400 "User not exist or invalid unique id.".
	AutoCreate bool
}

// User is one user's state at the fake.
type User struct {
	Blocked bool
	// Role is Customer, PreferredCustomer or Member. An empty Role is taken
	// as Customer.
	Role string
	// Genealogy records api_place_genealogy=True on an upgrade to Preferred Customer.
	Genealogy bool
}

// Server is the fake. Create it with New.
//
// Writes counts the POSTs for user id that passed authentication and
// validation and were evaluated against the user: the ones that changed
// state, repeats that changed nothing, and the ones answered 403 because the
// user's role did not allow the change (the fake processed those too).
type Server struct {
	*fakehttp.Fake[User]
	opts Options
}

// New returns a fake that accepts opts' credentials and holds no users.
func New(opts Options) *Server {
	return &Server{Fake: fakehttp.NewFake(opts.AutoCreate, User{Role: Customer}), opts: opts}
}

// AddUser creates or replaces user id, with no writes counted.
func (s *Server) AddUser(id string, u User) {
	if u.Role == "" {
		u.Role = Customer
	}
	s.Users.Add(id, u)
}

// maxBody bounds a request body: the real fields are a few hundred bytes.
const maxBody = 1 << 20

// ServeHTTP answers one request. Order: route and method, body, injected
// faults, credentials, field validation, then the change.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.CountRequest()
	ep, ok := route(r.URL.Path)
	if !ok {
		writeDetail(w, http.StatusNotFound, "Not found.")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeDetail(w, http.StatusMethodNotAllowed, `Method "`+r.Method+`" not allowed.`)
		return
	}
	form, status, msg := readForm(w, r)
	if status != 0 {
		writeDetail(w, status, msg)
		return
	}
	id := form.Get(fieldUniqueID)
	after := s.Faults.Before(w, r, id)
	if after == nil {
		return
	}
	if !s.authorized(r) {
		writeDetail(w, http.StatusUnauthorized, "Invalid API key or token.")
		return
	}
	req, errs := parse(ep, form)
	code, body := s.process(req, errs)
	if !after.Answer(w) {
		return
	}
	writeJSON(w, code, body)
}

// authorized checks both credentials exactly: the scheme must be spelled
// "Bearer" (two of the documentation's samples say "Beare", a typo the
// adapter must not copy).
func (s *Server) authorized(r *http.Request) bool {
	return r.Header.Get("apikey") == s.opts.APIKey &&
		r.Header.Get("Authorization") == "Bearer "+s.opts.Token
}

// readForm parses a multipart or urlencoded body. It answers 415 for any
// other content type, and 400 for a body that cannot be read.
func readForm(w http.ResponseWriter, r *http.Request) (form url.Values, status int, msg string) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	var err error
	switch mt {
	case "multipart/form-data":
		err = r.ParseMultipartForm(maxBody)
	case "application/x-www-form-urlencoded", "":
		err = r.ParseForm()
	default:
		return nil, http.StatusUnsupportedMediaType, `Unsupported media type "` + ct + `" in request.`
	}
	if err != nil {
		return nil, http.StatusBadRequest, "Malformed request."
	}
	return r.PostForm, 0, ""
}

// process validates req against the stored user and applies it. It returns
// the status and body to answer.
func (s *Server) process(req request, errs fieldErrors) (int, envelope) {
	if len(errs) > 0 {
		// The vendor reports one problem per field: a unique_id that is
		// already blank or too long is not looked up. A request that fails
		// validation creates no user, even under AutoCreate.
		if _, bad := errs[fieldUniqueID]; !bad && !s.exists(req.id) {
			errs.add(fieldUniqueID, msgNoUser)
		}
		return badRequest(errs)
	}
	// The role decides a 403 under the lock, so that concurrent role
	// changes see each other. A 403 counts as a write, and keeps an
	// auto-created user that it left unchanged.
	var refusal string
	_, ok := s.Users.Update(req.id, true, func(u *User) { *u, refusal = apply(*u, req) })
	switch {
	case !ok:
		errs.add(fieldUniqueID, msgNoUser)
		return badRequest(errs)
	case refusal != "":
		return http.StatusForbidden, detailEnvelope(http.StatusForbidden, refusal)
	}
	return http.StatusOK, envelope{StatusCode: http.StatusOK, Errors: fieldErrors{}}
}

// exists reports whether user id is known, or would be created on first
// touch.
func (s *Server) exists(id string) bool {
	_, ok := s.Users.Get(id)
	return ok || s.opts.AutoCreate
}

func badRequest(errs fieldErrors) (int, envelope) {
	return http.StatusBadRequest, envelope{StatusCode: http.StatusBadRequest, Errors: errs}
}

// apply changes u as req asks. A non-empty refusal is the vendor's 403
// message, and u is then unchanged.
func apply(u User, req request) (User, string) {
	switch req.ep {
	case epBlock:
		u.Blocked = true
	case epUnblock:
		u.Blocked = false
	case epUpgrade:
		return upgrade(u, req)
	case epDowngrade:
		return downgrade(u, req)
	}
	return u, ""
}

func upgrade(u User, req request) (User, string) {
	switch {
	case req.role == Member && u.Role == Member:
		return u, "User already have a member role."
	case req.role == PreferredCustomer && u.Role == PreferredCustomer:
		return u, "User already have a preferred customer role."
	case req.role == PreferredCustomer && u.Role == Member:
		return u, "User role is already upgraded."
	}
	u.Role = req.role
	if req.role == PreferredCustomer {
		u.Genealogy = req.flag
	}
	return u, ""
}

func downgrade(u User, req request) (User, string) {
	switch {
	case req.role == Customer && u.Role == Customer:
		return u, "User already have a customer role."
	case req.role == PreferredCustomer && u.Role == PreferredCustomer:
		return u, "User already have a preferred customer role."
	case req.role == PreferredCustomer && u.Role == Customer:
		return u, "User already have a downgraded role."
	}
	u.Role = req.role
	if req.flag {
		u.Blocked = true
	}
	return u, ""
}

// maxIDLen is the documented limit on unique_id, in characters.
const maxIDLen = 255

func validID(id string, errs fieldErrors) {
	switch {
	case strings.TrimSpace(id) == "":
		errs.add(fieldUniqueID, msgRequired)
	case utf8.RuneCountInString(id) > maxIDLen:
		errs.add(fieldUniqueID, "Ensure this field has no more than 255 characters.")
	}
}

// writeJSON answers with the vendor's envelope.
func writeJSON(w http.ResponseWriter, status int, body envelope) {
	b, err := json.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeDetail(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, detailEnvelope(status, msg))
}
