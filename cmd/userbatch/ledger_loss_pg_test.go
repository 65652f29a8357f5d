package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	"github.com/userbatch/userbatch/internal/pgserver"
)

// postgresSchemaDSN is postgresDSN with a schema of the test's own as its
// search_path, dropped when the test ends: the ledger's tables there are
// migrated by this build alone, whatever builds share the server.
func postgresSchemaDSN(t *testing.T) string {
	t.Helper()
	dsn := postgresDSN(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	schema := "ub_cmd_" + randomHex()[:10]
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("PostgreSQL at %s: %v", os.Getenv("USERBATCH_TEST_POSTGRES"), err)
	}
	t.Cleanup(func() { _, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE") })
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// pgCluster stops and starts the local PostgreSQL 15 server, as an
// operator's restart does. The server is started again when the test ends,
// whatever happened.
func pgCluster(t *testing.T) (stop, start func() error) {
	t.Helper()
	if _, err := exec.LookPath("pg_ctlcluster"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("pg_ctlcluster is not installed: CI must run PostgreSQL 15 (scripts/ci-services.sh)")
		}
		t.Skip("pg_ctlcluster is not installed: the PostgreSQL restart test was NOT run")
	}
	ctl := func(action string, args ...string) error {
		out, err := exec.Command("pg_ctlcluster", append([]string{"15", "main", action}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("pg_ctlcluster 15 main %s: %v: %s", action, err, out)
		}
		return nil
	}
	start = func() error { return ctl("start") }
	t.Cleanup(func() {
		if err := exec.Command("pg_ctlcluster", "15", "main", "status").Run(); err != nil {
			if err := start(); err != nil {
				t.Errorf("restoring the PostgreSQL server: %v", err)
			}
		}
	})
	return func() error { return ctl("stop", "-m", "fast") }, start
}

// TestLedgerLostMidRunPostgres is issue 15 point 8 with PostgreSQL for real
// and two shards on one ledger: the server stops while both shards have
// writes in flight. Each shard lets them finish, reports them applied,
// skips the rest (ledger unavailable), writes its report and exits 3; once
// the server is back, --resume finishes each with nothing sent twice.
//
// Not parallel: it stops the machine's PostgreSQL server, which the other
// PostgreSQL tests use, of this package and of others (pgserver.Own).
func TestLedgerLostMidRunPostgres(t *testing.T) {
	if os.Getenv("USERBATCH_TEST_POSTGRES") != "" {
		pgserver.Own(t) // other packages' PostgreSQL tests wait
	}
	dsn := postgresSchemaDSN(t)
	stop, start := pgCluster(t)
	f := newLossFixture(t, 80)
	// Each shard reaches the fakes under its own prefix, so the handler
	// tells their writes apart.
	var cfgs [2]string
	for k := range cfgs {
		base := fmt.Sprintf("%s/s%d", f.srv.URL, k)
		cfgs[k] = f.write(fmt.Sprintf("shard%d.yaml", k), f.fakes.targetsYAML(base, 1000)+"ledger: "+dsn+"\n")
	}
	fakes := f.fakes.handler()
	var mu sync.Mutex
	var perShard [2]int
	var lostErr error
	lost := make(chan struct{})
	var once sync.Once
	both := func() bool { return perShard[0] >= 3 && perShard[1] >= 3 }
	f.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := 0
		if strings.HasPrefix(r.URL.Path, "/s1/") {
			k = 1
		}
		if r.Method != http.MethodGet {
			mu.Lock()
			perShard[k]++
			ready := both()
			mu.Unlock()
			if ready {
				// Stop the server while this write is in flight; the
				// shards' other writes wait here, in flight too.
				once.Do(func() { lostErr = stop(); close(lost) })
			}
			select {
			case <-lost:
			case <-time.After(30 * time.Second): // a guard against a hang, not a wait for an event
			}
		}
		http.StripPrefix(fmt.Sprintf("/s%d", k), fakes).ServeHTTP(w, r)
	}))
	in := f.write("ops.csv", opsCSV(f.rows...))
	out := func(k int) string { return filepath.Join(f.dir, fmt.Sprintf("shard%d", k)) }
	var procs [2]*process
	for k := range procs {
		procs[k] = f.start("run", "-c", cfgs[k], "-o", out(k), in, "--shard", fmt.Sprintf("%d/2", k))
	}
	for k, p := range procs {
		if code := p.wait(); code != exitStopped || !strings.Contains(p.stderr.String(), "ledger unavailable") {
			t.Errorf("shard %d: exit %d, want %d naming the ledger\n%s", k, code, exitStopped, p.stderr.String())
		}
	}
	if lostErr != nil {
		t.Fatal(lostErr)
	}
	if err := start(); err != nil {
		t.Fatal(err)
	}
	waitForPostgres(t, dsn)

	sent := f.sent()
	applied := 0
	for k := range procs {
		for _, r := range readCSV(t, filepath.Join(out(k), "report.csv")) {
			if r["outcome"] == "" { // another shard's row
				continue
			}
			switch {
			case sent[r["user"]] == 1 && r["outcome"] == "applied":
				applied++
			case sent[r["user"]] == 0 && r["outcome"] == "skipped" && strings.HasPrefix(r["detail"], "ledger unavailable: "):
			case r["outcome"] == "skipped" && strings.Contains(r["detail"], "shard"):
			default:
				t.Errorf("shard %d, %s: %s %q after %d writes", k, r["user"], r["outcome"], r["detail"], sent[r["user"]])
			}
		}
	}
	if applied < 6 || applied == len(f.rows) {
		t.Errorf("%d rows applied before the restart, want the writes in flight and not all", applied)
	}
	for k := range procs {
		if res := f.run("run", "-c", cfgs[k], "-o", out(k), in, "--shard", fmt.Sprintf("%d/2", k), "--resume"); res.code != exitOK {
			t.Fatalf("shard %d resume: exit %d\n%s", k, res.code, res.stderr)
		}
	}
	for u, n := range f.sent() {
		if n != 1 {
			t.Errorf("%s received %d writes over the run and its resume, want 1", u, n)
		}
	}
}

// waitForPostgres polls until the restarted server accepts connections:
// pg_ctlcluster start returns once it does, but a test must not trust that.
func waitForPostgres(t *testing.T, dsn string) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if err := db.PingContext(ctx); err == nil {
			return
		} else if ctx.Err() != nil {
			t.Fatalf("PostgreSQL did not come back: %v", err)
		}
	}
}
