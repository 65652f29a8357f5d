package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters/kii/kiitest"
)

var takesList = regexp.MustCompile(`a (\w+) target takes: ([a-z_, ]+)\)`)

// TestConfigKeyTheVendorDoesNotUse: a credential or setting the target's
// vendor never sends (apikey on a SCIM target, a kii app_id on msgkart) is
// refused at its line, naming the keys that vendor takes; nothing is sent.
func TestConfigKeyTheVendorDoesNotUse(t *testing.T) {
	t.Parallel()
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
			t.Parallel()
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

// TestWebhookNamesTheReportByAbsolutePathAndHost: run from a directory with
// a relative -o, the webhook's text names the report by its absolute path
// and the host it is on: a person reading the chat channel can find it.
func TestWebhookNamesTheReportByAbsolutePathAndHost(t *testing.T) {
	t.Parallel()
	bodies := make(chan []byte, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))
	t.Cleanup(hook.Close)
	e := newE2E(t)
	e.fakes.kii.AddUser("k-1", kiitest.User{})
	cfg := e.write("t.yaml", e.baseYAML()+"notify:\n  webhook: "+hook.URL+"/hook\n")
	e.write("ops.csv", opsCSV("apps,k-1,disable"))
	p := &process{cmd: exec.Command(binPath, "run", "-c", cfg, "-o", "out", "ops.csv")}
	p.cmd.Dir, p.cmd.Stdout, p.cmd.Stderr = e.dir, &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(); code != exitOK {
		t.Fatalf("exit %d, want 0\n%s", code, p.stderr.String())
	}
	var got struct {
		Text string `json:"text"`
	}
	select {
	case b := <-bodies:
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("the POST is not JSON: %v\n%s", err, b)
		}
	default:
		t.Fatal("no POST reached the webhook by the end of the run")
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	want := "report: " + filepath.Join(e.dir, "out") + " on host " + host
	if !strings.HasSuffix(got.Text, want) {
		t.Errorf("the webhook text is %q; want it to end %q", got.Text, want)
	}
}
