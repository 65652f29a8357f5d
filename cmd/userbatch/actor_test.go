package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/userbatch/userbatch/adapters/kii/kiitest"
)

// historyJSON runs history with args and returns its entries.
func (f *ledgerFixture) historyJSON(args ...string) []map[string]any {
	f.t.Helper()
	res := f.e2e.run(append([]string{"history", "-c", f.cfg, "--format", "json"}, args...)...)
	if res.code != exitOK {
		f.t.Fatalf("history %v: exit %d\n%s", args, res.code, res.stderr)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			f.t.Fatalf("history line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// TestActorIsRecorded is issue 15 point 5: who ran a change is recorded in
// the journal's start record, summary.json, the ledger (history) and the
// webhook; --actor, else USERBATCH_ACTOR, else $USER@hostname.
func TestActorIsRecorded(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var posts []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posts = append(posts, string(b))
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	f := newLedgerFixture(t)
	f.cfg = f.write("notify.yaml", readFile(t, f.cfg)+"notify:\n  webhook: "+hook.URL+"/hook\n")
	for _, u := range []string{"LOGIN_NAME:Leo", "LOGIN_NAME:mia", "EMAIL:ned@example.com"} {
		f.fakes.kii.AddUser(u, kiitest.User{})
	}
	// The binary's environment, not the test process's: the test runs in
	// parallel with the others.
	f.env = []string{actorEnv + "=", "USER=nightly"}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}

	_, byFlag := f.run("LOGIN_NAME:Leo,disable", "--actor", "jdoe")
	f.env = []string{actorEnv + "=hr-offboarding", "USER=nightly"}
	_, byEnv := f.run("LOGIN_NAME:mia,disable")
	f.env = []string{actorEnv + "=", "USER=nightly"}
	_, byDefault := f.run("EMAIL:ned@example.com,disable")

	for dir, want := range map[string]string{byFlag: "jdoe", byEnv: "hr-offboarding", byDefault: "nightly@" + host} {
		if got := readSummary(t, dir)["actor"]; got != want {
			t.Errorf("%s: summary.json actor %v, want %q", filepath.Base(dir), got, want)
		}
		if j := readFile(t, filepath.Join(dir, "journal.jsonl")); !strings.Contains(j, `"type":"run","started_at":`) || !strings.Contains(j, `"actor":"`+want+`"`) {
			t.Errorf("%s: the journal's start record does not name %q:\n%s", filepath.Base(dir), want, j)
		}
	}
	mu.Lock()
	if len(posts) != 3 || !strings.Contains(posts[0], "run by jdoe") || !strings.Contains(posts[0], `"actor":"jdoe"`) {
		t.Errorf("webhook posts %d, the first %q: want its text and summary to name jdoe", len(posts), posts)
	}
	mu.Unlock()

	// history names the actor, and finds a user the way Kii compares ids.
	for _, who := range []string{"leo", "Leo", "LOGIN_NAME:LEO"} {
		got := f.historyJSON("--user", who)
		if len(got) != 1 || got[0]["user"] != "LOGIN_NAME:Leo" || got[0]["actor"] != "jdoe" {
			t.Errorf("history --user %s: %v, want LOGIN_NAME:Leo's entry by jdoe", who, got)
		}
	}
	if got := f.historyJSON("--user", "ned@EXAMPLE.com"); len(got) != 1 || got[0]["actor"] != "nightly@"+host {
		t.Errorf("history --user ned@EXAMPLE.com: %v", got)
	}
	if got := f.historyJSON("--user", "le"); len(got) != 0 {
		t.Errorf("history --user le: %v, want nothing (ids are compared whole)", got)
	}
	res := f.e2e.run("history", "-c", f.cfg)
	if !strings.Contains(res.stdout, "ACTOR") || !strings.Contains(res.stdout, "hr-offboarding") {
		t.Errorf("history table lacks the actor:\n%s", res.stdout)
	}
	if res := f.e2e.run("run", "-c", f.cfg, "-o", filepath.Join(f.dir, "bad"), f.write("x.csv", opsCSV("apps,leo,disable")), "--actor", "a\x1bb"); res.code != exitBadInput || !strings.Contains(res.stderr, "--actor") {
		t.Errorf("--actor with an escape: exit %d\n%s", res.code, res.stderr)
	}
}

// TestHistoryUserThroughASpec: a target described by a spec compares users
// the way its spec's identity says, in history as in a run: Kii's spec folds
// case and strips LOGIN_NAME:.
func TestHistoryUserThroughASpec(t *testing.T) {
	t.Parallel()
	for name, ref := range map[string]string{"named": "builtin:kii", "through a variable": "${APPS_SPEC}"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			historyThroughSpec(t, ref)
		})
	}
}

// historyThroughSpec runs a kii user through the target apps as vendor
// http with spec ref, then asks history for it spelled other ways.
func historyThroughSpec(t *testing.T, ref string) {
	f := newLedgerFixture(t)
	f.env = append(f.env, "APPS_SPEC=builtin:kii")
	cfg := readFile(t, f.cfg)
	spec := strings.Replace(cfg, "  apps:\n    vendor: kii\n", "  apps:\n    vendor: http\n    spec: "+ref+"\n", 1)
	if spec == cfg {
		t.Fatalf("the fixture's config has no kii target apps:\n%s", cfg)
	}
	f.cfg = f.write("spec.yaml", spec)
	f.fakes.kii.AddUser("LOGIN_NAME:Leo", kiitest.User{})
	if row, _ := f.run("LOGIN_NAME:Leo,disable"); row["outcome"] != "applied" {
		t.Fatalf("the run through the spec: %v", row)
	}
	for _, who := range []string{"leo", "LOGIN_NAME:LEO"} {
		if got := f.historyJSON("--user", who); len(got) != 1 || got[0]["user"] != "LOGIN_NAME:Leo" {
			t.Errorf("history --user %s: %v, want LOGIN_NAME:Leo's entry", who, got)
		}
	}
	if got := f.historyJSON("--user", "le"); len(got) != 0 {
		t.Errorf("history --user le: %v, want nothing (ids are compared whole)", got)
	}
}
