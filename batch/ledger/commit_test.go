package ledger

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
)

func groupDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", sqliteDSN(filepath.Join(t.TempDir(), "g.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec("CREATE TABLE t (k TEXT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	return db
}

func insertReq(ctx context.Context, k string) *writeReq {
	return &writeReq{ctx: ctx, query: "INSERT INTO t VALUES (?) ON CONFLICT DO NOTHING", args: []any{k}, ready: make(chan struct{})}
}

func keys(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query("SELECT k FROM t ORDER BY k")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ks []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
	}
	return ks
}

// TestGroupCommitSkipsCancelled: a request whose context ended while it
// waited is not run; the rest of its group is, each with its own count.
func TestGroupCommitSkipsCancelled(t *testing.T) {
	db := groupDB(t)
	g := &groupCommit{db: db}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	group := []*writeReq{insertReq(context.Background(), "a"), insertReq(cancelled, "b"),
		insertReq(context.Background(), "a"), insertReq(context.Background(), "c")}
	g.commit(group)
	for i, want := range []int64{1, 0, 0, 1} {
		if group[i].n != want {
			t.Errorf("request %d changed %d rows, want %d", i, group[i].n, want)
		}
	}
	if !errors.Is(group[1].err, context.Canceled) || group[0].err != nil || group[2].err != nil || group[3].err != nil {
		t.Errorf("errors %v %v %v %v, want only the cancelled one", group[0].err, group[1].err, group[2].err, group[3].err)
	}
	if got := keys(t, db); len(got) != 2 || got[0] != "a" || got[1] != "c" {
		t.Errorf("rows %v, want [a c]", got)
	}
}

// TestGroupCommitFailsWhole: a statement that fails fails its whole group,
// and none of the group is committed.
func TestGroupCommitFailsWhole(t *testing.T) {
	db := groupDB(t)
	g := &groupCommit{db: db}
	bad := insertReq(context.Background(), "x")
	bad.query = "INSERT INTO missing VALUES (?)"
	group := []*writeReq{insertReq(context.Background(), "a"), bad, insertReq(context.Background(), "c")}
	g.commit(group)
	for i, r := range group {
		if r.err == nil || r.n != 0 {
			t.Errorf("request %d: err %v, n %d; want the group's error and no rows", i, r.err, r.n)
		}
	}
	if got := keys(t, db); len(got) != 0 {
		t.Errorf("rows %v committed from a failed group", got)
	}
}

func TestGroupCommitAfterClose(t *testing.T) {
	g := newGroupCommit(groupDB(t))
	if n, err := g.write(context.Background(), "INSERT INTO t VALUES ('a')"); err != nil || n != 1 {
		t.Fatalf("write: %d, %v", n, err)
	}
	g.close()
	g.close()
	if _, err := g.write(context.Background(), "INSERT INTO t VALUES ('b')"); !errors.Is(err, errClosed) {
		t.Fatalf("write after close: %v, want errClosed", err)
	}
}
