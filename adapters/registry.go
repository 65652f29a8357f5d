// Package adapters lists the vendor adapters userbatch can drive. The list is
// written out by hand: no init() registration, so what exists is what you read.
package adapters

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"

	"github.com/userbatch/userbatch/adapters/clearsquare"
	"github.com/userbatch/userbatch/adapters/declarative"
	"github.com/userbatch/userbatch/adapters/epixel"
	"github.com/userbatch/userbatch/adapters/kii"
	"github.com/userbatch/userbatch/adapters/msgkart"
	"github.com/userbatch/userbatch/adapters/scim"
	"github.com/userbatch/userbatch/batch"
)

// Settings are a target's vendor settings from targets.yaml, expanded.
type Settings struct {
	BaseURL string
	APIKey  string
	Token   string
	// Extra holds the vendor-specific keys (kii's app_id, msgkart's email).
	Extra  map[string]string
	Client *http.Client
	// Spec is an http target's vendor description (spec: in targets.yaml).
	Spec *declarative.Spec
}

// Vendor describes one adapter.
type Vendor struct {
	Name    string
	Summary string
	Actions []batch.Action
	// Reads says what the adapter can read back before writing.
	Reads string
	// Keys are the vendor-specific config keys; Credentials the ones it needs.
	Keys        []string
	Credentials []string
	// Identity is how the vendor compares user cells (nil: byte for byte).
	Identity batch.Identity
	// Columns are the vendor's own input columns; Validator checks its
	// rules on a row, Inverter reverses its changes (nil: none). All three
	// are the vendor folder's values, built without a client, so that
	// validate needs no credentials.
	Columns   []batch.Column
	Validator batch.Validator
	Inverter  batch.Inverter
	New       func(Settings) (batch.Adapter, error)
}

