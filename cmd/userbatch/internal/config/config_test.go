package config

import (
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/kii"
	"github.com/userbatch/userbatch/batch"
)

// envLookup is a lookup for parseConfig over a fixed map.
func envLookup(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

// allVendorsYAML configures one target per vendor. Line numbers matter: the
// error tests below point at them.
const allVendorsYAML = `targets:
  shop:
    vendor: epixel
    base_url: https://shop.example.com/api/v2
    apikey: ${SHOP_APIKEY}
    token: ${SHOP_TOKEN}
    rate: 2.5
    burst: 3
    concurrency: 8
    timeout: 1m30s
    protected: [ "admin-1", breakglass ]
  admin:
    vendor: clearsquare
    base_url: https://admin.example.com
    token: jwt-value
    insecure_http: true
  app:
    vendor: kii
    base_url: https://api-jp.kii.com
    token: kii-token
    app_id: app123
  chat:
    vendor: msgkart
    base_url: http://127.0.0.1:8089/msgkart
    apikey: mk-key
    email: ops@example.com
`

var allVendorsEnv = map[string]string{"SHOP_APIKEY": "shop-key", "SHOP_TOKEN": "shop-token"}

func mustParseConfig(t *testing.T, yml string, env map[string]string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(yml), envLookup(env))
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}
	return cfg
}

// configErr parses yml, which must fail, and checks that the error names
// line (0: no line) and every one of wants.
func configErr(t *testing.T, yml string, env map[string]string, line int, wants ...string) string {
	t.Helper()
	_, err := Parse([]byte(yml), envLookup(env))
	if err == nil {
		t.Fatalf("parseConfig accepted:\n%s", yml)
	}
	msg := err.Error()
	if line > 0 && !strings.Contains(msg, "line "+strconv.Itoa(line)+":") {
		t.Errorf("error %q does not name line %d", msg, line)
	}
	if line == 0 && strings.Contains(msg, "line ") {
		t.Errorf("error %q names a line; want none", msg)
	}
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not mention %q", msg, w)
		}
	}
	return msg
}

