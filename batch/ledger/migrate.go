package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// schemaTable holds the store's schema version, in one row.
const schemaTable = "userbatch_schema"

// migrate brings the store's schema to the newest version this package knows,
// in one transaction, and refuses a store from a newer version.
func migrate(ctx context.Context, db *sql.DB, d *dialect) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // after Commit, a no-op
	if d.lockMigration != "" {
		if _, err := tx.ExecContext(ctx, d.lockMigration); err != nil {
			return fmt.Errorf("lock for migration: %w", err)
		}
	}
	from, err := schemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	known := len(d.migrations)
	if from > known {
		return fmt.Errorf("%w: schema version %d, this userbatch knows versions up to %d: use a newer userbatch", ErrNewerSchema, from, known)
	}
	if from == known {
		return tx.Commit()
	}
	for v := from; v < known; v++ {
		for _, stmt := range d.migrations[v] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, "UPDATE "+schemaTable+" SET version = "+fmt.Sprint(known)+" WHERE id = 1"); err != nil {
		return fmt.Errorf("record schema version %d: %w", known, err)
	}
	return tx.Commit()
}

// schemaVersion reads the version, creating the table at version 0 if needed.
func schemaVersion(ctx context.Context, tx *sql.Tx) (int, error) {
	create := "CREATE TABLE IF NOT EXISTS " + schemaTable + " (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"
	if _, err := tx.ExecContext(ctx, create); err != nil {
		return 0, fmt.Errorf("create %s: %w", schemaTable, err)
	}
	var v int
	err := tx.QueryRowContext(ctx, "SELECT version FROM "+schemaTable+" WHERE id = 1").Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		_, err = tx.ExecContext(ctx, "INSERT INTO "+schemaTable+" (id, version) VALUES (1, 0)")
	}
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
