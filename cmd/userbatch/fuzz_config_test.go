package main

import (
	"math"
	"net/url"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/userbatch/userbatch/adapters"
)

// FuzzConfig feeds arbitrary bytes to parseConfig. It must never panic, and a
// config it accepts must hold only usable targets. Seeds are in
// testdata/fuzz/FuzzConfig.
func FuzzConfig(f *testing.F) {
	f.Add([]byte(allVendorsYAML))
	f.Fuzz(func(t *testing.T, data []byte) {
		if readsFiles(data) {
			// ${file:/dev/zero} or ${file:/dev/stdin} would never return;
			// TestConfigFileReference covers the feature.
			t.Skip()
		}
		lookup := func(string) (string, bool) { return "fuzz-value", true }
		cfg, err := parseConfig(data, lookup)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if len(cfg.Targets) == 0 {
			t.Fatal("accepted a config without targets")
		}
		for name, tc := range cfg.Targets {
			checkFuzzTarget(t, name, tc)
		}
		if cfg.fingerprint() != cfg.fingerprint() {
			t.Fatal("fingerprint is not deterministic")
		}
		if infos := cfg.targetInfos(); len(infos) != len(cfg.Targets) {
			t.Fatalf("targetInfos has %d targets, the config %d", len(infos), len(cfg.Targets))
		}
	})
}

// readsFiles reports whether any YAML scalar in data, once unescaped,
// refers to a file.
func readsFiles(data []byte) bool {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return false
	}
	var walk func(n *yaml.Node) bool
	walk = func(n *yaml.Node) bool {
		if strings.Contains(n.Value, "file:") {
			return true
		}
		for _, c := range n.Content {
			if walk(c) {
				return true
			}
		}
		return false
	}
	return walk(&doc)
}

func checkFuzzTarget(t *testing.T, name string, tc *targetConfig) {
	t.Helper()
	if tc.Name != name {
		t.Fatalf("target %q named %q", name, tc.Name)
	}
	v, ok := adapters.Lookup(tc.Vendor)
	if !ok {
		t.Fatalf("target %s: accepted vendor %q", name, tc.Vendor)
	}
	if !(tc.Rate > 0) || math.IsInf(tc.Rate, 0) {
		t.Fatalf("target %s: rate %v", name, tc.Rate)
	}
	if tc.Burst < 1 || tc.Concurrency < 1 || tc.Timeout <= 0 || (tc.AutoConcurrency && tc.Concurrency != autoCeiling) {
		t.Fatalf("target %s: burst %d concurrency %d timeout %v", name, tc.Burst, tc.Concurrency, tc.Timeout)
	}
	u, err := url.Parse(tc.Settings.BaseURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		t.Fatalf("target %s: accepted base_url %q", name, tc.Settings.BaseURL)
	}
	if u.Scheme == "http" && !tc.InsecureHTTP && !isLoopback(u.Hostname()) {
		t.Fatalf("target %s: accepted plain http to %q", name, u.Hostname())
	}
	for k := range tc.Settings.Extra {
		if !allowedKey(v, k) || isCommon(k) {
			t.Fatalf("target %s: extra key %q for vendor %s", name, k, v.Name)
		}
	}
}