func TestConfigAllVendors(t *testing.T) {
	cfg := mustParseConfig(t, allVendorsYAML, allVendorsEnv)
	want := map[string]*Target{
		"shop": {Name: "shop", Line: 3, Vendor: "epixel", BaseURL: "https://shop.example.com/api/v2", APIKey: "shop-key", Token: "shop-token",
			Extra: map[string]string{}, Rate: 2.5, Burst: 3, Concurrency: Concurrency{Max: 8}, Timeout: 90 * time.Second,
			Protected: []string{"admin-1", "breakglass"}, MaxWait: DefaultMaxWait},
		"admin": {Name: "admin", Line: 13, Vendor: "clearsquare", BaseURL: "https://admin.example.com", Token: "jwt-value",
			Extra: map[string]string{}, Rate: 10, Burst: 1, Concurrency: Concurrency{Auto: true, Max: AutoCeiling},
			Timeout: 30 * time.Second, InsecureHTTP: true, MaxWait: DefaultMaxWait},
		"app": {Name: "app", Line: 18, Vendor: "kii", BaseURL: "https://api-jp.kii.com", Token: "kii-token",
			Extra: map[string]string{"app_id": "app123"}, Rate: 10, Burst: 1, Concurrency: Concurrency{Auto: true, Max: AutoCeiling},
			Timeout: 30 * time.Second, MaxWait: DefaultMaxWait},
		"chat": {Name: "chat", Line: 23, Vendor: "msgkart", BaseURL: "http://127.0.0.1:8089/msgkart", APIKey: "mk-key",
			Extra: map[string]string{"email": "ops@example.com"}, Rate: 10, Burst: 1, Concurrency: Concurrency{Auto: true, Max: AutoCeiling},
			Timeout: 30 * time.Second, MaxWait: DefaultMaxWait},
	}
	if len(cfg.Targets) != len(want) {
		t.Errorf("targets %v, want %d", slices.Sorted(maps.Keys(cfg.Targets)), len(want))
	}
	for name, w := range want {
		got := *cfg.Targets[name]
		got.lines = nil
		if !reflect.DeepEqual(&got, w) {
			t.Errorf("target %s:\n got %+v\nwant %+v", name, &got, w)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg := mustParseConfig(t, "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\n", nil)
	got := cfg.Targets["s"]
	if got.Rate != 10 || got.Burst != 1 || got.Timeout != 30*time.Second || got.InsecureHTTP || got.Protected != nil {
		t.Errorf("defaults: %+v", got)
	}
	// Concurrency is auto unless set: sized at run time, up to the ceiling.
	if !got.Concurrency.Auto || got.Concurrency.Max != AutoCeiling {
		t.Errorf("concurrency %+v, want auto up to %d", got.Concurrency, AutoCeiling)
	}
	// An empty value is the default too, not zero.
	cfg = mustParseConfig(t, "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\n    rate:\n    timeout: \"\"\n    concurrency:\n", nil)
	if got := cfg.Targets["s"]; got.Rate != 10 || got.Timeout != 30*time.Second || !got.Concurrency.Auto {
		t.Errorf("empty values: %+v", got)
	}
}

func TestConfigConcurrency(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  int
		auto  bool
	}{
		{"auto", AutoCeiling, true},
		{"1", 1, false},
		{"8", 8, false},
		{"300", 300, false},
	} {
		yml := "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\n    concurrency: " + tc.value + "\n"
		got := mustParseConfig(t, yml, nil).Targets["s"]
		if got.Concurrency.Max != tc.want || got.Concurrency.Auto != tc.auto {
			t.Errorf("concurrency: %s gave %+v, want %d auto %v", tc.value, got.Concurrency, tc.want, tc.auto)
		}
	}
}

func TestConfigEnvExpansion(t *testing.T) {
	yml := "targets:\n  s:\n    vendor: epixel\n    base_url: https://${HOST}/api\n" +
		"    apikey: ${KEY}\n    token: pre-${A}-${B}-post\n    timeout: ${TIMEOUT}\n"
	env := map[string]string{"HOST": "shop.example.com", "KEY": "k", "A": "1", "B": "${A}", "TIMEOUT": "5s"}
	got := mustParseConfig(t, yml, env).Targets["s"]
	if got.BaseURL != "https://shop.example.com/api" || got.APIKey != "k" || got.Timeout != 5*time.Second {
		t.Errorf("expanded: %+v", got)
	}
	// A value is expanded once: a variable holding ${A} stays literal.
	if got.Token != "pre-1-${A}-post" {
		t.Errorf("token = %q", got.Token)
	}
}

func TestConfigMissingVariable(t *testing.T) {
	yml := "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\n    apikey: ${KEY}\n    token: ${MISSING_TOKEN}\n"
	configErr(t, yml, map[string]string{"KEY": "k"}, 6, "MISSING_TOKEN", "token")
	// An empty variable is set: it is not an error to expand it.
	got := mustParseConfig(t, yml, map[string]string{"KEY": "k", "MISSING_TOKEN": ""}).Targets["s"]
	if got.Token != "" {
		t.Errorf("token = %q", got.Token)
	}
}

func TestConfigFileReference(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content, want string
	}{
		{"newline", "s3cret\n", "s3cret"},
		{"crlf", "s3cret\r\n", "s3cret"},
		{"none", "s3cret", "s3cret"},
		{"two newlines", "s3cret\n\n", "s3cret\n"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			yml := "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\n    token: ${file:" + path + "}\n    apikey: k-${file:" + path + "}\n"
			got := mustParseConfig(t, yml, nil).Targets["s"]
			if got.Token != tc.want || got.APIKey != "k-"+tc.want {
				t.Errorf("token %q apikey %q, want %q", got.Token, got.APIKey, tc.want)
			}
		})
	}
	missing := filepath.Join(dir, "absent")
	yml := "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\n    token: ${file:" + missing + "}\n"
	configErr(t, yml, nil, 5, missing)
}

func TestConfigUnknownKeys(t *testing.T) {
	for _, tc := range []struct {
		name, yml string
		line      int
		wants     []string
	}{
		{"top level", "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\ndefaults:\n  rate: 1\n", 5, []string{"defaults"}},
		{"notify key", "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\nnotify:\n  slack: x\n", 6, []string{"slack"}},
		{"ledger scheme", "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\nledger: mysql://u:hunter2@h/db\n", 5, []string{"sqlite:PATH"}},
		{"webhook plain http", "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\nnotify:\n  webhook: http://hooks.example.com/T0/SECRET\n", 6, []string{"https"}},
		{"top level first", "version: 2\ntargets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\n", 1, []string{"version"}},
		{"target key", "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\n    retries: 3\n", 5, []string{"retries"}},
		{"misspelled", "targets:\n  s:\n    vendor: epixel\n    baseurl: https://s.example.com\n", 4, []string{"baseurl"}},
		{"app_id on epixel", "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\n    app_id: a1\n", 5, []string{"app_id", "epixel"}},
		{"email on kii", "targets:\n  s:\n    vendor: kii\n    base_url: https://api.kii.com\n    app_id: a1\n    email: x@example.com\n", 6, []string{"email", "kii"}},
		{"app_id on msgkart", "targets:\n  s:\n    vendor: msgkart\n    base_url: https://m.example.com\n    app_id: a1\n", 5, []string{"app_id", "msgkart"}},
		{"email on clearsquare", "targets:\n  s:\n    base_url: https://c.example.com\n    email: x@example.com\n    vendor: clearsquare\n", 4, []string{"email", "clearsquare"}},
	} {
		t.Run(tc.name, func(t *testing.T) { configErr(t, tc.yml, nil, tc.line, tc.wants...) })
	}
}

