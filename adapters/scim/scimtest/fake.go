// Package scimtest is a fake SCIM 2.0 service provider, written from RFC
// 7643 and RFC 7644 alone (README, "SCIM 2.0 apps"). It serves, at its root:
//
//	GET   /ServiceProviderConfig  (RFC 7643 §5; what it supports is configurable)
//	GET   /Users                  (a list; filter userName eq "..." only, §3.4.2.2)
//	GET   /Users/{id}             (§3.4.1, with meta.version and an ETag header)
//	PATCH /Users/{id}             (§3.5.2, the PatchOp message)
//	PUT   /Users/{id}             (§3.5.1, replacing the resource)
//
// Every request needs the configured bearer token. Errors are SCIM error
// bodies (§3.12). A write under If-Match with a version that is not the
// user's current one answers 412 (§3.14); every write that is processed
// gives the user a new version, W/"n". Faults come from fakehttp.
package scimtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/userbatch/userbatch/adapters/fakehttp"
)

// The schema URIs of RFC 7643 §8.7 and RFC 7644 §3.
const (
	schemaUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	schemaSPC        = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	schemaList       = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	schemaPatchOp    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	schemaError      = "urn:ietf:params:scim:api:messages:2.0:Error"
	mediaSCIM        = "application/scim+json"
	maxBody          = 64 << 10
	defaultMaxResult = 100
)

// Options configures a Server. The zero value supports PATCH, ETags and
// filtering, like most providers.
type Options struct {
	// Token is the only bearer token accepted. An empty Token accepts nothing.
	Token string
	// NoPatch makes the provider one without PATCH: patch.supported=false,
	// and a PATCH answers 501.
	NoPatch bool
	// NoETag: etag.supported=false, no meta.version, If-Match ignored.
	NoETag bool
	// NoFilter: filter.supported=false, and any filter answers 400.
	NoFilter bool
	// HideInactive hides inactive users as Atlassian does: GET /Users
	// leaves them out and GET /Users/{id} answers 404, while PATCH and PUT
	// still reach them (so they can be activated again).
	HideInactive bool
	// MaxResults caps a list (default 100).
	MaxResults int
	// AutoCreate creates an unknown id, active, on first touch through
	// /Users/{id} (for demos and load benchmarks).
	AutoCreate bool
}

// User is one user at the fake.
type User struct {
	ID       string
	UserName string
	Active   bool
	// Attributes are the user's other attributes (displayName, emails...),
	// as JSON values; a PUT replaces them.
	Attributes map[string]any
}

// record is a user with its version and the writes it received.
type record struct {
	user     User
	version  int
	writes   int
	created  time.Time
	modified time.Time
}

// Server is the fake. It is safe for concurrent use.
type Server struct {
	// Faults injects latency, error statuses, resets and drops. A rule's
	// User matches the id in /Users/{id}; lists and discovery have none.
	Faults fakehttp.Injector

	opts     Options
	requests atomic.Int64

	mu    sync.Mutex
	users map[string]*record
}

// New returns a fake with no users.
func New(opts Options) *Server {
	if opts.MaxResults <= 0 {
		opts.MaxResults = defaultMaxResult
	}
	return &Server{opts: opts, users: map[string]*record{}}
}

// AddUser creates or replaces u (keyed by u.ID) at version 1, with no writes
// counted.
func (s *Server) AddUser(u User) {
	now := time.Now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = &record{user: cloneUser(u), version: 1, created: now, modified: now}
}

// User returns a copy of user id.
func (s *Server) User(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.users[id]
	if !ok {
		return User{}, false
	}
	return cloneUser(r.user), true
}

// Version is user id's current version, as meta.version shows it.
func (s *Server) Version(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.users[id]; ok {
		return etag(r.version)
	}
	return ""
}

// Change changes user id as another administrator would: a new version,
// not counted as a write. It reports whether the user exists.
func (s *Server) Change(id string, fn func(*User)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.users[id]
	if !ok {
		return false
	}
	fn(&r.user)
	r.version++
	r.modified = time.Now().UTC()
	return true
}

// Writes counts the PATCHes and PUTs processed for id, those that changed
// nothing included; refused ones (401, 412, 400...) are not counted.
func (s *Server) Writes(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.users[id]; ok {
		return r.writes
	}
	return 0
}

