// Package batch is the userbatch domain and pipeline: operations parsed from a
// CSV, the Adapter interface that vendors implement, and the run that paces,
// retries and journals every row. It imports none of adapters, reports or cmd.
package batch

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Action is a canonical operation name, as written in report.csv.
type Action string

// The canonical actions. Aliases (block, activate, ...) are resolved by ParseAction.
const (
	Disable       Action = "disable"
	Enable        Action = "enable"
	UpgradeRole   Action = "upgrade-role"
	DowngradeRole Action = "downgrade-role"
	ToggleStatus  Action = "toggle-status"
)

// Actions lists every canonical action in the order help texts show them.
var Actions = []Action{Disable, Enable, UpgradeRole, DowngradeRole, ToggleStatus}

var actionAliases = map[string]Action{
	"disable": Disable, "block": Disable, "deactivate": Disable, "suspend": Disable,
	"enable": Enable, "unblock": Enable, "activate": Enable, "unsuspend": Enable,
	"upgrade-role":   UpgradeRole,
	"downgrade-role": DowngradeRole,
	"toggle-status":  ToggleStatus,
}

// ParseAction resolves an action name or alias, in any case.
func ParseAction(s string) (Action, bool) {
	if a, ok := actionAliases[s]; ok { // the usual case: already canonical
		return a, true
	}
	a, ok := actionAliases[strings.ToLower(strings.TrimSpace(s))]
	return a, ok
}

// Roles, as the vendor spells them.
const (
	RoleMember            = "Member"
	RolePreferredCustomer = "Preferred Customer"
	RoleCustomer          = "Customer"
)

// Op is one validated operation: one data row of the input.
type Op struct {
	Index  int // 0-based position among the data rows
	Line   int // physical line where the record starts; the header is line 1
	Target string
	User   string
	Action Action
	// Role is the canonical role name for upgrade-role and downgrade-role.
	Role string
	// PlaceGenealogy is epixel's api_place_genealogy on an upgrade.
	PlaceGenealogy bool
	// BlockUser is epixel's api_block_user on a downgrade.
	BlockUser bool
	// Email overrides the target's msgkart email for this row.
	Email string
	// EffectiveAt is when the row becomes due, in UTC; the zero time means now.
	EffectiveAt time.Time
	// UserKey is User as the target's vendor compares users (Identity.Key):
	// "LOGIN_NAME:Leo" and "leo" share one at Kii. Empty: User itself.
	UserKey string
	// DuplicateOf is the line of an earlier row this one repeats exactly
	// (same target, user, effective_at, action and role): it is never sent.
	DuplicateOf int
}

// Key identifies the (target, user) pair whose rows must run in order:
// the user by identity, not by the text of the cell.
type Key struct{ Target, User string }

// Key returns op's (target, user) pair.
func (op Op) Key() Key {
	if op.UserKey != "" {
		return Key{op.Target, op.UserKey}
	}
	return Key{op.Target, op.User}
}

// Outcome is how a row ended. Every input data row gets exactly one.
type Outcome string

// The outcomes, as README's "Outcomes and exit codes" defines them.
const (
	Applied Outcome = "applied"
	Already Outcome = "already"
	Planned Outcome = "planned"
	Invalid Outcome = "invalid"
	Failed  Outcome = "failed"
	Unknown Outcome = "unknown"
	Skipped Outcome = "skipped"
	// NotDue: the row's effective_at has not come; it was not sent. It
	// does not make a run incomplete.
	NotDue Outcome = "not_due"
)

// Outcomes lists every outcome in report order.
var Outcomes = []Outcome{Applied, Already, Planned, NotDue, Invalid, Failed, Unknown, Skipped}

