package ledger

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestOpenRefusesUnknownDSN(t *testing.T) {
	for _, dsn := range []string{"mysql://root:Hunter2secret@db/ledger", "ledger.db", "", "Hunter2secret"} {
		_, err := Open(context.Background(), dsn)
		if err == nil {
			t.Fatalf("Open(%q): no error", dsn)
		}
		msg := err.Error()
		if !strings.Contains(msg, Accepted) {
			t.Errorf("Open(%q): %q does not list what is accepted", dsn, msg)
		}
		if strings.Contains(msg, "Hunter2secret") {
			t.Errorf("Open(%q): the error quotes the password: %q", dsn, msg)
		}
	}
}

func TestOpenSQLiteNeedsPath(t *testing.T) {
	if _, err := Open(context.Background(), "sqlite:"); err == nil || !strings.Contains(err.Error(), "sqlite:PATH") {
		t.Fatalf("Open(sqlite:) = %v, want an error naming sqlite:PATH", err)
	}
}

// TestPostgresErrorsHideThePassword: DSNs that cannot be parsed, and a
// server that cannot be reached, never have the password quoted back.
func TestPostgresErrorsHideThePassword(t *testing.T) {
	const pw = "S3cret-pw-17"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // a port that refuses connections
	dsns := []string{
		"postgres://ub:" + pw + "@127.0.0.1:notaport/ledger",
		"postgres://ub:" + pw + "@127.0.0.1/ledger?sslmode=bogus",
		"postgresql://ub@127.0.0.1/ledger?password=" + pw + "&connect_timeout=x",
		"postgres://ub:" + pw + "@" + closed + "/ledger?connect_timeout=5",
		"postgres://ub@" + closed + "/ledger?password=" + pw + "&connect_timeout=5",
	}
	for _, dsn := range dsns {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		l, err := Open(ctx, dsn)
		cancel()
		if err == nil {
			l.Close()
			t.Fatalf("Open(%s): no error", Redact(dsn))
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("Open(%s): the error quotes the password: %v", Redact(dsn), err)
		}
	}
}

func TestPostgresWrongPassword(t *testing.T) {
	dsn := postgresStore(t)
	const pw = "Wrong-pw-4242"
	bad := strings.Replace(dsn, ":userbatch@", ":"+pw+"@", 1)
	if bad == dsn {
		t.Skipf("%s holds no password to replace", postgresEnv)
	}
	_, err := Open(context.Background(), bad)
	if err == nil {
		t.Fatal("Open with a wrong password: no error")
	}
	if strings.Contains(err.Error(), pw) {
		t.Errorf("the error quotes the password: %v", err)
	}
}

func TestRedact(t *testing.T) {
	cases := map[string]string{
		"postgres://ub:pw@db:5432/ledger?sslmode=require": "postgres://ub:xxxxx@db:5432/ledger?sslmode=require",
		"postgresql://ub@db/ledger?password=pw":           "postgresql://ub@db/ledger?password=xxxxx",
		"postgres://db/ledger":                            "postgres://db/ledger",
		"postgres://db/ledger?sslpassword=pw":             "postgres://db/ledger?sslpassword=xxxxx",
		"sqlite:/var/lib/userbatch/ledger.db":             "sqlite:/var/lib/userbatch/ledger.db",
		"postgres://ub:pw@db:port:x/ledger":               "(unparsable DSN)",
	}
	for in, want := range cases {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
