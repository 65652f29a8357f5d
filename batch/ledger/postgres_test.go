package ledger

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/userbatch/userbatch/internal/pgserver"
	"github.com/userbatch/userbatch/internal/skipped"
)

const postgresEnv = "USERBATCH_TEST_POSTGRES"

// postgresStore creates a schema of its own on the test server and returns a
// DSN whose search_path is that schema; the schema is dropped when t ends.
// Without a server it fails under CI and skips loudly elsewhere.
func postgresStore(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(postgresEnv)
	if dsn == "" {
		postgresMissing(t, postgresEnv+" is not set")
	}
	pgserver.Share(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		postgresMissing(t, "PostgreSQL DSN in "+postgresEnv+" unusable: "+err.Error())
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		postgresMissing(t, "PostgreSQL not reachable at "+Redact(dsn)+" ("+err.Error()+")")
	}
	schema := "ledgertest_" + randomHex(t)
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema
}

func postgresMissing(t testing.TB, why string) {
	t.Helper()
	msg := why + ": the ledger's PostgreSQL conformance was NOT run"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	skipped.Skip(t, msg+" (set "+postgresEnv+"; CI fails here)")
}

func randomHex(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestPostgresConformance(t *testing.T) {
	postgresStore(t) // fail or skip once, up front, rather than in every subtest
	runConformance(t, postgresStore)
}
