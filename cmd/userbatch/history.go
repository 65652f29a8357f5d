package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/userbatch/userbatch/batch"
	"github.com/userbatch/userbatch/batch/ledger"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/config"
	"github.com/userbatch/userbatch/cmd/userbatch/internal/job"
	"github.com/userbatch/userbatch/reports"
)

type historyOptions struct {
	*globalOptions
	configPath string
	user       string
	target     string
	since      string
	format     string
}

func newHistoryCmd(g *globalOptions) *cobra.Command {
	o := &historyOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "history -c targets.yaml [--user ID] [--target T] [--since T] [--format table|csv|json]",
		Short: "List the changes the ledger recorded: who was changed, when, by which run, from which input line",
		Long: `List what the ledger named by targets.yaml's ledger: key recorded, oldest first:
every change a run applied or found already made, with its time, run id, who
ran it (the actor), input SHA-256 and line. Entries still pending are changes
whose outcome a run could not learn: check those users by hand.

--since takes an RFC 3339 time (2026-11-30T08:00:00Z), a date (2026-11-30,
midnight UTC) or how long ago (24h, 90m, 7d). --format json writes JSON Lines.

Exit 0 when the history was written; 2 for bad flags or config, a config
without a ledger, or a ledger that cannot be opened; 3 when reading stopped
part way (the output is incomplete).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return historyRun(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.configPath, "config", "c", "", "targets config (YAML) whose ledger: to read; required")
	f.StringVar(&o.user, "user", "", "only this user, compared as the target's vendor compares ids: with or without its id-form prefix (leo finds LOGIN_NAME:leo), in any case where the vendor's ids ignore case")
	f.StringVar(&o.target, "target", "", "only this target")
	f.StringVar(&o.since, "since", "", "only changes recorded at or after this time, date or duration ago")
	f.StringVar(&o.format, "format", ledger.HistoryFormats[0], "output: "+strings.Join(ledger.HistoryFormats, ", "))
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func historyRun(ctx context.Context, o *historyOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	since, err := parseSince(o.since, o.now())
	if err != nil {
		return err
	}
	out, err := ledger.NewHistoryWriter(o.stdout, o.format)
	if err != nil {
		return job.BadInput("--format: %v", err)
	}
	l, err := openHistoryLedger(ctx, o.configPath)
	if err != nil {
		return err
	}
	defer l.Close()
	filter := ledger.Filter{Target: o.target, Since: since}
	if o.user != "" {
		ids, err := config.LoadIdentities(o.configPath)
		if err != nil {
			return &job.Error{Code: reports.ExitBadInput, Err: err}
		}
		filter.Match = sameUser(ids, o.user)
	}
	err = l.History(ctx, filter, out.Write)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &job.Error{Code: reports.ExitStopped, Err: fmt.Errorf("reading the ledger stopped part way; the list above is incomplete: %w", err)}
	}
	return nil
}

// sameUser matches the entries for user as each target's vendor compares
// user cells: `leo` finds `LOGIN_NAME:Leo` where the vendor's ids ignore
// case and take the prefix. A target no longer configured compares exactly.
func sameUser(ids map[string]batch.Identity, user string) func(ledger.Entry) bool {
	return func(e ledger.Entry) bool {
		id, ok := ids[e.Target]
		if !ok {
			return e.User == user || e.UserKey == user
		}
		return id.Key(e.User) == id.Key(user)
	}
}

// openHistoryLedger opens the config's ledger. A SQLite file that does not
// exist is refused rather than created: a mistyped path would otherwise
// show an empty history, as if nobody had been changed.
func openHistoryLedger(ctx context.Context, configPath string) (ledger.Ledger, error) {
	dsn, err := config.LoadLedger(configPath)
	if err != nil {
		return nil, &job.Error{Code: reports.ExitBadInput, Err: err}
	}
	if dsn == "" {
		return nil, job.BadInput("%s has no ledger: history lists what runs recorded in the ledger that targets.yaml names (ledger: sqlite:PATH or postgres://...)", configPath)
	}
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, job.BadInput("the ledger %s does not exist: no run has recorded a change there yet, or the path is wrong", path)
		}
	}
	l, err := ledger.Open(ctx, dsn)
	if err != nil {
		// ledger's errors never hold the DSN's password.
		return nil, job.BadInput("opening the ledger %s: %v", ledger.Redact(dsn), err)
	}
	return l, nil
}

// days matches "7d": Go durations stop at hours, operators count in days.
var days = regexp.MustCompile(`^([0-9]+)d$`)

// parseSince reads --since: an RFC 3339 time, a date (midnight UTC) or a
// duration before now. "" is no bound (the zero time).
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if m := days.FindStringSubmatch(s); m != nil {
		n, aerr := strconv.Atoi(m[1])
		d, err = time.Duration(n)*24*time.Hour, aerr
		if n > 100_000 {
			err = errors.New("too many days")
		}
	}
	if err != nil || d < 0 {
		return time.Time{}, job.BadInput("--since %q: use an RFC 3339 time (2026-11-30T08:00:00Z), a date (2026-11-30, midnight UTC) or how long ago (24h, 7d)", s)
	}
	return now.Add(-d), nil
}
