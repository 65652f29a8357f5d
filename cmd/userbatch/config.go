package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/userbatch/userbatch/adapters"
	"github.com/userbatch/userbatch/batch"
)

// targetConfig is one entry under `targets:` in targets.yaml.
type targetConfig struct {
	Name            string
	Line            int
	Vendor          string
	Settings        adapters.Settings
	Rate            float64
	Burst           int
	Concurrency     int // with AutoConcurrency, the most it may grow to
	AutoConcurrency bool
	Timeout         time.Duration
	Protected       []string
	InsecureHTTP    bool
}

// config is a parsed targets.yaml.
type config struct {
	Targets map[string]*targetConfig
}

// Defaults for a target that does not say; conservative, since vendors
// rarely document their limits.
const (
	defaultRate  = 10
	defaultBurst = 1
	// autoCeiling bounds concurrency: auto, the default: Little's law sizes
	// the in-flight cap from the rate and the latency seen, up to this.
	autoCeiling    = 256
	defaultTimeout = 30 * time.Second
)

// commonKeys are the keys every target may set; vendors add their own.
var commonKeys = []string{"vendor", "base_url", "apikey", "token", "rate", "burst", "concurrency", "timeout", "protected", "insecure_http"}

func loadConfig(path string) (*config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	cfg, err := parseConfig(data, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// parseConfig reads targets.yaml. lookup resolves ${VAR}.
func parseConfig(data []byte, lookup func(string) (string, bool)) (*config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("the config is empty: expected a `targets:` mapping")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, lineErr(root, "expected a mapping with a `targets:` key")
	}
	cfg := &config{Targets: map[string]*targetConfig{}}
	seen := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "targets" {
			return nil, lineErr(k, "unknown key %q (expected: targets)", k.Value)
		}
		if seen {
			return nil, lineErr(k, "targets is given twice")
		}
		seen = true
		if err := cfg.parseTargets(v, lookup); err != nil {
			return nil, err
		}
	}
	if len(cfg.Targets) == 0 {
		return nil, fmt.Errorf("no targets: add at least one under `targets:`")
	}
	return cfg, nil
}

func (c *config) parseTargets(n *yaml.Node, lookup func(string) (string, bool)) error {
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
		t, err := parseTarget(k.Value, v, lookup)
		if err != nil {
			return err
		}
		c.Targets[k.Value] = t
	}
	return nil
}

func parseTarget(name string, n *yaml.Node, lookup func(string) (string, bool)) (*targetConfig, error) {
	if n.Kind != yaml.MappingNode {
		return nil, lineErr(n, "target %s: expected a mapping of settings", name)
	}
	values, lines, err := targetValues(name, n, lookup)
	if err != nil {
		return nil, err
	}
	for key, line := range lines {
		if !anyVendorKey(key) {
			return nil, fmt.Errorf("line %d: target %s: unknown key %q (known: %s)", line, name, key, strings.Join(allKeys(), ", "))
		}
	}
	t := &targetConfig{Name: name, Line: n.Line, Vendor: values["vendor"]}
	vendor, ok := adapters.Lookup(t.Vendor)
	if !ok {
		line, set := lines["vendor"]
		if !set {
			line = n.Line
		}
		return nil, fmt.Errorf("line %d: target %s: vendor %q is not one of: %s",
			line, name, t.Vendor, strings.Join(adapters.Names(), ", "))
	}
	for key, line := range lines {
		if !allowedKey(vendor, key) {
			return nil, fmt.Errorf("line %d: target %s: unknown key %q for vendor %s (known: %s)",
				line, name, key, vendor.Name, strings.Join(append(append([]string{}, commonKeys...), vendor.Keys...), ", "))
		}
	}
	if err := t.setValues(values, lines, n.Line); err != nil {
		return nil, fmt.Errorf("target %s: %w", name, err)
	}
	return t, nil
}

// allKeys is every key some target may set.
func allKeys() []string {
	keys := append([]string{}, commonKeys...)
	for _, v := range adapters.Vendors {
		keys = append(keys, v.Keys...)
	}
	return keys
}

func anyVendorKey(key string) bool {
	for _, k := range allKeys() {
		if k == key {
			return true
		}
	}
	return false
}

func allowedKey(v adapters.Vendor, key string) bool {
	for _, k := range append(append([]string{}, commonKeys...), v.Keys...) {
		if k == key {
			return true
		}
	}
	return false
}

// targetValues flattens a target's mapping to strings, expanding ${...}, and
// remembers each key's line.
func targetValues(name string, n *yaml.Node, lookup func(string) (string, bool)) (map[string]string, map[string]int, error) {
	values, lines := map[string]string{}, map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if _, dup := lines[k.Value]; dup {
			return nil, nil, lineErr(k, "target %s: %s is set twice", name, k.Value)
		}
		lines[k.Value] = k.Line
		if k.Value == "protected" {
			continue // a list, read below
		}
		if v.Kind != yaml.ScalarNode {
			return nil, nil, lineErr(v, "target %s: %s must be a single value", name, k.Value)
		}
		s, err := expand(v.Value, lookup)
		if err != nil {
			return nil, nil, lineErr(v, "target %s: %s: %v", name, k.Value, err)
		}
		values[k.Value] = s
	}
	if p := findKey(n, "protected"); p != nil {
		var list []string
		if err := p.Decode(&list); err != nil {
			return nil, nil, lineErr(p, "target %s: protected must be a list of user ids", name)
		}
		values["protected"] = strings.Join(list, "\x00")
	}
	return values, lines, nil
}

