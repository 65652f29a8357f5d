package declarative_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/adapters/clearsquare"
	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/declarative"
	"github.com/userbatch/userbatch/adapters/epixel"
	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/adapters/kii"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
	"github.com/userbatch/userbatch/adapters/msgkart"
	"github.com/userbatch/userbatch/adapters/msgkart/msgkarttest"
	"github.com/userbatch/userbatch/batch"
)

// The credentials the fakes accept; the keys hold characters that escape
// in a query, so a leak in either spelling shows.
const (
	goodKey    = "s3cr3t+K3y/=&x"
	goodToken  = "tok-abcdefghij-0123"
	badKey     = "key-wrong-9f8e"
	badToken   = "tok-wrong-0e9b"
	appID      = "app-4f2a"
	callerMail = "ops+bot@example.com"
)

// world is one fake vendor, fresh, and what a test needs of it.
type world struct {
	h      http.Handler
	faults *fakehttp.Injector
	add    func(id string, op batch.Op)
	set    func(id, state string) // a user in a named state (vendor words)
	state  func(id string) string
	writes func(id string) int
}

// vendor is one seed vendor: its fake, its Go adapter and its spec.
type vendor struct {
	name string
	// states are the named states set accepts.
	states      []string
	newWorld    func() *world
	goAdapter   func(t testing.TB, base string, client *http.Client, key, token string) batch.Adapter
	specAdapter func(t testing.TB, base string, client *http.Client, key, token string) batch.Adapter
	cases       []adaptertest.Case
	unknownCode string
	// ops are every op shape worth comparing.
	ops []batch.Op
	// suiteOps are the ops the Go adapter's conformance suite sends to
	// servers that are not the vendor's (none: its first case's).
	suiteOps []batch.Op
}

