package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/userbatch/userbatch/adapters"
	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/declarative"
	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/adapters/fakehttp"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
	"github.com/userbatch/userbatch/adapters/msgkart/msgkarttest"
	"github.com/userbatch/userbatch/adapters/scim/scimtest"
)

// fakeVendors is every vendor's fake behind one handler, each under its own
// path prefix, with credentials made fresh for each start.
type fakeVendors struct {
	epixel      *epixeltest.Server
	clearsquare *clearsquaretest.Server
	kii         *kiitest.Server
	msgkart     *msgkarttest.Server
	scim        *scimtest.Server
	creds       fakeCreds
}

type fakeCreds struct {
	epixelKey, epixelToken, clearsquareToken, kiiToken, msgkartKey, scimToken string
}

const (
	fakeKiiApp       = "demoapp"
	fakeMsgkartEmail = "ops@example.com"
)

func newFakeVendors(autoCreate bool) *fakeVendors {
	c := fakeCreds{epixelKey: randomHex(), epixelToken: randomHex(), clearsquareToken: randomHex(),
		kiiToken: randomHex(), msgkartKey: randomHex(), scimToken: randomHex()}
	return &fakeVendors{
		creds:       c,
		epixel:      epixeltest.New(epixeltest.Options{APIKey: c.epixelKey, Token: c.epixelToken, AutoCreate: autoCreate}),
		clearsquare: clearsquaretest.New(clearsquaretest.Options{Token: c.clearsquareToken, AutoCreate: autoCreate}),
		kii:         kiitest.New(kiitest.Options{AppID: fakeKiiApp, Token: c.kiiToken, AutoCreate: autoCreate}),
		msgkart:     msgkarttest.New(msgkarttest.Options{APIKey: c.msgkartKey, Email: fakeMsgkartEmail, AutoCreate: autoCreate}),
		scim:        scimtest.New(scimtest.Options{Token: c.scimToken, AutoCreate: autoCreate}),
	}
}

func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// The path prefix of each fake; epixel's and scim's carry an API prefix
// and version as a real install does.
var fakePrefixes = map[string]string{
	"epixel": "/epixel/api/v2", "clearsquare": "/clearsquare", "kii": "/kii", "msgkart": "/msgkart",
	"scim": "/scim/v2",
}

func (f *fakeVendors) handler() http.Handler {
	mux := http.NewServeMux()
	for vendor, h := range map[string]http.Handler{
		"epixel": f.epixel, "clearsquare": f.clearsquare, "kii": f.kii, "msgkart": f.msgkart, "scim": f.scim,
	} {
		p := fakePrefixes[vendor]
		mux.Handle(p+"/", http.StripPrefix(p, h))
	}
	return mux
}

// targetsYAML is a targets.yaml for the fakes served at base (no trailing
// slash). The credentials are the fakes' own, good only for this process.
func (f *fakeVendors) targetsYAML(base string, rate float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# targets.yaml for the userbatch fake vendors at %s\n", base)
	fmt.Fprintf(&b, "# The credentials below are made up at start and valid only while it runs.\ntargets:\n")
	target := func(name, vendor string, keys ...string) {
		fake := vendor
		if vendor == adapters.HTTP { // keys[1] is the spec: builtin:NAME
			fake = strings.TrimPrefix(keys[1], declarative.BuiltinPrefix)
		}
		fmt.Fprintf(&b, "  %s:\n    vendor: %s\n    base_url: %s%s\n", name, vendor, base, fakePrefixes[fake])
		for i := 0; i+1 < len(keys); i += 2 {
			fmt.Fprintf(&b, "    %s: %s\n", keys[i], keys[i+1])
		}
		fmt.Fprintf(&b, "    rate: %g\n    burst: 4\n    concurrency: 4\n    timeout: 10s\n", rate)
	}
	target("shop", "epixel", "apikey", f.creds.epixelKey, "token", f.creds.epixelToken)
	target("admin", "clearsquare", "token", f.creds.clearsquareToken)
	target("apps", "kii", "app_id", fakeKiiApp, "token", f.creds.kiiToken)
	// chat is msgkart described by its spec (README: Add a vendor without
	// Go), built into the binary: the demo needs no file.
	target("chat", adapters.HTTP, "spec", declarative.BuiltinPrefix+"msgkart", "apikey", f.creds.msgkartKey, "email", fakeMsgkartEmail)
	target("saas", "scim", "token", f.creds.scimToken)
	return b.String()
}

// The SCIM users of the demo: ids as SCIM providers make them (RFC 7643's
// example id among them), and userNames for the rows that name one.
const (
	demoSCIMJensen = "2819c223-7f76-453a-919d-413861904646" // userName bjensen@example.com
	demoSCIMSmith  = "c3a26dd3-27a0-4dec-a2ac-ce211e105f97"
	demoSCIMRoe    = "8f0e6b7a-5d4c-4b3a-9e2f-1a0b9c8d7e6f"
)

// seedDemo creates the users testdata/demo.csv names, and its scripted
// faults: a 503 once, a 429 with Retry-After once, an unknown user, an
// epixel user who already holds the role asked for, and a SCIM user who is
// already active.
func (f *fakeVendors) seedDemo() {
	for _, id := range []string{"u1001", "u1002", "u1005", "u1007", "u1008"} {
		f.epixel.AddUser(id, epixeltest.User{Role: "Customer"})
	}
	f.epixel.AddUser("u1003", epixeltest.User{Role: "Customer", Blocked: true})
	f.epixel.AddUser("u1004", epixeltest.User{Role: "Member"})
	f.epixel.AddUser("u1006", epixeltest.User{Role: "Member"})
	f.epixel.Faults.Add(fakehttp.Rule{User: "u1007", Times: 1, Fault: fakehttp.Fault{Status: http.StatusServiceUnavailable}})

	f.clearsquare.AddUser("634441cecbb5901d133039f8", clearsquaretest.User{Active: true})
	f.clearsquare.AddUser("634441cecbb5901d133039f9", clearsquaretest.User{Active: true})

	f.kii.AddUser("LOGIN_NAME:alice", kiitest.User{})
	f.kii.AddUser("EMAIL:bob@example.com", kiitest.User{Disabled: true})
	f.kii.AddUser("PHONE:+819012345678", kiitest.User{Disabled: true})
	f.kii.AddUser("kii-user-4", kiitest.User{})
	f.kii.Faults.Add(fakehttp.Rule{User: "kii-user-4", Method: http.MethodGet, Times: 1,
		Fault: fakehttp.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"}})

	f.msgkart.AddUser("m-100", msgkarttest.User{Status: "Busy"})
	f.msgkart.AddUser("m-101", msgkarttest.User{Status: "Disabled"})
	f.msgkart.AddUser("m-102", msgkarttest.User{Status: "Disabled"})

	f.scim.AddUser(scimtest.User{ID: demoSCIMJensen, UserName: "bjensen@example.com", Active: true})
	f.scim.AddUser(scimtest.User{ID: demoSCIMSmith, UserName: "jsmith@example.com", Active: true})
	f.scim.AddUser(scimtest.User{ID: demoSCIMRoe, UserName: "mroe@example.com", Active: true})
}