// TestConfigMisspelledVendorKey: a misspelled vendor key is reported as an
// unknown key at its own line, not as an empty vendor.
func TestConfigMisspelledVendorKey(t *testing.T) {
	configErr(t, "targets:\n  s:\n    Vendor: epixel\n    base_url: https://s.example.com\n", nil, 3, "unknown key", "Vendor")
	configErr(t, "targets:\n  s:\n    base_url: https://s.example.com\n    vendr: epixel\n", nil, 4, "unknown key", "vendr")
}

func TestConfigVendor(t *testing.T) {
	configErr(t, "targets:\n  s:\n    base_url: https://s.example.com\n    vendor: salesforce\n", nil, 4, "salesforce", "clearsquare, epixel, http, kii, msgkart")
	configErr(t, "targets:\n  s:\n    base_url: https://s.example.com\n    vendor: Epixel\n", nil, 4, "Epixel")
	configErr(t, "targets:\n  s:\n    base_url: https://s.example.com\n", nil, 3, "vendor")
}

func TestConfigStructure(t *testing.T) {
	for _, tc := range []struct {
		name, yml string
		line      int
		wants     []string
	}{
		{"empty", "", 0, []string{"empty"}},
		{"comment only", "# nothing\n", 0, []string{"empty"}},
		{"not YAML", "targets: [\n", 1, []string{"YAML"}},
		{"a list", "- targets\n", 1, []string{"mapping"}},
		{"no targets", "targets: {}\n", 0, []string{"no targets"}},
		{"targets empty", "targets:\n", 1, []string{"targets"}},
		{"targets a list", "targets:\n  - shop\n", 2, []string{"targets"}},
		{"target a string", "targets:\n  shop: epixel\n", 2, []string{"shop"}},
		{"value a list", "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\n    token: [a, b]\n", 5, []string{"token"}},
		{"protected a string", "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\n    protected: admin-1\n", 5, []string{"protected"}},
		{"no base_url", "targets:\n  s:\n    vendor: epixel\n    token: t\n", 3, []string{"base_url"}},
	} {
		t.Run(tc.name, func(t *testing.T) { configErr(t, tc.yml, nil, tc.line, tc.wants...) })
	}
}

func TestConfigDuplicates(t *testing.T) {
	configErr(t, "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\n    token: a\n    token: b\n", nil, 6, "token")
	configErr(t, "targets:\n  s:\n    vendor: epixel\n    protected: [a]\n    base_url: https://s.example.com\n    protected: [b]\n", nil, 6, "protected")
	configErr(t, "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\n  s:\n    vendor: kii\n    base_url: https://api.kii.com\n", nil, 5, "s")
}

// TestConfigDuplicateTargetsKey: YAML forbids a key twice in one mapping;
// yaml.v3 checks that only when decoding into Go values, not into a Node, so
// parseConfig must refuse a second `targets:` itself rather than merge.
func TestConfigDuplicateTargetsKey(t *testing.T) {
	yml := "targets:\n  a:\n    vendor: epixel\n    base_url: https://a.example.com\n" +
		"targets:\n  b:\n    vendor: kii\n    base_url: https://api.kii.com\n"
	configErr(t, yml, nil, 5, "targets")
}

