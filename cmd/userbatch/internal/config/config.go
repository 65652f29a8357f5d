// Package config reads targets.yaml into typed settings and turns each
// target into the pipeline's batch.Target through one constructor
// (Target.Runtime), which owns every conversion: a setting cannot be parsed
// here and then forgotten on the way to the pipeline.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"
	"gopkg.in/yaml.v3"

	"github.com/userbatch/userbatch/adapters"
	"github.com/userbatch/userbatch/adapters/declarative"
	"github.com/userbatch/userbatch/batch"
)

// MaxSize bounds targets.yaml: a config is a few kilobytes; a larger file is
// a mistake, and reading a gigabyte of one would exhaust memory.
const MaxSize = 1 << 20

// Defaults for a target that does not say; conservative, since vendors
// rarely document their limits.
const (
	DefaultRate    = 10
	DefaultBurst   = 1
	DefaultTimeout = 30 * time.Second
	DefaultMaxWait = 5 * time.Minute
	// AutoCeiling bounds concurrency: auto, the default, where Little's law
	// sizes the in-flight cap from the rate and the latency seen.
	AutoCeiling = 256
	// maxProtected bounds the protected list.
	maxProtected = 100_000
	// maxItems bounds the file's lines and list items together.
	maxItems = maxProtected + 50_000
)

// Target is one entry under `targets:`. Every key a target may set is a
// field with a yaml tag: the list of known keys is derived from these tags,
// never written again beside them. Vendor-specific keys (kii's app_id,
// msgkart's email) are the registry's (adapters.Vendor.Keys) and land in
// Extra.
type Target struct {
	Name string `yaml:"-"`
	Line int    `yaml:"-"`

	Vendor       string        `yaml:"vendor"`
	BaseURL      string        `yaml:"base_url"`
	APIKey       string        `yaml:"apikey"`
	Token        string        `yaml:"token"`
	Rate         float64       `yaml:"rate"`
	Burst        int           `yaml:"burst"`
	Concurrency  Concurrency   `yaml:"concurrency"`
	Timeout      time.Duration `yaml:"timeout"`
	Protected    []string      `yaml:"protected"`
	InsecureHTTP bool          `yaml:"insecure_http"`
	MaxChanges   int           `yaml:"max_changes"`
	MaxWait      time.Duration `yaml:"max_wait"`

	Extra map[string]string `yaml:"-"`
	// Spec is an http target's vendor description, loaded from its spec key.
	Spec *declarative.Spec `yaml:"-"`

	lines   map[string]int // where each key was set
	specRef string         // the spec as loaded: a path or builtin:NAME
}

// Concurrency is `auto` (Auto, up to AutoCeiling) or a fixed cap.
type Concurrency struct {
	Auto bool
	Max  int
}

// Config is a parsed targets.yaml.
type Config struct {
	Targets map[string]*Target
	// Ledger is where every run's changes are remembered across runs:
	// sqlite:PATH or postgres://... ("": no ledger).
	Ledger string
	// Webhook, when set, is POSTed a JSON summary at the end of a run (a
	// secret: never logged).
	Webhook string
}

// Load reads and parses the config at path, resolving ${VAR} from the
// environment.
func Load(path string) (*Config, error) {
	data, err := readCapped(path)
	if err != nil {
		return nil, err
	}
	cfg, err := parse(data, filepath.Dir(path), os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s: larger than %d KiB: a targets config is a few lines per target; is this the right file?", path, MaxSize>>10)
	}
	return data, nil
}

// Parse reads targets.yaml. lookup resolves ${VAR}. A relative spec path
// is taken from the working directory; Load takes it from the file's.
func Parse(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	return parse(data, "", lookup)
}