// Vendors is every adapter, in the order `userbatch vendors` lists them.
var Vendors = []Vendor{
	{
		Name:        "epixel",
		Summary:     "Epixel MLM Software: block/unblock users, upgrade/downgrade roles",
		Actions:     []batch.Action{batch.Disable, batch.Enable, batch.UpgradeRole, batch.DowngradeRole},
		Reads:       "nothing (no endpoint reads another user's state; dry-run says unknown state)",
		Credentials: []string{"apikey", "token"},
		Columns:     epixel.Rules{}.Columns(),
		Validator:   epixel.Rules{},
		Inverter:    epixel.Rules{},
		New: func(s Settings) (batch.Adapter, error) {
			return epixel.New(epixel.Config{BaseURL: s.BaseURL, APIKey: s.APIKey, Token: s.Token, Client: s.Client})
		},
	},
	{
		Name:        "clearsquare",
		Summary:     "ClearSquare admin API: toggle a user's status (never resent once it may have arrived)",
		Actions:     []batch.Action{batch.ToggleStatus},
		Reads:       "nothing (dry-run says unknown state)",
		Credentials: []string{"token"},
		New: func(s Settings) (batch.Adapter, error) {
			return clearsquare.New(clearsquare.Config{BaseURL: s.BaseURL, Token: s.Token, Client: s.Client})
		},
	},
	{
		Name:        "kii",
		Summary:     "Kii Cloud: disable/enable app users by id, LOGIN_NAME:, EMAIL: or PHONE:",
		Actions:     []batch.Action{batch.Disable, batch.Enable},
		Reads:       "disabled status (read before every write; already-correct users are not written)",
		Keys:        []string{"app_id"},
		Identity:    kii.Identity,
		Credentials: []string{"token", "app_id"},
		New: func(s Settings) (batch.Adapter, error) {
			return kii.New(kii.Config{BaseURL: s.BaseURL, AppID: s.Extra["app_id"], Token: s.Token, Client: s.Client})
		},
	},
	{
		Name:        "msgkart",
		Summary:     "Msgkart business API: disable/enable business users",
		Actions:     []batch.Action{batch.Disable, batch.Enable},
		Reads:       "userStatus (read before every write; already-correct users are not written)",
		Keys:        []string{"email"},
		Credentials: []string{"apikey", "email (or an email column)"},
		Columns:     msgkart.Rules{}.Columns(),
		Validator:   msgkart.Rules{},
		New: func(s Settings) (batch.Adapter, error) {
			return msgkart.New(msgkart.Config{BaseURL: s.BaseURL, APIKey: s.APIKey, Email: s.Extra["email"], Client: s.Client})
		},
	},
	{
		Name: "scim",
		Summary: "any SCIM 2.0 service provider (Slack, Zoom, Atlassian, AWS IAM Identity Center...): " +
			"disable/enable users by SCIM id or userName:, setting active; what active=false means is the " +
			"provider's choice (PagerDuty deletes the user, Atlassian hides inactive users)",
		Actions: []batch.Action{batch.Disable, batch.Enable},
		Reads: "active and meta.version (read before every write; already-correct users are not written; " +
			"writes carry If-Match where the provider supports ETags). Providers that hide inactive users " +
			"(hides_inactive: true) read them as hidden, and the write decides",
		Keys:        []string{"hides_inactive"},
		Identity:    scim.Identity,
		Credentials: []string{"token"},
		New: func(s Settings) (batch.Adapter, error) {
			hides, err := parseFlag(s.Extra["hides_inactive"])
			if err != nil {
				return nil, fmt.Errorf("scim: hides_inactive must be true or false")
			}
			return scim.New(scim.Config{BaseURL: s.BaseURL, Token: s.Token, HidesInactive: hides, Client: s.Client})
		},
	},
	{
		Name: HTTP,
		Summary: "any HTTP admin API described in a YAML spec (spec: PATH, relative to targets.yaml, or builtin:NAME); " +
			"README: Add a vendor without Go. `userbatch vendors check SPEC` says what a spec can do",
		Reads:       "what the spec's read says, if it has one",
		Keys:        []string{"spec"},
		Credentials: []string{"the keys under the spec's config"},
		Columns:     declarative.Columns,
		New: func(s Settings) (batch.Adapter, error) {
			if s.Spec == nil {
				return nil, fmt.Errorf("http: spec is required: the path of the vendor's spec")
			}
			config := map[string]string{"apikey": s.APIKey, "token": s.Token}
			for k, v := range s.Extra {
				config[k] = v
			}
			return declarative.New(s.Spec, declarative.Settings{BaseURL: s.BaseURL, Config: config, Client: s.Client})
		},
	},
}

// HTTP is the vendor of a target described by a spec.
const HTTP = "http"

// parseFlag reads an optional true/false setting; empty is false.
func parseFlag(v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	return strconv.ParseBool(v)
}

// Columns are every vendor's own input columns, each name once: a file
// reads the same whatever vendors its config names (README "The operations CSV").
func Columns() []batch.Column {
	var out []batch.Column
	for _, v := range Vendors {
		for _, c := range v.Columns {
			if !slices.ContainsFunc(out, func(d batch.Column) bool { return d.Name == c.Name }) {
				out = append(out, c)
			}
		}
	}
	return out
}

// Lookup finds a vendor by name.
func Lookup(name string) (Vendor, bool) {
	for _, v := range Vendors {
		if v.Name == name {
			return v, true
		}
	}
	return Vendor{}, false
}

// Names lists the vendor names, sorted.
func Names() []string {
	names := make([]string, len(Vendors))
	for i, v := range Vendors {
		names[i] = v.Name
	}
	sort.Strings(names)
	return names
}

// New builds the adapter for a target.
func New(vendor string, s Settings) (batch.Adapter, error) {
	v, ok := Lookup(vendor)
	if !ok {
		return nil, fmt.Errorf("unknown vendor %q", vendor)
	}
	return v.New(s)
}
