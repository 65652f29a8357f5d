package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
	"github.com/userbatch/userbatch/internal/pgserver"
	"github.com/userbatch/userbatch/internal/skipped"
)

// postgresDSN is the test server .ci/run starts (scripts/ci-services.sh).
// Without it the test fails in CI and says loudly that it was not run.
func postgresDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("USERBATCH_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("USERBATCH_TEST_POSTGRES is not set: CI must start PostgreSQL (scripts/ci-services.sh)")
		}
		skipped.Skip(t, "USERBATCH_TEST_POSTGRES is not set: the PostgreSQL ledger test was NOT run (run scripts/ci-services.sh)")
	}
	pgserver.Share(t)
	return dsn
}

// TestShardsShareOnePostgresLedger is issue 10's acceptance: two shards on
// one PostgreSQL ledger, run twice with new report directories: the second
// run sends nothing, toggles included.
func TestShardsShareOnePostgresLedger(t *testing.T) {
	t.Parallel()
	dsn := postgresSchemaDSN(t)
	e := newE2E(t)
	c := e.fakes.creds
	e.fakes.kii = kiitest.New(kiitest.Options{AppID: fakeKiiApp, Token: c.kiiToken, AutoCreate: true})
	e.fakes.clearsquare = clearsquaretest.New(clearsquaretest.Options{Token: c.clearsquareToken, AutoCreate: true})
	e.serve(e.fakes.handler())
	cfg := e.write("pg.yaml", e.fakes.targetsYAML(e.srv.URL, 1000)+"ledger: "+dsn+"\n")
	// Users unique to this test run: the database outlives it.
	prefix := randomHex()[:8]
	rows := append(many(40, "apps,"+prefix+"-k%02d,disable"), many(40, "admin,"+prefix+"-c%02d,toggle-status")...)
	in := e.write("ops.csv", opsCSV(rows...))
	users := func() []string {
		var us []string
		for _, r := range rows {
			us = append(us, strings.Split(r, ",")[1])
		}
		return us
	}()
	writes := func() int {
		n := 0
		for _, u := range users {
			n += e.fakes.kii.Writes(u) + e.fakes.clearsquare.Writes(u)
		}
		return n
	}
	for round := 1; round <= 2; round++ {
		procs := []*process{}
		for k := 0; k < 2; k++ {
			out := filepath.Join(e.dir, fmt.Sprintf("round%d-shard%d", round, k))
			procs = append(procs, e.start("run", "-c", cfg, "-o", out, in, "--shard", fmt.Sprintf("%d/2", k)))
		}
		for k, p := range procs {
			if code := p.wait(); code != exitOK {
				t.Fatalf("round %d shard %d: exit %d\n%s", round, k, code, p.stderr.String())
			}
		}
		if got := writes(); got != len(rows) {
			t.Fatalf("after round %d: %d writes, want %d (each row once, over both rounds)", round, got, len(rows))
		}
	}
	for k := 0; k < 2; k++ {
		for _, r := range readCSV(t, filepath.Join(e.dir, fmt.Sprintf("round2-shard%d", k), "report.csv")) {
			if r["outcome"] != "already" || !strings.HasPrefix(r["detail"], "done by run ") {
				t.Errorf("round 2, %s: %s %q", r["user"], r["outcome"], r["detail"])
			}
		}
	}
}

// TestCrashBetweenWriteAndLedger: a process killed after the vendor applied
// a toggle but before the ledger recorded it leaves the change claimed. A
// later run, in a new report directory, does not send it again: it ends
// unknown, for a person to check. Its resume does not send it either.
func TestCrashBetweenWriteAndLedger(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	c := e.fakes.creds
	e.fakes.clearsquare = clearsquaretest.New(clearsquaretest.Options{Token: c.clearsquareToken, AutoCreate: true})
	applied := make(chan struct{}, 1)
	release := make(chan struct{})
	defer close(release)
	fakes := e.fakes.handler()
	e.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/clearsquare/") {
			fakes.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		fakes.ServeHTTP(rec, r) // the toggle is applied here
		select {
		case applied <- struct{}{}:
		default:
		}
		<-release // the answer never reaches the killed process
	}))
	cfg := e.write("ledger.yaml", e.fakes.targetsYAML(e.srv.URL, 1000)+"ledger: sqlite:"+filepath.Join(e.dir, "ledger.db")+"\n")
	in := e.write("ops.csv", opsCSV("admin,c-crash,toggle-status"))
	first := filepath.Join(e.dir, "first")
	p := e.start("run", "-c", cfg, "-o", first, in)
	select {
	case <-applied:
	case <-time.After(20 * time.Second):
		t.Fatal("the toggle never reached the vendor")
	}
	_ = p.cmd.Process.Kill()
	p.wait()
	if n := e.fakes.clearsquare.Writes("c-crash"); n != 1 {
		t.Fatalf("the vendor saw %d toggles before the kill, want 1", n)
	}

	res := e.run("run", "-c", cfg, "-o", filepath.Join(e.dir, "second"), in)
	if res.code != exitIncomplete {
		t.Fatalf("a later run: exit %d\n%s", res.code, res.stderr)
	}
	row := readCSV(t, filepath.Join(e.dir, "second", "report.csv"))[0]
	if row["outcome"] != "unknown" || !strings.Contains(row["detail"], "may have sent it") {
		t.Errorf("a later run: %s %q, want unknown (claimed by the killed run)", row["outcome"], row["detail"])
	}
	if res := e.run("run", "-c", cfg, "-o", first, in, "--resume"); res.code != exitIncomplete {
		t.Fatalf("resume: exit %d\n%s", res.code, res.stderr)
	}
	if n := e.fakes.clearsquare.Writes("c-crash"); n != 1 {
		t.Errorf("the toggle was sent %d times in all, want 1", n)
	}
}