func parse(data []byte, dir string, lookup func(string) (string, bool)) (*Config, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("larger than %d KiB: a targets config is a few lines per target", MaxSize>>10)
	}
	// The YAML parser makes a node of a few hundred bytes for every item:
	// a megabyte of one-letter list items would cost over 100 MiB before a
	// limit on them could be checked. Lines and commas bound the items.
	if n := bytes.Count(data, []byte(",")) + bytes.Count(data, []byte("\n")); n > maxItems {
		return nil, fmt.Errorf("holds about %d list items and lines, more than %d: a targets config is a few lines per target (protected takes at most %d ids)", n, maxItems, maxProtected)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("the config is empty: expected a `targets:` mapping")
	}
	if n := findAlias(&doc); n != nil {
		return nil, lineErr(n, "YAML aliases (*%s) are not accepted in targets.yaml: write the values out", n.Value)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, lineErr(root, "expected a mapping with a `targets:` key")
	}
	cfg := &Config{Targets: map[string]*Target{}}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			return nil, lineErr(k, "%s is given twice", k.Value)
		}
		seen[k.Value] = true
		if err := cfg.parseTop(k, v, dir, lookup); err != nil {
			return nil, err
		}
	}
	if len(cfg.Targets) == 0 {
		return nil, errors.New("no targets: add at least one under `targets:`")
	}
	return cfg, nil
}

// parseTop reads one top-level key.
func (c *Config) parseTop(k, v *yaml.Node, dir string, lookup func(string) (string, bool)) error {
	switch k.Value {
	case "targets":
		return c.parseTargets(v, dir, lookup)
	case "ledger":
		s, err := topScalar(k, v, lookup)
		if err == nil {
			err = checkLedger(s, v)
		}
		c.Ledger = s
		return err
	case "notify":
		return c.parseNotify(v, lookup)
	}
	return lineErr(k, "unknown key %q (expected: targets, ledger, notify)", k.Value)
}

func topScalar(k, v *yaml.Node, lookup func(string) (string, bool)) (string, error) {
	if v.Kind != yaml.ScalarNode {
		return "", lineErr(v, "%s must be a single value", k.Value)
	}
	s, err := expand(v.Value, lookup)
	if err != nil {
		return "", lineErr(v, "%s: %v", k.Value, err)
	}
	return s, nil
}

// checkLedger accepts what the ledger can open, naming no password.
func checkLedger(s string, v *yaml.Node) error {
	switch {
	case s == "":
		return lineErr(v, "ledger is empty: give sqlite:PATH or postgres://..., or leave the key out")
	case strings.HasPrefix(s, "sqlite:") && len(s) > len("sqlite:"):
		return nil
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		return nil
	}
	return lineErr(v, "ledger must be sqlite:PATH or postgres://user@host/db (got %q)", redactURL(s))
}

func (c *Config) parseNotify(n *yaml.Node, lookup func(string) (string, bool)) error {
	if n.Kind != yaml.MappingNode {
		return lineErr(n, "notify must be a mapping, such as notify: {webhook: ${OPS_WEBHOOK_URL}}")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value != "webhook" {
			return lineErr(k, "notify: unknown key %q (expected: webhook)", k.Value)
		}
		s, err := topScalar(k, v, lookup)
		if err != nil {
			return err
		}
		u, perr := url.Parse(s)
		if perr != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			return lineErr(v, "notify: webhook must be an https:// URL (plain http only to loopback); the value is not shown: it is a secret")
		}
		c.Webhook = s
	}
	return nil
}