// Result is what happened to one row.
type Result struct {
	Index      int           `json:"i"`
	Line       int           `json:"line"`
	Target     string        `json:"target"`
	User       string        `json:"user"`
	Action     Action        `json:"action"`
	Outcome    Outcome       `json:"outcome"`
	Detail     string        `json:"detail,omitempty"`
	HTTPStatus int           `json:"http_status,omitempty"`
	Attempts   int           `json:"attempts"`
	ErrorCode  string        `json:"error_code,omitempty"`
	Message    string        `json:"message,omitempty"`
	Duration   time.Duration `json:"duration_ns"`
	FinishedAt time.Time     `json:"finished_at"`
	// Retries counts the requests that were retries of a failed one (a read
	// followed by a write is two attempts and no retry).
	Retries int `json:"retries,omitempty"`
	// Writes counts the requests that were writes; the rest of Attempts
	// were reads.
	Writes int `json:"writes,omitempty"`
}

// Reply is a vendor's answer to a change it accepted.
type Reply struct {
	// Already is true when the vendor said the user was already in the requested state.
	Already    bool
	HTTPStatus int
	Message    string
}

// Adapter sends single operations to one vendor target.
//
// Adapters classify; they never retry, sleep or loop. The pipeline wraps them
// with pacing, concurrency limits and retries.
type Adapter interface {
	// Supports reports whether the vendor can perform a.
	Supports(a Action) bool
	// Idempotent reports whether sending an op with action a twice has the same
	// effect as sending it once. Non-idempotent ops are never resent once they
	// may have reached the vendor.
	Idempotent(a Action) bool
	// Apply sends op to the vendor once. A nil error means the vendor accepted
	// it; otherwise the error is an *Error saying whether it is permanent,
	// retryable or ambiguous. Errors never contain credentials.
	Apply(ctx context.Context, op Op) (Reply, error)
}

// State is what a Reader found.
type State struct {
	// InState is true when the user already is in the state the op asks for.
	InState    bool
	HTTPStatus int
	// Current describes the state read, e.g. "disabled" or "userStatus=Busy".
	Current string
	// Identities are every name the read resolved the user to (a SCIM
	// user's id, userName and emails): protected patterns match any of them.
	Identities []string
}

// Reader is implemented by adapters that can read a user's current state
// (for disable and enable). Reads are idempotent and safe to retry.
type Reader interface {
	// Read asks the vendor once whether op's user is already in the state op
	// asks for. Errors are *Error, as for Apply.
	Read(ctx context.Context, op Op) (State, error)
}

// Kind says what a failed request means for a retry.
type Kind int

// The error kinds.
const (
	// Permanent: the vendor refused; sending again will not help.
	Permanent Kind = iota + 1
	// Retryable: the vendor provably did not act (429, connection refused).
	Retryable
	// Ambiguous: the request may have taken effect (timeout, reset after send, 5xx).
	// Idempotent ops may be resent; non-idempotent ones end unknown.
	Ambiguous
)

