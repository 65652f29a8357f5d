package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
	"github.com/userbatch/userbatch/adapters/scim/scimtest"
)

// stopsKiiTarget is a kii target in targets.yaml.
func (e *e2e) stopsKiiTarget(name, base string, concurrency int) string {
	return fmt.Sprintf("  %s:\n    vendor: kii\n    base_url: %s\n    app_id: %s\n    token: %s\n    rate: 1000\n    concurrency: %d\n",
		name, base, fakeKiiApp, e.fakes.creds.kiiToken, concurrency)
}

// stopsRun runs the binary on cfg and rows into report directory name,
// with a JSON log, wants exit 1, and returns report.csv's rows.
func (e *e2e) stopsRun(cfg, name string, rows ...string) ([]map[string]string, string, *process) {
	e.t.Helper()
	in := e.write(name+".csv", opsCSV(rows...))
	out := filepath.Join(e.dir, name)
	code, _, p := e.hostileStart("run", "-c", cfg, "-o", out, in, "--log-format", "json")
	if code != exitIncomplete {
		e.t.Fatalf("exit %d, want 1\n%s", code, p.stderr.String())
	}
	return readCSV(e.t, filepath.Join(out, "report.csv")), out, p
}

// stopsAttempts sums report.csv's attempts over the rows of target.
func stopsAttempts(t *testing.T, report []map[string]string, target string) int {
	t.Helper()
	sum := 0
	for _, r := range report {
		if r["target"] != target {
			continue
		}
		n, err := strconv.Atoi(r["attempts"])
		if err != nil {
			t.Fatalf("line %s: attempts %q", r["line"], r["attempts"])
		}
		sum += n
	}
	return sum
}

// stopsLoud checks that the log (JSON) says once, at error level, that
// target stopped, with headline.
func stopsLoud(t *testing.T, stderr, headline, target string) {
	t.Helper()
	recs, _ := hostileRecords(stderr)
	var mine []map[string]any
	for _, r := range hostileByMessage(recs, headline) {
		if r["target"] == target {
			mine = append(mine, r)
		}
	}
	if len(mine) != 1 || mine[0]["level"] != "error" {
		t.Errorf("%d error records for %s saying %q, want 1\n%s", len(mine), target, headline, stderr)
	}
}

// TestUnreachableTargetStops: a target whose base_url points at a closed
// port stops after 3 connection failures in a row: its 40 rows end skipped
// ("target unreachable: check base_url", saying what failed) within a few
// attempts — not 160 — while the other target applies its rows; failed.csv
// holds every row of the dead target.
func TestUnreachableTargetStops(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	const deadRows, concurrency = 40, 4
	rows := many(deadRows, "dead,d%02d,disable")
	for _, id := range []string{"k1", "k2", "k3"} {
		e.fakes.kii.AddUser(id, kiitest.User{})
		rows = append(rows, "apps,"+id+",disable")
	}
	cfg := e.write("dead.yaml", "targets:\n"+
		e.stopsKiiTarget("dead", "http://"+adaptertest.ClosedAddr(t)+"/kii", concurrency)+
		e.stopsKiiTarget("apps", e.srv.URL+"/kii", concurrency))
	report, out, p := e.stopsRun(cfg, "report", rows...)
	skipped := 0
	for _, r := range report {
		switch {
		case r["target"] == "apps":
			if r["outcome"] != "applied" {
				t.Errorf("apps %s: %s %q: the dead target stopped another", r["user"], r["outcome"], r["detail"])
			}
		case r["outcome"] == "skipped":
			skipped++
			if d := r["detail"]; !strings.HasPrefix(d, "target unreachable: check base_url") || !strings.Contains(d, "connection refused") {
				t.Errorf("dead %s: skipped %q, want target unreachable, saying the connection was refused", r["user"], d)
			}
		case r["outcome"] != "failed":
			t.Errorf("dead %s: %s %q, want skipped (or failed, in flight)", r["user"], r["outcome"], r["detail"])
		}
	}
	if skipped < deadRows-concurrency {
		t.Errorf("%d dead rows skipped, want at least %d", skipped, deadRows-concurrency)
	}
	// The stop comes at the 3rd failure; at most concurrency-1 other
	// attempts were on their way. Before the breaker: 160 (5 per row).
	if n, most := stopsAttempts(t, report, "dead"), 3+concurrency-1; n > most || n < 3 {
		t.Errorf("%d attempts on the dead target, want 3..%d", n, most)
	}
	failed := 0
	for _, r := range readCSV(t, filepath.Join(out, "failed.csv")) {
		if r["target"] == "dead" {
			failed++
		}
	}
	if failed != deadRows {
		t.Errorf("failed.csv holds %d rows of the dead target, want all %d", failed, deadRows)
	}
	stopsLoud(t, p.stderr.String(), "TARGET UNREACHABLE", "dead")
	hostileNoSecret(t, e.fakes.creds.kiiToken, p.stderr.String(), p.stdout.String(), out)
}