func findKey(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

var refPattern = regexp.MustCompile(`\$\{([^}]*)\}`)

// expand replaces ${VAR} with the environment variable and ${file:/path}
// with the file's content less one trailing newline, for mounted secrets.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	var firstErr error
	out := refPattern.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		if path, ok := strings.CutPrefix(name, "file:"); ok {
			b, err := os.ReadFile(path)
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("reading ${file:%s}: %v", path, err)
			}
			v := strings.TrimSuffix(string(b), "\n")
			return strings.TrimSuffix(v, "\r")
		}
		v, ok := lookup(name)
		if !ok && firstErr == nil {
			firstErr = fmt.Errorf("environment variable %s is not set", name)
		}
		return v
	})
	return out, firstErr
}

func (t *targetConfig) setValues(v map[string]string, lines map[string]int, line int) error {
	t.Settings = adapters.Settings{BaseURL: v["base_url"], APIKey: v["apikey"], Token: v["token"], Extra: map[string]string{}}
	for k, val := range v {
		if !isCommon(k) {
			t.Settings.Extra[k] = val
		}
	}
	var err error
	at := func(key string) int {
		if l, ok := lines[key]; ok {
			return l
		}
		return line
	}
	if t.Rate, err = number(v, "rate", defaultRate, at); err != nil {
		return err
	}
	burst, err := number(v, "burst", defaultBurst, at)
	if err != nil {
		return err
	}
	t.Burst = int(burst)
	if t.Burst < 1 || float64(t.Burst) != burst {
		return fmt.Errorf("line %d: burst must be a whole number of at least 1", at("burst"))
	}
	if err := t.setConcurrency(v["concurrency"], at("concurrency")); err != nil {
		return err
	}
	if t.Timeout, err = duration(v["timeout"], at("timeout")); err != nil {
		return err
	}
	if v["protected"] != "" {
		t.Protected = strings.Split(v["protected"], "\x00")
	}
	if t.InsecureHTTP, err = flag(v["insecure_http"], at("insecure_http")); err != nil {
		return err
	}
	return checkBaseURL(t.Settings.BaseURL, t.InsecureHTTP, at("base_url"))
}

// setConcurrency reads `auto` (the default) or a fixed cap.
func (t *targetConfig) setConcurrency(s string, line int) error {
	if s == "" || s == "auto" {
		t.Concurrency, t.AutoConcurrency = autoCeiling, true
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return fmt.Errorf("line %d: concurrency %q must be auto or a whole number of at least 1", line, s)
	}
	t.Concurrency = n
	return nil
}

func isCommon(k string) bool {
	for _, c := range commonKeys {
		if c == k {
			return true
		}
	}
	return false
}

func number(v map[string]string, key string, def float64, at func(string) int) (float64, error) {
	s, ok := v[key]
	if !ok || s == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("line %d: %s %q must be a number above 0", at(key), key, s)
	}
	return f, nil
}

func duration(s string, line int) (time.Duration, error) {
	if s == "" {
		return defaultTimeout, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("line %d: timeout %q must be a Go duration such as 30s or 1m", line, s)
	}
	return d, nil
}

func flag(s string, line int) (bool, error) {
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("line %d: %q must be true or false", line, s)
	}
	return b, nil
}

// checkBaseURL refuses what would send credentials in clear text over a
// network: plain http is for loopback only, unless the operator says so.
func checkBaseURL(raw string, insecure bool, line int) error {
	if raw == "" {
		return fmt.Errorf("line %d: base_url is required", line)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("line %d: base_url %q must be an http:// or https:// URL with a host", line, redactURL(raw))
	}
	if u.Scheme == "http" && !insecure && !isLoopback(u.Hostname()) {
		return fmt.Errorf("line %d: base_url %q uses plain http to a host that is not loopback: credentials would cross the network unencrypted (use https, or set insecure_http: true)", line, redactURL(raw))
	}
	return nil
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

// targetInfos is what CSV validation needs to know of the targets.
func (c *config) targetInfos() batch.Targets {
	ts := batch.Targets{}
	for name, t := range c.Targets {
		v, _ := adapters.Lookup(t.Vendor)
		ts[name] = batch.TargetInfo{Vendor: v.Name, Actions: v.Actions,
			NeedsEmail: v.NeedsEmail, HasEmail: t.Settings.Extra["email"] != ""}
	}
	return ts
}

// fingerprint identifies what the targets point at, never their secrets, so
// a resume can refuse a config that changed under it.
func (c *config) fingerprint() string {
	h := sha256.New()
	for _, name := range batch.SortedNames(c.Targets) {
		t := c.Targets[name]
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00", name, t.Vendor, t.Settings.BaseURL)
		for _, k := range batch.SortedNames(t.Settings.Extra) {
			fmt.Fprintf(h, "%s=%s\x00", k, t.Settings.Extra[k])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