func (k Kind) String() string {
	switch k {
	case Permanent:
		return "permanent"
	case Retryable:
		return "retryable"
	case Ambiguous:
		return "ambiguous"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error codes for report.csv's error_code column.
const (
	CodeUnauthorized = "unauthorized"  // credentials refused
	CodeNotFound     = "not_found"     // no such user (or app)
	CodeConflict     = "conflict"      // the user holds a different state than asked
	CodeValidation   = "validation"    // the vendor rejected a field
	CodeRefused      = "refused"       // the vendor refused for another reason
	CodeRateLimited  = "rate_limited"  // 429
	CodeServer       = "server_error"  // 5xx
	CodeTimeout      = "timeout"       // no answer in time
	CodeNetwork      = "network"       // connection failed or dropped
	CodeBadResponse  = "bad_response"  // an answer we cannot read
	CodeWaitTooLong  = "wait_too_long" // Retry-After longer than max_wait
	CodeTLS          = "tls"           // TLS or certificate failure: nothing was sent
	CodeRequest      = "request"       // the request could not be built: nothing was sent
	CodeAmbiguous    = "ambiguous"     // the user cell matches several users
)

// Fault is what an error says of its target as a whole. A refusal of the
// credentials is told by its code (CodeUnauthorized), not by a Fault.
type Fault int

// The faults.
const (
	// FaultNone: the answer is about the row, or is the vendor's own.
	FaultNone Fault = iota
	// FaultUnreachable: no connection was made (refused, DNS, TLS):
	// base_url or the network is wrong.
	FaultUnreachable
	// FaultForeign: the answer is not the vendor's own (a 404 page without
	// the vendor's error body, an HTML page, a 2xx that is not the vendor's
	// envelope): base_url points at something else.
	FaultForeign
)

// Error is a classified vendor failure. Message is safe to print: it never
// holds credentials.
type Error struct {
	Kind       Kind
	Code       string
	HTTPStatus int
	Message    string
	// RetryAfter is how long the vendor asked every caller to wait (0: not said).
	RetryAfter time.Duration
	Err        error
	// CredentialsUnsure marks a refusal the vendor also gives for other
	// reasons (ClearSquare's 401 for an unknown user): it counts against the
	// target's credentials only until they have been accepted once.
	CredentialsUnsure bool
	// Fault says what the error tells of the whole target rather than of
	// the row: 3 in a row stop the target (README "Targets that stop").
	Fault Fault
	// Hint, when set, is the row's detail instead of the generic advice for
	// its code: the adapter's words on what to check.
	Hint string

	final bool // the row's last attempt, whatever its kind
	skip  bool // nothing was sent: the row ends skipped
}

func (e *Error) Error() string {
	msg := e.Code
	if e.HTTPStatus != 0 {
		msg = fmt.Sprintf("%s (HTTP %d)", msg, e.HTTPStatus)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Row is one data record of the input as parsed: the fields as read, the
// operation they describe, and every problem found in them.
type Row struct {
	Index  int
	Line   int
	Record []string // the fields as read, in header order
	Op     Op       // meaningful only when Problems is empty
	// Problems lists every validation error in the row; empty means valid.
	Problems []Problem
}

// Valid reports whether the row passed validation.
func (r Row) Valid() bool { return len(r.Problems) == 0 }

// Problem is one validation error: where, what was wrong, what is accepted.
type Problem struct {
	Line     int
	Column   string
	Value    string
	Msg      string
	Accepted string
}

func (p Problem) String() string {
	s := fmt.Sprintf("line %d, column %s: %s", p.Line, p.Column, p.Msg)
	if p.Accepted != "" {
		s += " (accepted: " + p.Accepted + ")"
	}
	return s
}

// The input columns userbatch reads. Any other column is passthrough.
const (
	ColTarget         = "target"
	ColUser           = "user"
	ColAction         = "action"
	ColRole           = "role"
	ColPlaceGenealogy = "place_genealogy"
	ColBlockUser      = "block_user"
	ColEmail          = "email"
	ColEffectiveAt    = "effective_at"
)

// KnownColumns lists the columns userbatch reads, in the order it documents them.
var KnownColumns = []string{ColTarget, ColUser, ColAction, ColRole, ColPlaceGenealogy, ColBlockUser, ColEmail, ColEffectiveAt}

// Header is the input's header row.
type Header struct {
	// Names are the column names as written in the file (BOM removed).
	Names []string
	// Known maps each known column (lower case) to its index in Names.
	Known map[string]int
	// Passthrough lists the indexes of the columns userbatch does not read.
	Passthrough []int
	// Delimiter separates the cells: ',', ';' or '\t'.
	Delimiter rune
	// Encoding is the input's text encoding as found: "UTF-8",
	// "UTF-8 with BOM", "UTF-16LE" or "UTF-16BE".
	Encoding string
}

// Field returns the cell of a known column in rec, or "" when the file has no
// such column.
func (h Header) Field(rec []string, col string) string {
	i, ok := h.Known[col]
	if !ok || i >= len(rec) {
		return ""
	}
	return rec[i]
}