// TestWrongBaseURLStops: every vendor's target whose base_url path is
// wrong (the server answers Go's "404 page not found") stops after 3
// answers that are not the vendor's: its first rows end failed (not "no
// such user"), the rest skipped ("not the vendor's API at base_url: check
// base_url"), and the target with a right base_url goes on.
func TestWrongBaseURLStops(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	c := e.fakes.creds
	wrongBaseURLStops(e, map[string]string{ // name → vendor and keys, base_url added below
		"shop":  "vendor: epixel\n    apikey: " + c.epixelKey + "\n    token: " + c.epixelToken,
		"admin": "vendor: clearsquare\n    token: " + c.clearsquareToken,
		"apps":  "vendor: kii\n    app_id: " + fakeKiiApp + "\n    token: " + c.kiiToken,
		"chat":  "vendor: msgkart\n    apikey: " + c.msgkartKey + "\n    email: " + fakeMsgkartEmail,
		"saas":  "vendor: scim\n    token: " + c.scimToken,
	}, map[string]string{"shop": "disable", "admin": "toggle-status", "apps": "disable", "chat": "disable", "saas": "disable"})
}

// TestSpecWrongBaseURLStops: the same for the four seed vendors through
// their specs (vendor: http): each spec says which answers are its
// vendor's own (README, spec reference), so another server's 404 page
// stops the target as it stops the Go adapter's.
func TestSpecWrongBaseURLStops(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	c := e.fakes.creds
	wrongBaseURLStops(e, map[string]string{
		"shop":  "vendor: http\n    spec: builtin:epixel\n    apikey: " + c.epixelKey + "\n    token: " + c.epixelToken,
		"admin": "vendor: http\n    spec: builtin:clearsquare\n    token: " + c.clearsquareToken,
		"apps":  "vendor: http\n    spec: builtin:kii\n    app_id: " + fakeKiiApp + "\n    token: " + c.kiiToken,
		"chat":  "vendor: http\n    spec: builtin:msgkart\n    apikey: " + c.msgkartKey + "\n    email: " + fakeMsgkartEmail,
	}, map[string]string{"shop": "disable", "admin": "toggle-status", "apps": "disable", "chat": "disable"})
}

// wrongBaseURLStops runs targets (name → vendor and keys) with a wrong
// base_url path, 6 rows each of actions[name], beside a right kii target.
func wrongBaseURLStops(e *e2e, targets, actions map[string]string) {
	t := e.t
	counter := &hostilePathCounter{next: e.fakes.handler()}
	e.serve(counter)
	for _, id := range []string{"k1", "k2"} {
		e.fakes.kii.AddUser(id, kiitest.User{})
	}
	const perTarget = 6
	var yaml strings.Builder
	yaml.WriteString("targets:\n")
	var rows []string
	for name, keys := range targets {
		fmt.Fprintf(&yaml, "  %s:\n    %s\n    base_url: %s/wrong-%s\n    rate: 1000\n    concurrency: 1\n", name, keys, e.srv.URL, name)
		rows = append(rows, many(perTarget, name+","+name+"-%d,"+actions[name])...)
	}
	yaml.WriteString(e.stopsKiiTarget("good", e.srv.URL+"/kii", 1))
	rows = append(rows, "good,k1,disable", "good,k2,disable")
	cfg := e.write("wrong.yaml", yaml.String())
	report, _, p := e.stopsRun(cfg, "report", rows...)
	for name := range targets {
		var outcomes []string
		for _, r := range report {
			if r["target"] != name {
				continue
			}
			outcomes = append(outcomes, r["outcome"])
			d := r["detail"]
			switch {
			case strings.Contains(d, "no such user"):
				t.Errorf("%s %s: %q: another server's 404 taken for the vendor's", name, r["user"], d)
			case r["outcome"] == "failed" && (r["error_code"] != "bad_response" || !strings.Contains(d, "check base_url")):
				t.Errorf("%s %s: failed %s %q, want bad_response saying check base_url", name, r["user"], r["error_code"], d)
			case r["outcome"] == "skipped" && !strings.HasPrefix(d, "not the vendor's API at base_url: check base_url"):
				t.Errorf("%s %s: skipped %q", name, r["user"], d)
			}
		}
		if want := "failed failed failed skipped skipped skipped"; strings.Join(outcomes, " ") != want {
			t.Errorf("%s: outcomes %v, want %s", name, outcomes, want)
		}
		sent := 0
		for _, q := range counter.list() {
			if strings.HasPrefix(q.path, "/wrong-"+name+"/") {
				sent++
			}
		}
		want := 3
		if name == "saas" {
			want = 4 // and the discovery at the start, which found nothing
		}
		if sent != want {
			t.Errorf("%s: %d requests reached the wrong base_url, want %d", name, sent, want)
		}
		stopsLoud(t, p.stderr.String(), "NOT THE VENDOR'S API", name)
	}
	rowsBy := rowsByUser(report)
	for _, id := range []string{"k1", "k2"} {
		if rowsBy[id]["outcome"] != "applied" {
			t.Errorf("good %s: %s %q", id, rowsBy[id]["outcome"], rowsBy[id]["detail"])
		}
	}
}