func TestConfigBaseURL(t *testing.T) {
	yml := func(url string, extra string) string {
		return "targets:\n  s:\n    vendor: epixel\n    base_url: " + url + "\n" + extra
	}
	for _, ok := range []string{
		"https://shop.example.com/api/v2",
		"http://127.0.0.1:8089/epixel",
		"http://127.0.0.2",
		"http://localhost:9000",
		"http://[::1]:8089/",
		"https://10.0.0.1/",
	} {
		if _, err := Parse([]byte(yml(ok, "")), envLookup(nil)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"http://shop.example.com/api",
		"http://10.0.0.1/",
		"http://0.0.0.0:8089",
		"http://localhost.example.com",
		"http://[::2]/",
	} {
		configErr(t, yml(bad, ""), nil, 4, "insecure_http")
		if _, err := Parse([]byte(yml(bad, "    insecure_http: true\n")), envLookup(nil)); err != nil {
			t.Errorf("%s with insecure_http: %v", bad, err)
		}
	}
	configErr(t, yml("http://shop.example.com", "    insecure_http: false\n"), nil, 4, "insecure_http")
	for _, bad := range []string{"ftp://shop.example.com", "shop.example.com/api", "https://", "/api/v2", "https:///path"} {
		configErr(t, yml(bad, ""), nil, 4, "base_url")
	}
	configErr(t, yml("https://s.example.com", "    insecure_http: maybe\n"), nil, 5, "maybe")
}

func TestConfigBadNumbers(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"rate", "0", "rate"},
		{"rate", "-1", "rate"},
		{"rate", "fast", "rate"},
		{"rate", "NaN", "rate"},
		{"rate", "Inf", "rate"},
		{"rate", "+inf", "rate"},
		{"burst", "0", "burst"},
		{"burst", "-2", "burst"},
		{"burst", "1.5", "burst"},
		{"burst", "lots", "burst"},
		{"concurrency", "0", "concurrency"},
		{"concurrency", "-1", "concurrency"},
		{"concurrency", "many", "concurrency"},
		{"concurrency", "2.5", "concurrency"},
		{"concurrency", "auto2", "concurrency"},
		{"timeout", "30", "timeout"},
		{"timeout", "0s", "timeout"},
		{"timeout", "-1s", "timeout"},
		{"timeout", "soon", "timeout"},
	} {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			yml := "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\n    " +
				tc.key + ": " + tc.value + "\n    token: t\n"
			configErr(t, yml, nil, 5, tc.want)
		})
	}
}

// TestConfigFractionalConcurrency: a bad concurrency is reported at its own
// line, whether or not burst is set.
func TestConfigFractionalConcurrency(t *testing.T) {
	configErr(t, "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\n    concurrency: 2.5\n", nil, 5, "concurrency")
	configErr(t, "targets:\n  s:\n    vendor: epixel\n    burst: 2\n    base_url: https://s.example.com\n    concurrency: 2.5\n", nil, 6, "concurrency")
}

// TestConfigRateNaN: strconv.ParseFloat accepts "NaN", and NaN <= 0 is
// false: a NaN rate must still be refused.
func TestConfigRateNaN(t *testing.T) {
	configErr(t, "targets:\n  s:\n    vendor: epixel\n    base_url: https://s.example.com\n    rate: NaN\n", nil, 5, "rate")
}

// secretConfigs are configs that fail while holding secrets: none of the
// secrets may appear in the error.
var secretConfigs = []struct {
	name, yml string
	line      int
}{
	{"userinfo and query over plain http", "targets:\n  s:\n    vendor: epixel\n    token: ${TOKEN}\n    base_url: http://admin:hunter2@shop.example.com/api?apikey=K3Y\n", 5},
	{"userinfo and query, wrong scheme", "targets:\n  s:\n    vendor: epixel\n    token: ${TOKEN}\n    base_url: ftp://admin:hunter2@shop.example.com/?apikey=K3Y\n", 5},
	{"query, no scheme", "targets:\n  s:\n    vendor: epixel\n    token: ${TOKEN}\n    base_url: shop.example.com/api?apikey=K3Y&x=hunter2\n", 5},
	{"from the environment", "targets:\n  s:\n    vendor: epixel\n    token: ${TOKEN}\n    base_url: ${SECRET_URL}\n", 5},
	{"unparsable", "targets:\n  s:\n    vendor: epixel\n    token: ${TOKEN}\n    base_url: \"http://admin:hunter2@shop example.com/?apikey=K3Y\"\n", 5},
	{"unknown key after secrets", "targets:\n  s:\n    vendor: epixel\n    apikey: K3Y\n    token: ${TOKEN}\n    base_url: https://s.example.com\n    colour: blue\n", 7},
	{"missing variable after secrets", "targets:\n  s:\n    vendor: epixel\n    apikey: K3Y\n    token: ${TOKEN}\n    base_url: https://${HOST}\n", 6},
	{"bad value after secrets", "targets:\n  s:\n    vendor: epixel\n    apikey: K3Y\n    token: ${TOKEN}\n    base_url: https://s.example.com\n    rate: none\n", 7},
	{"unknown vendor with secrets", "targets:\n  s:\n    vendor: nope\n    apikey: K3Y\n    token: ${TOKEN}\n    base_url: https://s.example.com\n", 3},
}

var secretEnv = map[string]string{"TOKEN": "s3cret-token", "SECRET_URL": "http://admin:hunter2@10.1.2.3/x?apikey=K3Y"}

