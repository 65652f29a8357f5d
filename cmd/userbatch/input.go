package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/userbatch/userbatch/batch"
)

// input is the operations file, readable more than once (validation, the
// run, the report), with the SHA-256 a resume checks.
type input struct {
	path    string
	sha256  string
	cleanup func()
}

// openInput hashes the file at path, or spools stdin ("-") to a private
// temporary file so it can be read again.
func openInput(path string, stdin io.Reader) (*input, error) {
	if path == "-" {
		return spool(stdin)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	return &input{path: path, sha256: hex.EncodeToString(h.Sum(nil)), cleanup: func() {}}, nil
}

func spool(r io.Reader) (*input, error) {
	f, err := os.CreateTemp("", "userbatch-stdin-*.csv")
	if err != nil {
		return nil, fmt.Errorf("saving stdin: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), r); err != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("reading stdin: %w", err)
	}
	name := f.Name()
	return &input{path: name, sha256: hex.EncodeToString(h.Sum(nil)), cleanup: func() { os.Remove(name) }}, nil
}

// journalPlan is what the report directory's journal allows, checked
// before anything is validated or written.
type journalPlan struct {
	path   string
	header batch.JournalHeader
	// state is the journal so far, for --resume; nil starts a new one.
	state *batch.JournalState
	// restart replaces a journal that died before its header.
	restart bool
}

// checkJournal refuses a run into a directory that holds a journal (without
// --resume), and a resume whose journal is for another input or config.
func checkJournal(o *runOptions, cfg *config, in *input) (*journalPlan, error) {
	plan := &journalPlan{path: filepath.Join(o.reportDir, batch.JournalName),
		header: batch.JournalHeader{InputSHA256: in.sha256, Targets: batch.SortedNames(cfg.Targets),
			ConfigSHA256: cfg.fingerprint(), DryRun: o.dryRun, Shard: o.shard.String()}}
	if !o.resume {
		if _, err := os.Stat(plan.path); err == nil {
			return nil, badInput("%s already exists: this report directory holds an earlier run; use --resume to continue it, or another -o directory", plan.path)
		}
		return plan, nil
	}
	st, err := batch.ReadJournal(plan.path)
	switch {
	case errors.Is(err, batch.ErrNoHeader):
		plan.restart = true // the run died before it sent anything
		return plan, nil
	case os.IsNotExist(err):
		return nil, badInput("--resume: %s has no journal: nothing to resume (run without --resume to start)", o.reportDir)
	case err != nil:
		return nil, badInput("--resume: %v", err)
	}
	if err := sameRun(st.Header, plan.header); err != nil {
		return nil, badInput("--resume refused: %v", err)
	}
	plan.state = st
	return plan, nil
}

// open starts, restarts or continues the journal.
func (p *journalPlan) open() (*batch.Journal, error) {
	switch {
	case p.restart:
		return batch.RestartJournal(p.path, p.header)
	case p.state != nil:
		return batch.AppendJournal(p.path)
	}
	return batch.CreateJournal(p.path, p.header)
}

func sameRun(got, want batch.JournalHeader) error {
	switch {
	case got.InputSHA256 != want.InputSHA256:
		return fmt.Errorf("the input file is not the one this journal was started with (SHA-256 %.12s…, now %.12s…): resume with the same file, or use another -o directory", got.InputSHA256, want.InputSHA256)
	case !slices.Equal(got.Targets, want.Targets):
		return fmt.Errorf("the config's targets changed (journal: %v, now: %v)", got.Targets, want.Targets)
	case got.ConfigSHA256 != want.ConfigSHA256:
		return fmt.Errorf("the config changed for the same targets (vendor, base_url, app_id or email differ): resume with the config the run started with")
	case got.Shard != want.Shard:
		return fmt.Errorf("the journal is for shard %q; this run is for shard %q", got.Shard, want.Shard)
	case got.DryRun != want.DryRun:
		return fmt.Errorf("the journal is from a run with dry-run=%v; this one has dry-run=%v", got.DryRun, want.DryRun)
	}
	return nil
}