// TestClearsquare401Detail: ClearSquare answers 401 for a bad token and
// for an unknown user alike. A row that gets it says both; a target that
// gets it three times in a row (its token never accepted) stops with a
// detail naming both and the lines that got it.
func TestClearsquare401Detail(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	for i := 0; i < 5; i++ {
		e.fakes.clearsquare.AddUser(fmt.Sprintf("c%d", i), clearsquaretest.User{Active: true})
	}
	e.fakes.clearsquare.AddUser("c-ok", clearsquaretest.User{Active: true})
	target := func(token string) string {
		return e.write("admin-"+token[:4]+".yaml", "targets:\n  admin:\n    vendor: clearsquare\n    base_url: "+e.srv.URL+
			"/clearsquare\n    token: "+token+"\n    rate: 1000\n    concurrency: 1\n")
	}
	both := func(d string) bool {
		return strings.Contains(d, "bad credentials") && strings.Contains(d, "unknown user")
	}

	// A wrong token: lines 2-4 fail, saying both; 5 and 6 are skipped.
	const badToken = "badtoken0123456789abcdef"
	report, out, p := e.stopsRun(target(badToken), "bad", many(5, "admin,c%d,toggle-status")...)
	for i, r := range report {
		d := r["detail"]
		switch {
		case i < 3 && (r["outcome"] != "failed" || !both(d)):
			t.Errorf("line %s: %s %q, want failed naming a bad token and an unknown user", r["line"], r["outcome"], d)
		case i >= 3 && (r["outcome"] != "skipped" || !strings.HasPrefix(d, "credentials refused, or no such users") ||
			!both(d) || !strings.Contains(d, "lines 2, 3, 4")):
			t.Errorf("line %s: %s %q, want skipped naming both and lines 2, 3, 4", r["line"], r["outcome"], d)
		}
	}
	for i := 0; i < 5; i++ {
		if n := e.fakes.clearsquare.Writes(fmt.Sprintf("c%d", i)); n != 0 {
			t.Errorf("c%d toggled %d times with a refused token", i, n)
		}
	}
	stopsLoud(t, p.stderr.String(), "CREDENTIALS REFUSED OR NO SUCH USERS", "admin")
	hostileNoSecret(t, badToken, p.stderr.String(), p.stdout.String(), out)

	// The right token: one unknown user's row says both; the rest apply.
	report, _, _ = e.stopsRun(target(e.fakes.creds.clearsquareToken), "good", "admin,c-ok,toggle-status", "admin,gone,toggle-status")
	rows := rowsByUser(report)
	if r := rows["gone"]; r["outcome"] != "failed" || r["http_status"] != "401" || !both(r["detail"]) {
		t.Errorf("gone: %s %s %q, want failed 401 naming a bad token and an unknown user", r["outcome"], r["http_status"], r["detail"])
	}
	if rows["c-ok"]["outcome"] != "applied" {
		t.Errorf("c-ok: %s", rows["c-ok"]["outcome"])
	}
}

// TestSCIMUnknownUserName: a userName no user has is failed not_found with
// no HTTP status (the search answered 200; nothing said 404), and a detail
// that says so; the hint about providers hiding inactive users appears only
// when the target sets hides_inactive: true.
func TestSCIMUnknownUserName(t *testing.T) {
	t.Parallel()
	for _, hides := range []bool{false, true} {
		t.Run("hides_inactive="+strconv.FormatBool(hides), func(t *testing.T) {
			t.Parallel()
			e := newE2E(t)
			e.fakes.scim = scimtest.New(scimtest.Options{Token: e.fakes.creds.scimToken, HideInactive: hides})
			e.serve(e.fakes.handler())
			cfg := e.baseYAML()
			if hides {
				cfg = setKey(t, cfg, "saas", "hides_inactive", "true")
			}
			report, _, _ := e.stopsRun(e.write("scim.yaml", cfg), "report", "saas,userName:nobody@example.com,disable", "saas,userName:nobody-else@example.com,enable")
			for _, r := range report {
				what := r["action"]
				if r["outcome"] != "failed" || r["error_code"] != "not_found" || r["http_status"] != "" {
					t.Errorf("%s: %s %s http_status %q, want failed not_found with no status", what, r["outcome"], r["error_code"], r["http_status"])
				}
				if !strings.Contains(r["detail"], "no user has this userName") || strings.Contains(r["detail"], "user id") {
					t.Errorf("%s: detail %q, want it to say no user has this userName", what, r["detail"])
				}
				mentions := strings.Contains(r["detail"]+r["message"], "hides inactive users") || strings.Contains(r["detail"], "inactive, which this provider hides")
				if mentions != hides {
					t.Errorf("%s: hides_inactive %v, but the row mentions hidden inactive users: %v (%q / %q)", what, hides, mentions, r["detail"], r["message"])
				}
			}
		})
	}
}
