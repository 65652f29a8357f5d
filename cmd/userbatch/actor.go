package main

import (
	"os"
	"os/user"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/userbatch/userbatch/cmd/userbatch/internal/job"
)

// actorEnv names who runs userbatch when --actor is not given: a scheduler
// sets it to the person or team the job runs for.
const actorEnv = "USERBATCH_ACTOR"

// maxActor bounds --actor: a name, not a document.
const maxActor = 200

// actorFlag adds --actor to a command that changes users or plans changes.
func actorFlag(cmd *cobra.Command, actor *string) {
	cmd.Flags().StringVar(actor, "actor", "", "who runs this, recorded in the journal, summary.json, the ledger and the webhook (default: $"+actorEnv+", else $USER@hostname)")
}

// resolveActor is --actor, else $USERBATCH_ACTOR, else $USER@hostname.
func resolveActor(flag string) (string, error) {
	a := flag
	what := "--actor"
	if a == "" {
		a, what = os.Getenv(actorEnv), actorEnv
	}
	if a == "" {
		return defaultActor(), nil
	}
	a = strings.TrimSpace(a)
	switch {
	case a == "":
		return "", job.BadInput("%s is blank: give a name, such as jdoe or hr-offboarding@cron1", what)
	case len(a) > maxActor:
		return "", job.BadInput("%s is %d bytes long: at most %d are accepted", what, len(a), maxActor)
	case strings.IndexFunc(a, unicode.IsControl) >= 0:
		return "", job.BadInput("%s holds a control character (a tab, a newline, an escape): give a plain name", what)
	}
	return a, nil
}

// defaultActor is $USER@hostname, with the account's name when $USER is unset.
func defaultActor() string {
	name := os.Getenv("USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if name == "" {
		name = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return name
	}
	return name + "@" + host
}