// Requests counts every request received, refused ones included.
func (s *Server) Requests() int { return int(s.requests.Load()) }

// ServeHTTP serves the SCIM endpoints at the root.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	route, id, ok := parsePath(r.URL.EscapedPath())
	if !ok {
		writeError(w, http.StatusNotFound, "", "no such endpoint")
		return
	}
	// Read the body before the fault injector waits: net/http notices a
	// client that hung up only once the body was read.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalidSyntax", "the request body could not be read")
		return
	}
	after := s.Faults.Before(w, r, id)
	if after == nil {
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="scim"`)
		writeError(w, http.StatusUnauthorized, "", "the bearer token is missing or not valid")
		return
	}
	switch {
	case route == "config" && r.Method == http.MethodGet:
		s.serviceProviderConfig(w, after)
	case route == "users" && r.Method == http.MethodGet:
		s.list(w, r, after)
	case route == "user" && r.Method == http.MethodGet:
		s.get(w, r, id, after)
	case route == "user" && r.Method == http.MethodPatch:
		s.patch(w, r, id, body, after)
	case route == "user" && r.Method == http.MethodPut:
		s.put(w, r, id, body, after)
	default:
		writeError(w, http.StatusMethodNotAllowed, "", r.Method+" is not supported here")
	}
}

// parsePath splits the escaped path so that an escaped '/' stays inside
// the id, then unescapes the id.
func parsePath(escaped string) (route, id string, ok bool) {
	switch escaped {
	case "/ServiceProviderConfig":
		return "config", "", true
	case "/Users":
		return "users", "", true
	}
	rest, found := strings.CutPrefix(escaped, "/Users/")
	if !found || rest == "" || strings.Contains(rest, "/") {
		return "", "", false
	}
	id, err := url.PathUnescape(rest)
	if err != nil {
		return "", "", false
	}
	return "user", id, true
}

func (s *Server) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && s.opts.Token != "" && token == s.opts.Token
}

func (s *Server) serviceProviderConfig(w http.ResponseWriter, after *fakehttp.After) {
	supported := func(b bool) map[string]any { return map[string]any{"supported": b} }
	doc := map[string]any{
		"schemas":        []string{schemaSPC},
		"patch":          supported(!s.opts.NoPatch),
		"bulk":           map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":         map[string]any{"supported": !s.opts.NoFilter, "maxResults": s.opts.MaxResults},
		"changePassword": supported(false),
		"sort":           supported(false),
		"etag":           supported(!s.opts.NoETag),
		"authenticationSchemes": []map[string]any{{
			"type": "oauthbearertoken", "name": "OAuth Bearer Token",
			"description": "Authentication scheme using the OAuth Bearer Token Standard", "primary": true,
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": "/ServiceProviderConfig"},
	}
	if after.Answer(w) {
		writeJSON(w, http.StatusOK, doc)
	}
}

// filterEq is the one filter the fake understands: userName eq "value",
// the attribute and operator in any case (RFC 7644 §3.4.2.2), the value a
// JSON string.
var filterEq = regexp.MustCompile(`^\s*(?i:username)\s+(?i:eq)\s+("(?:[^"\\]|\\.)*")\s*$`)

func (s *Server) list(w http.ResponseWriter, r *http.Request, after *fakehttp.After) {
	q := r.URL.Query()
	match := func(User) bool { return true }
	if f := q.Get("filter"); f != "" {
		if s.opts.NoFilter {
			writeError(w, http.StatusBadRequest, "invalidFilter", "filtering is not supported")
			return
		}
		m := filterEq.FindStringSubmatch(f)
		var name string
		if m == nil || json.Unmarshal([]byte(m[1]), &name) != nil {
			writeError(w, http.StatusBadRequest, "invalidFilter", "only userName eq \"...\" is supported")
			return
		}
		// userName is caseExact=false (RFC 7643 §4.1.1).
		match = func(u User) bool { return strings.EqualFold(u.UserName, name) }
	}
	startIndex, count, ok := paging(q, s.opts.MaxResults)
	if !ok {
		writeError(w, http.StatusBadRequest, "invalidValue", "startIndex and count must be integers")
		return
	}
	found := s.matching(match)
	page := found[min(startIndex-1, len(found)):min(startIndex-1+count, len(found))]
	resources := make([]map[string]any, 0, len(page))
	for _, rec := range page {
		resources = append(resources, s.resource(r, rec))
	}
	if after.Answer(w) {
		writeJSON(w, http.StatusOK, map[string]any{
			"schemas": []string{schemaList}, "totalResults": len(found),
			"startIndex": startIndex, "itemsPerPage": len(resources), "Resources": resources,
		})
	}
}

