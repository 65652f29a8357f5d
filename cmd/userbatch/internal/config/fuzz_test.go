package config

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
		cfg, err := Parse(data, lookup)
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
		if first, again := cfg.Fingerprint(), cfg.Fingerprint(); first != again {
			t.Fatal("fingerprint is not deterministic")
		}
		if infos := cfg.Infos(); len(infos) != len(cfg.Targets) {
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

func checkFuzzTarget(t *testing.T, name string, tc *Target) {
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
	if tc.Burst < 1 || tc.Concurrency.Max < 1 || tc.Timeout <= 0 || tc.MaxWait <= 0 || (tc.Concurrency.Auto && tc.Concurrency.Max != AutoCeiling) {
		t.Fatalf("target %s: burst %d concurrency %+v timeout %v max_wait %v", name, tc.Burst, tc.Concurrency, tc.Timeout, tc.MaxWait)
	}
	u, err := url.Parse(tc.BaseURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		t.Fatalf("target %s: accepted base_url %q", name, tc.BaseURL)
	}
	if u.Scheme == "http" && !tc.InsecureHTTP && !isLoopback(u.Hostname()) {
		t.Fatalf("target %s: accepted plain http to %q", name, u.Hostname())
	}
	for k := range tc.Extra {
		if !vendorHas(v, k) || contains(CommonKeys(), k) {
			t.Fatalf("target %s: extra key %q for vendor %s", name, k, v.Name)
		}
	}
}
