package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var takesList = regexp.MustCompile(`a (\w+) target takes: ([a-z_, ]+)\)`)

// TestConfigKeyTheVendorDoesNotUse: a credential or setting the target's
// vendor never sends (apikey on a SCIM target, a kii app_id on msgkart) is
// refused at its line, naming the keys that vendor takes; nothing is sent.
func TestConfigKeyTheVendorDoesNotUse(t *testing.T) {
	cases := []struct {
		target, vendor, key string
		takes, not          []string // keys the error must list, and must not
	}{
		{"saas", "scim", "apikey", []string{"token", "hides_inactive"}, []string{"apikey"}},
		{"admin", "clearsquare", "apikey", []string{"token"}, []string{"apikey", "app_id"}},
		{"apps", "kii", "apikey", []string{"token", "app_id"}, []string{"apikey"}},
		{"chat", "msgkart", "token", []string{"apikey", "email"}, []string{"token"}},
		{"saas", "scim", "app_id", []string{"token", "hides_inactive"}, []string{"app_id"}},
		{"apps", "kii", "hides_inactive", []string{"app_id"}, []string{"hides_inactive"}},
		{"shop", "epixel", "email", []string{"apikey", "token"}, []string{"email"}},
	}
	for _, c := range cases {
		t.Run(c.vendor+"/"+c.key, func(t *testing.T) {
			e := newE2E(t)
			cfg := setKey(t, e.baseYAML(), c.target, c.key, "x1")
			line := slices.Index(strings.Split(cfg, "\n"), "    "+c.key+": x1") + 1
			cfgPath := e.write("t.yaml", cfg)
			in := e.write("ops.csv", opsCSV("apps,k-1,disable"))
			for _, cmd := range [][]string{{"validate", "-c", cfgPath, in}, {"run", "-c", cfgPath, "-o", filepath.Join(e.dir, "out"), in}} {
				res := e.run(cmd...)
				wantExit(t, cmd[0], res, exitBadInput)
				want := fmt.Sprintf("line %d: target %s:", line, c.target)
				if !strings.Contains(res.stderr, want) || !strings.Contains(res.stderr, c.key) {
					t.Errorf("%s: want %q naming %s; stderr:\n%s", cmd[0], want, c.key, res.stderr)
				}
				m := takesList.FindStringSubmatch(res.stderr)
				if m == nil || m[1] != c.vendor {
					t.Fatalf("%s: the error does not list the keys a %s target takes:\n%s", cmd[0], c.vendor, res.stderr)
				}
				keys := strings.Split(m[2], ", ")
				for _, k := range c.takes {
					if !slices.Contains(keys, k) {
						t.Errorf("%s: %s is missing from the keys %s takes: %q", cmd[0], k, c.vendor, keys)
					}
				}
				for _, k := range c.not {
					if slices.Contains(keys, k) {
						t.Errorf("%s: %s is listed among the keys %s takes: %q", cmd[0], k, c.vendor, keys)
					}
				}
			}
			if n := e.kiiWrites([]string{"k-1"}); n != 0 {
				t.Errorf("%d writes were sent with a refused config", n)
			}
		})
	}
}