// paging reads startIndex (1-based, default 1) and count (default and cap:
// maxResults), as RFC 7644 §3.4.2.4 defines them.
func paging(q url.Values, maxResults int) (startIndex, count int, ok bool) {
	startIndex, count = 1, maxResults
	if v := q.Get("startIndex"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, 0, false
		}
		startIndex = max(n, 1)
	}
	if v := q.Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, 0, false
		}
		count = min(max(n, 0), maxResults)
	}
	return startIndex, count, true
}

// matching returns copies of the visible users that match, by id.
func (s *Server) matching(match func(User) bool) []record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []record
	for _, r := range s.users {
		if s.visible(r) && match(r.user) {
			cp := *r
			cp.user = cloneUser(r.user)
			found = append(found, cp)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].user.ID < found[j].user.ID })
	return found
}

func (s *Server) visible(r *record) bool { return r.user.Active || !s.opts.HideInactive }

func (s *Server) get(w http.ResponseWriter, r *http.Request, id string, after *fakehttp.After) {
	rec, ok := s.update(id, false, nil)
	if !ok || !s.visible(&rec) {
		writeError(w, http.StatusNotFound, "", "Resource "+id+" not found")
		return
	}
	if after.Answer(w) {
		s.writeUser(w, r, rec)
	}
}

// write is a PATCH or PUT already decoded: fn changes the user, and
// returns a SCIM error to refuse the change instead.
type write func(u *User) *scimError

func (s *Server) patch(w http.ResponseWriter, r *http.Request, id string, body []byte, after *fakehttp.After) {
	if s.opts.NoPatch {
		writeError(w, http.StatusNotImplemented, "", "PATCH is not supported")
		return
	}
	if e := checkMedia(r); e != nil {
		e.write(w)
		return
	}
	fn, e := decodePatch(body)
	if e != nil {
		e.write(w)
		return
	}
	s.apply(w, r, id, fn, after)
}

func (s *Server) put(w http.ResponseWriter, r *http.Request, id string, body []byte, after *fakehttp.After) {
	if e := checkMedia(r); e != nil {
		e.write(w)
		return
	}
	fn, e := decodePut(body)
	if e != nil {
		e.write(w)
		return
	}
	s.apply(w, r, id, fn, after)
}

// apply runs a write under If-Match (when ETags are on) and answers 200
// with the resource as it now is (RFC 7644 §3.5.1, §3.5.2).
func (s *Server) apply(w http.ResponseWriter, r *http.Request, id string, fn write, after *fakehttp.After) {
	var refused *scimError
	ifMatch := r.Header.Get("If-Match")
	rec, ok := s.update(id, true, func(rec *record) bool {
		if !s.opts.NoETag && ifMatch != "" && ifMatch != "*" && ifMatch != etag(rec.version) {
			refused = &scimError{status: http.StatusPreconditionFailed, detail: "the resource changed: its version is " + etag(rec.version)}
			return false
		}
		u := cloneUser(rec.user)
		if refused = fn(&u); refused != nil {
			return false
		}
		rec.user = u
		return true
	})
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, "", "Resource "+id+" not found")
	case refused != nil:
		refused.write(w)
	case after.Answer(w):
		s.writeUser(w, r, rec)
	}
}

// update runs fn on user id under the lock; a write that fn accepts gets a
// new version and is counted. Without fn it reads. ok is false for an
// unknown user (created first under AutoCreate).
func (s *Server) update(id string, isWrite bool, fn func(*record) bool) (record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.users[id]
	if !ok && s.opts.AutoCreate {
		now := time.Now().UTC()
		rec = &record{user: User{ID: id, UserName: id, Active: true}, version: 1, created: now, modified: now}
		s.users[id] = rec
		ok = true
	}
	if !ok {
		return record{}, false
	}
	if fn != nil && fn(rec) && isWrite {
		rec.version++
		rec.writes++
		rec.modified = time.Now().UTC()
	}
	cp := *rec
	cp.user = cloneUser(rec.user)
	return cp, true
}