func TestConfigErrorsHoldNoSecrets(t *testing.T) {
	for _, tc := range secretConfigs {
		t.Run(tc.name, func(t *testing.T) {
			msg := configErr(t, tc.yml, secretEnv, tc.line)
			for _, secret := range []string{"hunter2", "K3Y", "s3cret-token"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q holds the secret %q", msg, secret)
				}
			}
		})
	}
}

// TestConfigOpaqueURLSecret: "user:pass@host" without a scheme parses as an
// opaque URL with scheme "user": its password must not be printed either.
func TestConfigOpaqueURLSecret(t *testing.T) {
	msg := configErr(t, "targets:\n  s:\n    vendor: epixel\n    base_url: admin:hunter2@shop.example.com/api\n", nil, 4, "base_url")
	if strings.Contains(msg, "hunter2") {
		t.Errorf("error %q holds the password", msg)
	}
}

func TestConfigFingerprint(t *testing.T) {
	fp := func(yml string, env map[string]string) string {
		t.Helper()
		return mustParseConfig(t, yml, env).Fingerprint()
	}
	base := fp(allVendorsYAML, allVendorsEnv)
	if base != fp(allVendorsYAML, allVendorsEnv) {
		t.Fatal("fingerprint differs between two parses of one config")
	}
	// Secrets rotate between a run and its resume; they are not what the
	// targets point at.
	for _, tc := range []struct {
		name, yml string
		env       map[string]string
	}{
		{"token", allVendorsYAML, map[string]string{"SHOP_APIKEY": "shop-key", "SHOP_TOKEN": "rotated"}},
		{"apikey", allVendorsYAML, map[string]string{"SHOP_APIKEY": "rotated", "SHOP_TOKEN": "shop-token"}},
		{"literal token", strings.Replace(allVendorsYAML, "token: kii-token", "token: rotated", 1), allVendorsEnv},
	} {
		if got := fp(tc.yml, tc.env); got != base {
			t.Errorf("another %s changed the fingerprint", tc.name)
		}
	}
	differs := map[string]string{
		"base_url":     strings.Replace(allVendorsYAML, "https://shop.example.com/api/v2", "https://shop.example.com/api/v3", 1),
		"vendor":       strings.Replace(allVendorsYAML, "vendor: kii\n    base_url: https://api-jp.kii.com\n    token: kii-token\n    app_id: app123", "vendor: epixel\n    base_url: https://api-jp.kii.com\n    token: kii-token", 1),
		"app_id":       strings.Replace(allVendorsYAML, "app_id: app123", "app_id: app124", 1),
		"target name":  strings.Replace(allVendorsYAML, "  admin:", "  admin2:", 1),
		"target added": allVendorsYAML + "  more:\n    vendor: kii\n    base_url: https://api.kii.com\n",
	}
	for name, yml := range differs {
		if yml == allVendorsYAML {
			t.Fatalf("%s: the replacement did not apply", name)
		}
		if got := fp(yml, allVendorsEnv); got == base {
			t.Errorf("%s changed, the fingerprint did not", name)
		}
	}
	// The order of targets in the file does not matter.
	a := "targets:\n  a:\n    vendor: epixel\n    base_url: https://a.example.com\n  b:\n    vendor: kii\n    base_url: https://b.example.com\n"
	b := "targets:\n  b:\n    vendor: kii\n    base_url: https://b.example.com\n  a:\n    vendor: epixel\n    base_url: https://a.example.com\n"
	if fp(a, nil) != fp(b, nil) {
		t.Error("fingerprint depends on the order of targets")
	}
}

func TestConfigTargetInfos(t *testing.T) {
	yml := allVendorsYAML + "  chat2:\n    vendor: msgkart\n    base_url: https://m.example.com\n    apikey: k\n"
	got := mustParseConfig(t, yml, allVendorsEnv).Infos()
	want := batch.Targets{
		"shop":  {Vendor: "epixel", Actions: []batch.Action{batch.Disable, batch.Enable, batch.UpgradeRole, batch.DowngradeRole}},
		"admin": {Vendor: "clearsquare", Actions: []batch.Action{batch.ToggleStatus}},
		"app":   {Vendor: "kii", Actions: []batch.Action{batch.Disable, batch.Enable}, Identity: kii.Identity},
		"chat":  {Vendor: "msgkart", Actions: []batch.Action{batch.Disable, batch.Enable}, NeedsEmail: true, HasEmail: true},
		"chat2": {Vendor: "msgkart", Actions: []batch.Action{batch.Disable, batch.Enable}, NeedsEmail: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("targetInfos:\n got %+v\nwant %+v", got, want)
	}
}
