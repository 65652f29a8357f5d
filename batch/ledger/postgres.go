package ledger

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

var postgresDialect = &dialect{
	migrations: [][]string{{
		`CREATE TABLE userbatch_ledger (
			id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			target TEXT NOT NULL,
			user_id TEXT NOT NULL,
			action TEXT NOT NULL,
			role TEXT NOT NULL,
			effective_at TEXT NOT NULL,
			state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
			outcome TEXT NOT NULL,
			recorded_at TIMESTAMPTZ NOT NULL,
			run_id TEXT NOT NULL,
			input_sha256 TEXT NOT NULL,
			line INTEGER NOT NULL,
			UNIQUE (target, user_id, action, role, effective_at)
		)`,
		`CREATE INDEX userbatch_ledger_user ON userbatch_ledger (user_id, recorded_at)`,
		`CREATE INDEX userbatch_ledger_recorded ON userbatch_ledger (recorded_at)`,
	}, {
		// Identity, actor and generation: see sqliteV2.
		`ALTER TABLE userbatch_ledger ADD COLUMN user_key TEXT`,
		`UPDATE userbatch_ledger SET user_key = user_id`,
		`ALTER TABLE userbatch_ledger ALTER COLUMN user_key SET NOT NULL`,
		`ALTER TABLE userbatch_ledger ADD COLUMN generation INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE userbatch_ledger ADD COLUMN actor TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE userbatch_ledger DROP CONSTRAINT userbatch_ledger_target_user_id_action_role_effective_at_key`,
		`ALTER TABLE userbatch_ledger ADD CONSTRAINT userbatch_ledger_change UNIQUE (target, user_key, action, role, effective_at, generation)`,
		`CREATE INDEX userbatch_ledger_user_key ON userbatch_ledger (target, user_key)`,
		`CREATE INDEX userbatch_ledger_run ON userbatch_ledger (run_id)`,
	}},
	// Shards opening a fresh database at once: the first migrates, the others
	// wait for its commit and then find the schema current. The lock is per
	// schema, so stores in separate schemas of one database do not wait.
	lockMigration: `SELECT pg_advisory_xact_lock(hashtext('userbatch_schema'), hashtext(coalesce(current_schema(), '')))`,
	timeArg:       func(t time.Time) any { return t.UTC() },
	dollar:        true,
	conflict:      postgresConflict,
	bulk:          postgresBulk,
}

// postgresConflict reports a deadlock or serialization failure: two runs'
// transactions claiming overlapping keys in different orders.
func postgresConflict(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "40P01" || pg.Code == "40001")
}

// postgresMaxConns bounds one process's connections: a run's workers share
// them, and many shards share the server's max_connections.
const postgresMaxConns = 8

// postgresConnectTimeout applies unless the DSN sets connect_timeout: a
// scheduled run whose server is gone fails soon rather than hanging.
const postgresConnectTimeout = 15 * time.Second

func openPostgres(ctx context.Context, dsn string) (Ledger, error) {
	secret := urlPassword(dsn)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, scrub(fmt.Errorf("ledger: the PostgreSQL DSN cannot be parsed (%s); accepted: %s", parseReason(err), Accepted), secret)
	}
	if cfg.Password != "" {
		secret = cfg.Password
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = postgresConnectTimeout
	}
	where := fmt.Sprintf("postgres database %q on %s:%d", cfg.Database, cfg.Host, cfg.Port)
	if strings.Contains(where+" "+cfg.User, secret) {
		secret = "" // shown already as a name: scrubbing it would only garble the names
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(postgresMaxConns)
	db.SetMaxIdleConns(postgresMaxConns)
	if err := migrate(ctx, db, postgresDialect); err != nil {
		db.Close()
		return nil, scrub(fmt.Errorf("ledger %s: %w", where, err), secret)
	}
	l, err := newSQLLedger(ctx, db, postgresDialect, where, secret)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// urlPassword is the password in a URL DSN, if one can be found.
func urlPassword(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return ""
	}
	if p, ok := u.User.Password(); ok {
		return p
	}
	return u.Query().Get("password")
}

// parseReason says why pgx could not parse a DSN without quoting the DSN:
// url.Parse's errors quote it whole, and pgx's redaction is best effort.
func parseReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, "`: "); i >= 0 {
		return msg[i+len("`: "):]
	}
	return "not a PostgreSQL URL"
}