// resource renders a user as RFC 7643 §4.1 and §8.2 show it.
func (s *Server) resource(r *http.Request, rec record) map[string]any {
	res := map[string]any{}
	for k, v := range rec.user.Attributes {
		res[k] = v
	}
	meta := map[string]any{
		"resourceType": "User",
		"created":      rec.created.Format(time.RFC3339),
		"lastModified": rec.modified.Format(time.RFC3339),
		"location":     "http://" + r.Host + "/Users/" + url.PathEscape(rec.user.ID),
	}
	if !s.opts.NoETag {
		meta["version"] = etag(rec.version)
	}
	res["schemas"] = []string{schemaUser}
	res["id"] = rec.user.ID
	res["userName"] = rec.user.UserName
	res["active"] = rec.user.Active
	res["meta"] = meta
	return res
}

func (s *Server) writeUser(w http.ResponseWriter, r *http.Request, rec record) {
	if !s.opts.NoETag {
		w.Header().Set("ETag", etag(rec.version))
	}
	writeJSON(w, http.StatusOK, s.resource(r, rec))
}

func etag(version int) string { return fmt.Sprintf(`W/"%d"`, version) }

// checkMedia accepts application/scim+json and application/json (RFC 7644
// §3.1: providers MUST accept the first and SHOULD accept the second).
func checkMedia(r *http.Request) *scimError {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != mediaSCIM && mt != "application/json") {
		return &scimError{status: http.StatusUnsupportedMediaType, detail: "Content-Type must be application/scim+json"}
	}
	return nil
}

// decodePatch reads a PatchOp message (RFC 7644 §3.5.2). The fake knows
// "active" (a boolean) and treats other paths as plain attributes. Several
// operations on "active" in one request are refused, as AWS IAM Identity
// Center does.
func decodePatch(body []byte) (write, *scimError) {
	var req struct {
		Schemas    []string `json:"schemas"`
		Operations []struct {
			Op    string          `json:"op"`
			Path  string          `json:"path"`
			Value json.RawMessage `json:"value"`
		} `json:"Operations"`
	}
	if err := strictDecode(body, &req); err != nil || !contains(req.Schemas, schemaPatchOp) {
		return nil, &scimError{status: http.StatusBadRequest, scimType: "invalidSyntax", detail: "the body is not a PatchOp message"}
	}
	if len(req.Operations) == 0 {
		return nil, &scimError{status: http.StatusBadRequest, scimType: "invalidValue", detail: "Operations is empty"}
	}
	var changes []func(*User)
	onActive := 0
	for _, op := range req.Operations {
		change, touchesActive, e := decodeOperation(strings.ToLower(op.Op), op.Path, op.Value)
		if e != nil {
			return nil, e
		}
		if touchesActive {
			onActive++
		}
		changes = append(changes, change)
	}
	if onActive > 1 {
		return nil, &scimError{status: http.StatusBadRequest, scimType: "invalidValue", detail: "several operations on active in one request"}
	}
	return func(u *User) *scimError {
		for _, change := range changes {
			change(u)
		}
		return nil
	}, nil
}

