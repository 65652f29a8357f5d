package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers "sqlite": pure Go, so the binary stays static
)

// sqliteBusyTimeout is how long a write waits for another process's write
// to finish before failing.
const sqliteBusyTimeout = 30 * time.Second

// sqliteMaxConns bounds one process's connections to the file.
const sqliteMaxConns = 8

// sqliteTime is recorded_at's text form: fixed width, so text order is time order.
const sqliteTime = "2006-01-02T15:04:05.000000Z"

var sqliteDialect = &dialect{
	migrations: [][]string{{
		`CREATE TABLE userbatch_ledger (
			id INTEGER PRIMARY KEY, -- rowid: max+1, so insertion order
			target TEXT NOT NULL,
			user_id TEXT NOT NULL,
			action TEXT NOT NULL,
			role TEXT NOT NULL,
			effective_at TEXT NOT NULL,
			state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
			outcome TEXT NOT NULL,
			recorded_at TEXT NOT NULL,
			run_id TEXT NOT NULL,
			input_sha256 TEXT NOT NULL,
			line INTEGER NOT NULL,
			UNIQUE (target, user_id, action, role, effective_at)
		)`,
		`CREATE INDEX userbatch_ledger_user ON userbatch_ledger (user_id, recorded_at)`,
		`CREATE INDEX userbatch_ledger_recorded ON userbatch_ledger (recorded_at)`,
	}, sqliteV2},
	timeArg:     func(t time.Time) any { return t.UTC().Format(sqliteTime) },
	groupCommit: true,
	bulk:        sqliteBulk,
}

// sqliteV2 keeps each user's identity at the vendor (user_key), who ran
// each run (actor) and a generation, so that a change superseded by a later
// one can be made again: the unique key moves from the cell to the identity
// and generation. SQLite cannot drop a constraint, so the table is copied.
// Earlier entries take their cell as identity, and actor "".
var sqliteV2 = []string{
	`CREATE TABLE userbatch_ledger_v2 (
		id INTEGER PRIMARY KEY,
		target TEXT NOT NULL,
		user_id TEXT NOT NULL,
		user_key TEXT NOT NULL,
		action TEXT NOT NULL,
		role TEXT NOT NULL,
		effective_at TEXT NOT NULL,
		generation INTEGER NOT NULL,
		state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
		outcome TEXT NOT NULL,
		recorded_at TEXT NOT NULL,
		run_id TEXT NOT NULL,
		actor TEXT NOT NULL,
		input_sha256 TEXT NOT NULL,
		line INTEGER NOT NULL,
		UNIQUE (target, user_key, action, role, effective_at, generation)
	)`,
	`INSERT INTO userbatch_ledger_v2 (id, target, user_id, user_key, action, role, effective_at, generation,
		state, outcome, recorded_at, run_id, actor, input_sha256, line)
		SELECT id, target, user_id, user_id, action, role, effective_at, 0,
		state, outcome, recorded_at, run_id, '', input_sha256, line FROM userbatch_ledger`,
	`DROP TABLE userbatch_ledger`,
	`ALTER TABLE userbatch_ledger_v2 RENAME TO userbatch_ledger`,
	`CREATE INDEX userbatch_ledger_user ON userbatch_ledger (user_id, recorded_at)`,
	`CREATE INDEX userbatch_ledger_recorded ON userbatch_ledger (recorded_at)`,
	`CREATE INDEX userbatch_ledger_user_key ON userbatch_ledger (target, user_key)`,
	`CREATE INDEX userbatch_ledger_run ON userbatch_ledger (run_id)`,
}

// openSQLite opens (creating if needed) the ledger file at path: WAL, so
// readers never block the writer; synchronous=FULL, so a commit that returned
// survives a crash or power loss; transactions BEGIN IMMEDIATE, so two
// processes migrating at once wait for each other instead of failing.
func openSQLite(ctx context.Context, path string) (Ledger, error) {
	if path == "" {
		return nil, fmt.Errorf("ledger: sqlite: no path given (write sqlite:PATH)")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: sqlite:%s: %w", path, err)
	}
	where := "sqlite:" + abs
	if err := createPrivate(abs); err != nil {
		return nil, fmt.Errorf("ledger %s: %w", where, err)
	}
	db, err := sql.Open("sqlite", sqliteDSN(abs))
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", where, err)
	}
	// Readers need few connections (a look-up is short) and each holds a page
	// cache; writes use one at a time.
	db.SetMaxOpenConns(sqliteMaxConns)
	db.SetMaxIdleConns(sqliteMaxConns)
	if err := migrate(ctx, db, sqliteDialect); err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger %s: %w", where, err)
	}
	l, err := newSQLLedger(ctx, db, sqliteDialect, where, "")
	if err != nil {
		return nil, err
	}
	return l, nil
}

// createPrivate makes path's directory (0700) and the file itself (0600)
// unless they exist, so the ledger is readable by its owner alone. SQLite
// gives its -wal and -shm files the database file's permissions.
func createPrivate(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// sqliteDSN is the driver's URI for path with the settings every connection needs.
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(sqliteBusyTimeout.Milliseconds()))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_txlock", "immediate")
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}