// LoadLedger reads only the `ledger:` key of the config at path, resolving
// its ${VAR}s: an auditor listing history needs the ledger's credentials,
// not every vendor's. "" when the config names no ledger.
func LoadLedger(path string) (string, error) {
	data, err := readCapped(path)
	if err != nil {
		return "", err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return "", fmt.Errorf("%s: not valid YAML: %w", path, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return "", fmt.Errorf("%s: expected a mapping with a `targets:` key", path)
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k, v := root.Content[i], root.Content[i+1]; k.Value == "ledger" {
			s, err := topScalar(k, v, os.LookupEnv)
			if err == nil {
				err = checkLedger(s, v)
			}
			if err != nil {
				return "", fmt.Errorf("%s: %w", path, err)
			}
			return s, nil
		}
	}
	return "", nil
}

// LoadIdentities reads only each target's `vendor:` (and an http target's
// `spec:`) in the config at path and returns how each target's vendor
// compares user cells (targets whose vendor declares none, or is unknown,
// are left out: byte for byte). Like
// LoadLedger it needs no vendor's credentials.
func LoadIdentities(path string) (map[string]batch.Identity, error) {
	data, err := readCapped(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Targets map[string]struct {
			Vendor string `yaml:"vendor"`
			Spec   string `yaml:"spec"`
		} `yaml:"targets"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: not valid YAML: %w", path, err)
	}
	ids := map[string]batch.Identity{}
	for name, t := range doc.Targets {
		if v, ok := adapters.Lookup(t.Vendor); ok && v.Identity != nil {
			ids[name] = v.Identity
		} else if id, ok := specIdentity(t.Vendor, t.Spec, filepath.Dir(path)); ok {
			ids[name] = id
		}
	}
	return ids, nil
}

// specPath is where a target's spec: ref points: a builtin, or a path
// relative to the config's folder dir ("" for none).
func specPath(ref, dir string) string {
	if !strings.HasPrefix(ref, declarative.BuiltinPrefix) && !filepath.IsAbs(ref) && dir != "" {
		return filepath.Join(dir, ref)
	}
	return ref
}

// specIdentity is the identity an http target's spec declares; a spec
// named through ${VAR} or ${file:} is found as the run finds it. One that
// cannot be found or opened gives none: its users are compared by their
// text, and the run itself reports the spec's problem.
func specIdentity(vendor, ref, dir string) (batch.Identity, bool) {
	if vendor != adapters.HTTP || ref == "" {
		return nil, false
	}
	ref, err := expand(ref, os.LookupEnv)
	if err != nil || ref == "" {
		return nil, false
	}
	spec, err := declarative.Open(specPath(ref, dir))
	if err != nil {
		return nil, false
	}
	return spec.Identity(), true
}

// findAlias returns the first alias node: an alias expands to its anchor
// wherever it is used, so a few kilobytes of them can stand for gigabytes.
func findAlias(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		return n
	}
	for _, c := range n.Content {
		if a := findAlias(c); a != nil {
			return a
		}
	}
	return nil
}

func (c *Config) parseTargets(n *yaml.Node, dir string, lookup func(string) (string, bool)) error {
	if n.Kind != yaml.MappingNode {
		return lineErr(n, "`targets` must be a mapping of target names")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "" {
			return lineErr(k, "a target needs a name")
		}
		if _, dup := c.Targets[k.Value]; dup {
			return lineErr(k, "target %q is defined twice", k.Value)
		}
		t, err := parseTarget(k.Value, v, dir, lookup)
		if err != nil {
			return err
		}
		c.Targets[k.Value] = t
	}
	return nil
}

func parseTarget(name string, n *yaml.Node, dir string, lookup func(string) (string, bool)) (*Target, error) {
	if n.Kind != yaml.MappingNode {
		return nil, lineErr(n, "target %s: expected a mapping of settings", name)
	}
	t := &Target{Name: name, Line: n.Line, Rate: DefaultRate, Burst: DefaultBurst,
		Concurrency: Concurrency{Auto: true, Max: AutoCeiling}, Timeout: DefaultTimeout,
		MaxWait: DefaultMaxWait, Extra: map[string]string{}, lines: map[string]int{}}
	vendor, err := t.findVendor(n)
	if err != nil {
		return nil, err
	}
	if vendor.Name == adapters.HTTP {
		if vendor, err = t.loadSpec(vendor, n, dir, lookup); err != nil {
			return nil, err
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if _, dup := t.lines[k.Value]; dup {
			return nil, lineErr(k, "target %s: %s is set twice", name, k.Value)
		}
		t.lines[k.Value] = k.Line
		if err := t.set(vendor, k, v, lookup); err != nil {
			return nil, err
		}
	}
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("target %s: %w", name, err)
	}
	return t, nil
}

// findVendor reads the vendor first: which other keys are allowed depends
// on it. Unknown keys are reported before a missing vendor, at their line.
func (t *Target) findVendor(n *yaml.Node) (adapters.Vendor, error) {
	line := n.Line
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], n.Content[i+1]; k.Value == "vendor" && v.Kind == yaml.ScalarNode {
			t.Vendor, line = v.Value, v.Line
		}
	}
	for i := 0; i+1 < len(n.Content) && t.Vendor != adapters.HTTP; i += 2 {
		// An http target's keys are its spec's: set checks them.
		if k := n.Content[i]; !anyVendorKey(k.Value) {
			return adapters.Vendor{}, fmt.Errorf("line %d: target %s: unknown key %q (known: %s)", k.Line, t.Name, k.Value, strings.Join(AllKeys(), ", "))
		}
	}
	vendor, ok := adapters.Lookup(t.Vendor)
	if !ok {
		return vendor, fmt.Errorf("line %d: target %s: vendor %q is not one of: %s", line, t.Name, t.Vendor, strings.Join(adapters.Names(), ", "))
	}
	return vendor, nil
}

// loadSpec loads an http target's spec (relative to dir, the config's
// directory, or absolute, or builtin:NAME) and returns the vendor with the
// keys the spec reads. A spec that fails to load refuses the config.
func (t *Target) loadSpec(vendor adapters.Vendor, n *yaml.Node, dir string, lookup func(string) (string, bool)) (adapters.Vendor, error) {
	var ref string
	line := n.Line
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], n.Content[i+1]; k.Value == "spec" {
			s, err := scalar(t.Name, k, v, lookup)
			if err != nil {
				return vendor, err
			}
			ref, line = s, k.Line
		}
	}
	if ref == "" {
		return vendor, fmt.Errorf("line %d: target %s: vendor http needs spec: the path of the vendor's spec (relative to this file), or builtin:NAME", n.Line, t.Name)
	}
	ref = specPath(ref, dir)
	spec, err := declarative.Open(ref)
	if err != nil {
		return vendor, fmt.Errorf("line %d: target %s: spec: %w", line, t.Name, err)
	}
	t.Spec = spec
	t.specRef = ref
	vendor.Keys = []string{"spec"}
	vendor.Credentials = nil
	for _, k := range spec.Keys() {
		_, common := commonFields[k]
		switch {
		case contains(credentialKeys, k):
			// The spec reads it: a credential this target takes.
			vendor.Credentials = append(vendor.Credentials, k)
		case common || k == "spec":
			return vendor, fmt.Errorf("line %d: target %s: spec %s: config key %s is a key every target has: name it otherwise", line, t.Name, ref, k)
		default:
			vendor.Keys = append(vendor.Keys, k)
		}
	}
	return vendor, nil
}

// set decodes one key into its field, or into Extra for a vendor key.
func (t *Target) set(vendor adapters.Vendor, k, v *yaml.Node, lookup func(string) (string, bool)) error {
	field, common := commonFields[k.Value]
	if common && !takes(vendor, k.Value) || !common && !vendorHas(vendor, k.Value) {
		// A key the vendor never uses is a mistake (meant for another
		// target, or the wrong vendor): silently ignoring it hides that.
		return lineErr(k, "target %s: vendor %s does not use %s: remove it (a %s target takes: %s)", t.Name, vendor.Name, k.Value, vendor.Name, strings.Join(keysOf(vendor), ", "))
	}
	if !common {
		s, err := scalar(t.Name, k, v, lookup)
		if err != nil {
			return err
		}
		t.Extra[k.Value] = s
		return nil
	}
	fv := reflect.ValueOf(t).Elem().Field(field)
	if k.Value == "protected" {
		return t.setProtected(k, v)
	}
	s, err := scalar(t.Name, k, v, lookup)
	if err != nil || s == "" { // an empty value keeps the default
		return err
	}
	if err := decodeScalar(fv, s); err != nil {
		return fmt.Errorf("line %d: target %s: %s %q %s", v.Line, t.Name, k.Value, redactValue(k.Value, s), err)
	}
	return nil
}

func (t *Target) setProtected(k, v *yaml.Node) error {
	var list []string
	if v.Kind != yaml.SequenceNode || v.Decode(&list) != nil {
		return lineErr(v, "target %s: protected must be a list of user ids (exact ids, or globs with *)", t.Name)
	}
	if len(list) > maxProtected {
		return lineErr(k, "target %s: protected lists %d ids; at most %d", t.Name, len(list), maxProtected)
	}
	t.Protected = list
	return nil
}

func scalar(target string, k, v *yaml.Node, lookup func(string) (string, bool)) (string, error) {
	if v.Kind != yaml.ScalarNode {
		return "", lineErr(v, "target %s: %s must be a single value", target, k.Value)
	}
	s, err := expand(v.Value, lookup)
	if err != nil {
		return "", lineErr(v, "target %s: %s: %v", target, k.Value, err)
	}
	return s, nil
}

// redactValue keeps credentials out of error messages.
func redactValue(key, s string) string {
	switch key {
	case "apikey", "token":
		return "(not shown)"
	case "base_url":
		return redactURL(s)
	}
	return s
}

// commonFields maps each key every target may set to its field index in
// Target, from the yaml tags.
var commonFields = func() map[string]int {
	m := map[string]int{}
	rt := reflect.TypeOf(Target{})
	for i := 0; i < rt.NumField(); i++ {
		if tag := rt.Field(i).Tag.Get("yaml"); tag != "" && tag != "-" {
			m[tag] = i
		}
	}
	return m
}()

// CommonKeys lists the keys every target may set, in the order Target
// declares them.
func CommonKeys() []string {
	var keys []string
	rt := reflect.TypeOf(Target{})
	for i := 0; i < rt.NumField(); i++ {
		if tag := rt.Field(i).Tag.Get("yaml"); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return keys
}

// AllKeys is every key some target may set.
func AllKeys() []string {
	keys := CommonKeys()
	for _, v := range adapters.Vendors {
		for _, k := range v.Keys {
			if !contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// keysOf lists the keys a target of vendor v takes: the common ones but
// the credentials it does not use, then its own.
func keysOf(v adapters.Vendor) []string {
	var keys []string
	for _, k := range CommonKeys() {
		if takes(v, k) {
			keys = append(keys, k)
		}
	}
	return append(keys, v.Keys...)
}

// credentialKeys are the common keys that hold a credential: a vendor
// takes one only when the registry lists it among its Credentials.
var credentialKeys = []string{"apikey", "token"}

// takes reports whether vendor v uses the common key: every key but a
// credential the registry does not list for it (an entry may explain
// itself, as "email (or an email column)").
func takes(v adapters.Vendor, key string) bool {
	if !contains(credentialKeys, key) {
		return true
	}
	for _, c := range v.Credentials {
		if f := strings.Fields(c); len(f) > 0 && f[0] == key {
			return true
		}
	}
	return false
}

func anyVendorKey(key string) bool { return contains(AllKeys(), key) }

func vendorHas(v adapters.Vendor, key string) bool { return contains(v.Keys, key) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Infos is what CSV validation needs to know of the targets.
func (c *Config) Infos() batch.Targets {
	ts := batch.Targets{}
	for name, t := range c.Targets {
		v, _ := adapters.Lookup(t.Vendor)
		ts[name] = batch.TargetInfo{Vendor: v.Name, Actions: v.Actions, Identity: v.Identity,
			Columns: v.Columns, Validator: v.Validator, Inverter: v.Inverter, Settings: t.Extra}
		if t.Spec != nil {
			ts[name] = t.specInfo()
		}
	}
	return ts
}

// specInfo is what validation knows of an http target: its spec's
// actions, identity, columns and inverses.
func (t *Target) specInfo() batch.TargetInfo {
	spec := t.Spec
	return batch.TargetInfo{Vendor: spec.Vendor(), Actions: spec.Actions(), Identity: spec.Identity(),
		Columns: spec.Columns(), Validator: spec, Inverter: spec, Settings: t.specConfig()}
}

// specConfig is the target's keys as a spec reads them.
func (t *Target) specConfig() map[string]string {
	config := map[string]string{"apikey": t.APIKey, "token": t.Token}
	for k, v := range t.Extra {
		config[k] = v
	}
	return config
}

// SpecRef is an http target's spec as loaded (a path or builtin:NAME); ""
// for other vendors.
func (t *Target) SpecRef() string { return t.specRef }

// Fingerprint identifies what the targets point at, never their secrets,
// so that a resume or an apply can refuse a config that changed under it.
func (c *Config) Fingerprint() string {
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(c.Targets)) {
		t := c.Targets[name]
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00", name, t.Vendor, t.BaseURL)
		for _, k := range slices.Sorted(maps.Keys(t.Extra)) {
			fmt.Fprintf(h, "%s=%s\x00", k, t.Extra[k])
		}
		if t.Spec != nil {
			fmt.Fprintf(h, "spec %s\x00", t.Spec.Digest)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Names lists the target names, sorted.
func (c *Config) Names() []string { return slices.Sorted(maps.Keys(c.Targets)) }

// Runtime builds every target for the pipeline; see Target.Runtime.
func (c *Config) Runtime(client *http.Client, share float64) (map[string]*batch.Target, error) {
	targets := map[string]*batch.Target{}
	for name, tc := range c.Targets {
		t, err := tc.Runtime(client, share)
		if err != nil {
			return nil, err
		}
		targets[name] = t
	}
	return targets, nil
}

// Runtime makes the pipeline's target: the vendor adapter and every setting
// that governs sending to it. share is the part of the target's rate this
// process may use: 1/N for one of N shards, so that N shards together keep
// to the rate. client is shared by every target (nil: a new one).
func (t *Target) Runtime(client *http.Client, share float64) (*batch.Target, error) {
	if client == nil {
		client = NewHTTPClient()
	}
	if !(share > 0) || share > 1 {
		share = 1
	}
	a, err := adapters.New(t.Vendor, adapters.Settings{BaseURL: t.BaseURL, APIKey: t.APIKey,
		Token: t.Token, Extra: t.Extra, Client: client, Spec: t.Spec})
	if err != nil {
		return nil, fmt.Errorf("config: line %d: target %s: %v", t.Line, t.Name, err)
	}
	return &batch.Target{
		Name:            t.Name,
		Adapter:         a,
		Limiter:         rate.NewLimiter(rate.Limit(t.Rate*share), t.Burst),
		Concurrency:     t.Concurrency.Max,
		AutoConcurrency: t.Concurrency.Auto,
		Timeout:         t.Timeout,
		Protected:       batch.NewProtected(t.Protected, t.identity()),
		MaxWait:         t.MaxWait,
		MaxChanges:      t.MaxChanges,
	}, nil
}

// identity is how the target's vendor compares user cells: an http
// target's spec says, another vendor's registry entry. Protected patterns
// and the input's rows are matched by it.
func (t *Target) identity() batch.Identity {
	if t.Spec != nil {
		return t.Spec.Identity()
	}
	if v, ok := adapters.Lookup(t.Vendor); ok && v.Identity != nil {
		return v.Identity
	}
	return batch.ExactIdentity{}
}

// NewHTTPClient is shared by every target; each adapter uses a copy that
// does not follow redirects (httpcall.NoRedirects).
func NewHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	return &http.Client{Transport: tr}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactURL drops userinfo, query and fragment, any of which may hold a
// secret; a URL it cannot take apart is not shown at all.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "(not shown: not a URL with a scheme and host)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

func lineErr(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("line %d: %s", n.Line, fmt.Sprintf(format, args...))
}