func decodeOperation(op, path string, value json.RawMessage) (func(*User), bool, *scimError) {
	if op != "add" && op != "replace" && op != "remove" {
		return nil, false, &scimError{status: http.StatusBadRequest, scimType: "invalidSyntax", detail: "op must be add, replace or remove"}
	}
	if path == "" {
		if op == "remove" {
			return nil, false, &scimError{status: http.StatusBadRequest, scimType: "noTarget", detail: "remove needs a path"}
		}
		// No path: value is an object of attributes to set (§3.5.2.1, §3.5.2.3).
		var attrs map[string]json.RawMessage
		if json.Unmarshal(value, &attrs) != nil {
			return nil, false, &scimError{status: http.StatusBadRequest, scimType: "invalidValue", detail: "without a path, value must be an object"}
		}
		var changes []func(*User)
		touches := false
		for name, v := range attrs {
			change, active, e := decodeOperation(op, name, v)
			if e != nil {
				return nil, false, e
			}
			touches = touches || active
			changes = append(changes, change)
		}
		return func(u *User) {
			for _, c := range changes {
				c(u)
			}
		}, touches, nil
	}
	switch strings.ToLower(path) {
	case "active":
		if op == "remove" {
			return func(u *User) { u.Active = false }, true, nil
		}
		var b bool
		if json.Unmarshal(value, &b) != nil {
			return nil, false, &scimError{status: http.StatusBadRequest, scimType: "invalidValue", detail: "active must be a boolean"}
		}
		return func(u *User) { u.Active = b }, true, nil
	case "id", "meta":
		return nil, false, &scimError{status: http.StatusBadRequest, scimType: "mutability", detail: path + " is read-only"}
	case "username":
		var name string
		if op == "remove" || json.Unmarshal(value, &name) != nil || name == "" {
			return nil, false, &scimError{status: http.StatusBadRequest, scimType: "invalidValue", detail: "userName must be a non-empty string"}
		}
		return func(u *User) { u.UserName = name }, false, nil
	}
	if strings.ContainsAny(path, "[].") {
		return nil, false, &scimError{status: http.StatusBadRequest, scimType: "invalidPath", detail: "the fake supports top-level attribute paths only"}
	}
	if op == "remove" {
		return func(u *User) { delete(u.Attributes, path) }, false, nil
	}
	var v any
	if json.Unmarshal(value, &v) != nil {
		return nil, false, &scimError{status: http.StatusBadRequest, scimType: "invalidValue", detail: "value is not JSON"}
	}
	return func(u *User) {
		if u.Attributes == nil {
			u.Attributes = map[string]any{}
		}
		u.Attributes[path] = v
	}, false, nil
}

// decodePut reads a full User (RFC 7644 §3.5.1): it replaces every
// attribute; id and meta are read-only and ignored; userName is required;
// an absent active is unassigned, i.e. false.
func decodePut(body []byte) (write, *scimError) {
	var res map[string]json.RawMessage
	if err := strictDecode(body, &res); err != nil {
		return nil, &scimError{status: http.StatusBadRequest, scimType: "invalidSyntax", detail: "the body is not a JSON object"}
	}
	var schemas []string
	if json.Unmarshal(res["schemas"], &schemas) != nil || !contains(schemas, schemaUser) {
		return nil, &scimError{status: http.StatusBadRequest, scimType: "invalidSyntax", detail: "schemas must name " + schemaUser}
	}
	var name string
	if json.Unmarshal(res["userName"], &name) != nil || name == "" {
		return nil, &scimError{status: http.StatusBadRequest, scimType: "invalidValue", detail: "userName is required"}
	}
	active := false
	if raw, ok := res["active"]; ok && json.Unmarshal(raw, &active) != nil {
		return nil, &scimError{status: http.StatusBadRequest, scimType: "invalidValue", detail: "active must be a boolean"}
	}
	attrs := map[string]any{}
	for k, raw := range res {
		switch strings.ToLower(k) {
		case "schemas", "id", "meta", "username", "active":
			continue
		}
		var v any
		_ = json.Unmarshal(raw, &v) // valid: the object decoded
		attrs[k] = v
	}
	return func(u *User) *scimError {
		u.UserName, u.Active, u.Attributes = name, active, attrs
		return nil
	}, nil
}

func strictDecode(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func cloneUser(u User) User {
	if u.Attributes != nil {
		attrs := make(map[string]any, len(u.Attributes))
		for k, v := range u.Attributes {
			attrs[k] = v
		}
		u.Attributes = attrs
	}
	return u
}

// scimError is an RFC 7644 §3.12 error.
type scimError struct {
	status   int
	scimType string
	detail   string
}

func (e *scimError) write(w http.ResponseWriter) { writeError(w, e.status, e.scimType, e.detail) }

func writeError(w http.ResponseWriter, status int, scimType, detail string) {
	body := map[string]any{"schemas": []string{schemaError}, "status": strconv.Itoa(status), "detail": detail}
	if scimType != "" {
		body["scimType"] = scimType
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", mediaSCIM)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
