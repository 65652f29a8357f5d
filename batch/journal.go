package batch

// The journal by job: journal_write.go appends records, journal_codec.go
// encodes and decodes them, journal_read.go reads a journal back for
// --resume, journal_index.go looks outcomes up by row for the report.

import "time"

// JournalName is the journal's file name in the report directory.
const JournalName = "journal.jsonl"

// JournalHeader is the journal's first record: what the run was over, so
// that --resume can refuse a different input or config.
type JournalHeader struct {
	Type    string `json:"type"` // "header"
	Version int    `json:"version"`
	// InputSHA256 is the hex SHA-256 of the input file's bytes.
	InputSHA256 string `json:"input_sha256"`
	// Targets are the configured target names, sorted.
	Targets []string `json:"targets"`
	// ConfigSHA256 fingerprints what the targets point at (never secrets).
	ConfigSHA256 string `json:"config_sha256"`
	DryRun       bool   `json:"dry_run"`
	// RunID names the run in the ledger, the same across its resumes.
	RunID string `json:"run_id,omitempty"`
	// Held is true for a run a guard held: it sent nothing and is never
	// resumed; a later run in its directory sets its files aside.
	Held      bool      `json:"held,omitempty"`
	Shard     string    `json:"shard,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Invalid is true for a run refused for its invalid rows: it sent
	// nothing and is never resumed; a later run there sets its files aside.
	Invalid bool `json:"invalid,omitempty"`
}

type record struct {
	Type string `json:"type"` // "intent" | "result" | "run" | "canary"
	*Result
	Attempt   int        `json:"attempt,omitempty"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	Canary    []int      `json:"canary,omitempty"` // row indexes
	// Actor is who started the process (a "run" record).
	Actor string `json:"actor,omitempty"`
}