func mustGo[T batch.Adapter](t testing.TB, a T, err error) batch.Adapter {
	t.Helper()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// parsed holds each shipped spec parsed once: a Spec is read-only once
// parsed, and the side-by-side tests build thousands of adapters, whose cost
// was mostly parsing the same YAML again.
var parsed sync.Map // name → func() (*declarative.Spec, error)

func openSpec(name string) (*declarative.Spec, error) {
	open, _ := parsed.LoadOrStore(name, sync.OnceValues(func() (*declarative.Spec, error) {
		return declarative.Open(declarative.BuiltinPrefix + name)
	}))
	return open.(func() (*declarative.Spec, error))()
}

// newSpec builds the spec adapter for a shipped spec.
func newSpec(t testing.TB, name, base string, client *http.Client, config map[string]string) batch.Adapter {
	t.Helper()
	spec, err := openSpec(name)
	if err != nil {
		t.Fatalf("spec %s: %v", name, err)
	}
	a, err := declarative.New(spec, declarative.Settings{BaseURL: base, Config: config, Client: client})
	if err != nil {
		t.Fatalf("spec %s: New: %v", name, err)
	}
	return a
}

var epixelVendor = vendor{
	name:   "epixel",
	states: []string{"Customer", "Preferred Customer", "Member", "blocked Customer"},
	newWorld: func() *world {
		fake := epixeltest.New(epixeltest.Options{APIKey: goodKey, Token: goodToken})
		return &world{h: fake, faults: &fake.Faults, writes: fake.Writes,
			add: func(id string, op batch.Op) {
				switch op.Action {
				case batch.Enable:
					fake.AddUser(id, epixeltest.User{Blocked: true, Role: epixeltest.Customer})
				case batch.DowngradeRole:
					fake.AddUser(id, epixeltest.User{Role: epixeltest.Member})
				default:
					fake.AddUser(id, epixeltest.User{Role: epixeltest.Customer})
				}
			},
			set: func(id, st string) {
				if st == "blocked Customer" {
					fake.AddUser(id, epixeltest.User{Blocked: true, Role: epixeltest.Customer})
					return
				}
				fake.AddUser(id, epixeltest.User{Role: st})
			},
			state: func(id string) string {
				u, ok := fake.User(id)
				if !ok {
					return "missing"
				}
				return fmt.Sprintf("blocked=%t role=%s", u.Blocked, u.Role)
			}}
	},
	goAdapter: func(t testing.TB, base string, client *http.Client, key, token string) batch.Adapter {
		c, err := epixel.New(epixel.Config{BaseURL: base, APIKey: key, Token: token, Client: client})
		return mustGo(t, c, err)
	},
	specAdapter: func(t testing.TB, base string, client *http.Client, key, token string) batch.Adapter {
		return newSpec(t, "epixel", base, client, map[string]string{"apikey": key, "token": token})
	},
	cases: []adaptertest.Case{
		{Op: batch.Op{Action: batch.Disable}, Want: "blocked=true role=Customer"},
		{Op: batch.Op{Action: batch.Enable}, Want: "blocked=false role=Customer"},
		{Op: batch.Op{Action: batch.UpgradeRole, Role: "Member"}, Want: "blocked=false role=Member", AgainAlready: true},
		{Op: batch.Op{Action: batch.DowngradeRole, Role: "Customer"}, Want: "blocked=false role=Customer", AgainAlready: true},
	},
	unknownCode: batch.CodeNotFound,
	suiteOps:    []batch.Op{{User: "u1", Action: batch.Disable}, {User: "u1", Action: batch.DowngradeRole, Role: "Customer"}},
	ops: []batch.Op{
		{Action: batch.Disable},
		{Action: batch.Enable},
		{Action: batch.UpgradeRole, Role: "Member"},
		{Action: batch.UpgradeRole, Role: "Preferred Customer", Cells: []batch.Cell{{Column: "place_genealogy", Value: "true"}}},
		{Action: batch.UpgradeRole, Role: "Preferred Customer"},
		{Action: batch.DowngradeRole, Role: "Customer"},
		{Action: batch.DowngradeRole, Role: "Customer", Cells: []batch.Cell{{Column: "block_user", Value: "true"}}},
		{Action: batch.DowngradeRole, Role: "Preferred Customer"},
		{Action: batch.DowngradeRole, Role: "Preferred Customer", Cells: []batch.Cell{{Column: "block_user", Value: "true"}}},
		{Action: batch.UpgradeRole, Role: "Boss"},
		{Action: batch.ToggleStatus},
	},
}

var clearsquareVendor = vendor{
	name:   "clearsquare",
	states: []string{"active", "inactive"},
	newWorld: func() *world {
		fake := clearsquaretest.New(clearsquaretest.Options{Token: goodToken})
		return &world{h: fake, faults: &fake.Faults, writes: fake.Writes,
			add: func(id string, _ batch.Op) { fake.AddUser(id, clearsquaretest.User{Active: true}) },
			set: func(id, st string) { fake.AddUser(id, clearsquaretest.User{Active: st == "active"}) },
			state: func(id string) string {
				u, ok := fake.User(id)
				switch {
				case !ok:
					return "missing"
				case u.Active:
					return "active"
				}
				return "inactive"
			}}
	},
	goAdapter: func(t testing.TB, base string, client *http.Client, _, token string) batch.Adapter {
		c, err := clearsquare.New(clearsquare.Config{BaseURL: base, Token: token, Client: client})
		return mustGo(t, c, err)
	},
	specAdapter: func(t testing.TB, base string, client *http.Client, _, token string) batch.Adapter {
		return newSpec(t, "clearsquare", base, client, map[string]string{"token": token})
	},
	cases:       []adaptertest.Case{{Op: batch.Op{Action: batch.ToggleStatus}, Want: "inactive"}},
	unknownCode: batch.CodeUnauthorized,
	ops:         []batch.Op{{Action: batch.ToggleStatus}, {Action: batch.Disable}},
}

var kiiVendor = vendor{
	name:   "kii",
	states: []string{"enabled", "disabled"},
	newWorld: func() *world {
		fake := kiitest.New(kiitest.Options{AppID: appID, Token: goodToken})
		return &world{h: fake, faults: &fake.Faults, writes: fake.Writes,
			add: func(id string, op batch.Op) { fake.AddUser(id, kiitest.User{Disabled: op.Action == batch.Enable}) },
			set: func(id, st string) { fake.AddUser(id, kiitest.User{Disabled: st == "disabled"}) },
			state: func(id string) string {
				u, ok := fake.User(id)
				switch {
				case !ok:
					return "missing"
				case u.Disabled:
					return "disabled"
				}
				return "enabled"
			}}
	},
	goAdapter: func(t testing.TB, base string, client *http.Client, _, token string) batch.Adapter {
		c, err := kii.New(kii.Config{BaseURL: base, AppID: appID, Token: token, Client: client})
		return mustGo(t, c, err)
	},
	specAdapter: func(t testing.TB, base string, client *http.Client, _, token string) batch.Adapter {
		return newSpec(t, "kii", base, client, map[string]string{"app_id": appID, "token": token})
	},
	cases: []adaptertest.Case{
		{Op: batch.Op{Action: batch.Disable}, Want: "disabled"},
		{Op: batch.Op{Action: batch.Enable}, Want: "enabled"},
	},
	unknownCode: batch.CodeNotFound,
	ops:         []batch.Op{{Action: batch.Disable}, {Action: batch.Enable}, {Action: batch.UpgradeRole, Role: "Member"}},
}

var msgkartVendor = vendor{
	name:   "msgkart",
	states: []string{"Available", "Busy", "Disabled"},
	newWorld: func() *world {
		fake := msgkarttest.New(msgkarttest.Options{APIKey: goodKey, Email: callerMail})
		return &world{h: fake, faults: &fake.Faults, writes: fake.Writes,
			add: func(id string, op batch.Op) {
				st := msgkarttest.StatusAvailable
				if op.Action == batch.Enable {
					st = msgkarttest.StatusDisabled
				}
				fake.AddUser(id, msgkarttest.User{Status: st})
			},
			set: func(id, st string) { fake.AddUser(id, msgkarttest.User{Status: st}) },
			state: func(id string) string {
				u, ok := fake.User(id)
				if !ok {
					return "missing"
				}
				return u.Status
			}}
	},
	goAdapter: func(t testing.TB, base string, client *http.Client, key, _ string) batch.Adapter {
		c, err := msgkart.New(msgkart.Config{BaseURL: base, APIKey: key, Email: callerMail, Client: client})
		return mustGo(t, c, err)
	},
	specAdapter: func(t testing.TB, base string, client *http.Client, key, _ string) batch.Adapter {
		return newSpec(t, "msgkart", base, client, map[string]string{"apikey": key, "email": callerMail})
	},
	cases: []adaptertest.Case{
		{Op: batch.Op{Action: batch.Disable}, Want: "Disabled"},
		{Op: batch.Op{Action: batch.Enable}, Want: "Available"},
	},
	unknownCode: batch.CodeNotFound,
	ops: []batch.Op{
		{Action: batch.Disable}, {Action: batch.Enable},
		{Action: batch.Disable, Cells: []batch.Cell{{Column: "email", Value: "someone-else@example.com"}}},
		{Action: batch.Enable, Cells: []batch.Cell{{Column: "email", Value: callerMail}}},
		{Action: batch.ToggleStatus},
	},
}

var vendors = []vendor{epixelVendor, clearsquareVendor, kiiVendor, msgkartVendor}

// secrets is every credential in use.
var secrets = []string{goodKey, goodToken, badKey, badToken}
