package job

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"
)

// isLeftover reports whether name is a temporary file a userbatch process
// writes in a report directory and renames or removes before it ends: a
// report file being written (".report.csv.123.partial", the undo spool's,
// verify.csv's, plan.csv's) or a guard's reading pass (".plan-RUNID.jsonl").
// Found while the directory's lock is held, it was left by a process that
// was killed: nobody writes it any more.
func isLeftover(name string) bool {
	return strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".partial") ||
		strings.HasPrefix(name, ".plan-") && strings.HasSuffix(name, ".jsonl")
}

// removeLeftovers removes the temporary files a killed process left in the
// locked directory, and returns the names removed.
func (l *Lock) removeLeftovers() ([]string, error) {
	if l == nil || l.f == nil {
		return nil, errors.New("the directory is not locked")
	}
	dir := filepath.Dir(l.path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		if !e.Type().IsRegular() || !isLeftover(e.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, err
		}
		removed = append(removed, e.Name())
	}
	return removed, nil
}

// CleanUp removes the temporary files a killed process left in the locked
// directory, and says so in the log: they hold user ids, and no run, resume
// or merge leaves one behind (README, "Report directory"). A file that
// cannot be removed is logged, not fatal: this process's own temporary
// files have names of their own.
func (l *Lock) CleanUp(log zerolog.Logger) {
	removed, err := l.removeLeftovers()
	if len(removed) > 0 {
		log.Info().Str("report_dir", filepath.Dir(l.path)).Strs("files", removed).
			Msg("removed the temporary files a stopped userbatch process left (they held user ids)")
	}
	if err != nil {
		log.Warn().Err(err).Str("report_dir", filepath.Dir(l.path)).Msg("temporary files a stopped userbatch process left could not be removed; remove them by hand (they hold user ids)")
	}
}
