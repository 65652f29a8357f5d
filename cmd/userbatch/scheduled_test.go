package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
	"github.com/userbatch/userbatch/adapters/kii/kiitest"
)

// runAt runs the built binary with its clock moved to at.
func (e *e2e) runAt(at time.Time, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), nowEnv+"="+at.UTC().Format(time.RFC3339))
	var out, errb lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// TestScheduledRunsSendEachRowOnce is issue 10's acceptance: 300 rows due
// over three days, run at day 0, 1, 2 and 3 with the same file and a new
// report directory each time, against a ledger: every row is sent exactly
// once, on its day, toggles included.
func TestScheduledRunsSendEachRowOnce(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	c := e.fakes.creds
	e.fakes.epixel = epixeltest.New(epixeltest.Options{APIKey: c.epixelKey, Token: c.epixelToken, AutoCreate: true})
	e.fakes.clearsquare = clearsquaretest.New(clearsquaretest.Options{Token: c.clearsquareToken, AutoCreate: true})
	e.fakes.kii = kiitest.New(kiitest.Options{AppID: fakeKiiApp, Token: c.kiiToken, AutoCreate: true})
	e.serve(e.fakes.handler())
	ledgerPath := filepath.Join(e.dir, "state", "ledger.db")
	cfg := e.write("scheduled.yaml", e.fakes.targetsYAML(e.srv.URL, 1000)+"ledger: sqlite:"+ledgerPath+"\n")

	day0 := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	var b strings.Builder
	b.WriteString("target,user,action,effective_at\n")
	dueDay := map[string]int{}
	for i := 0; i < 300; i++ {
		day := 1 + i%3 // due on day 1, 2 or 3
		var row string
		switch i % 3 {
		case 0:
			row = fmt.Sprintf("shop,e%03d,disable", i)
		case 1:
			row = fmt.Sprintf("apps,k%03d,disable", i)
		default:
			row = fmt.Sprintf("admin,c%03d,toggle-status", i)
		}
		user := strings.Split(row, ",")[1]
		dueDay[user] = day
		// Dates and times both: a date is midnight UTC of that day.
		at := day0.AddDate(0, 0, day).Format("2006-01-02")
		if i%2 == 0 {
			at = day0.AddDate(0, 0, day).Add(-time.Hour).Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "%s,%s\n", row, at)
	}
	in := e.write("leavers.csv", b.String())

	writes := func(user string) int {
		switch user[0] {
		case 'e':
			return e.fakes.epixel.Writes(user)
		case 'k':
			return e.fakes.kii.Writes(user)
		}
		return e.fakes.clearsquare.Writes(user)
	}
	for day := 0; day <= 3; day++ {
		out := filepath.Join(e.dir, fmt.Sprintf("report-day%d", day))
		res := e.runAt(day0.AddDate(0, 0, day), "run", "-c", cfg, "-o", out, in)
		if res.code != exitOK {
			t.Fatalf("day %d: exit %d\n%s", day, res.code, res.stderr)
		}
		sum := readSummary(t, out)
		outcomes := sum["outcomes"].(map[string]any)
		for user, due := range dueDay {
			want := 0
			if due <= day {
				want = 1
			}
			if got := writes(user); got != want {
				t.Fatalf("day %d: %s (due day %d) written %d times, want %d", day, user, due, got, want)
			}
		}
		dueNow, dueBefore := 0, 0
		for _, due := range dueDay {
			switch {
			case due == day:
				dueNow++
			case due < day:
				dueBefore++
			}
		}
		if outcomes["applied"] != float64(dueNow) || outcomes["already"] != float64(dueBefore) || outcomes["not_due"] != float64(300-dueNow-dueBefore) {
			t.Errorf("day %d: outcomes %v, want applied %d, already %d, not_due %d", day, outcomes, dueNow, dueBefore, 300-dueNow-dueBefore)
		}
	}
	// history answers "who changed this user, and when?": one change each,
	// from the run of its day, toggles included.
	for _, user := range []string{"e000", "k001", "c002"} {
		res := e.run("history", "-c", cfg, "--user", user, "--format", "json")
		if res.code != exitOK {
			t.Fatalf("history --user %s: exit %d\n%s", user, res.code, res.stderr)
		}
		lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], `"user":"`+user+`"`) || !strings.Contains(lines[0], `"outcome":"applied"`) {
			t.Errorf("history --user %s:\n%s", user, res.stdout)
		}
	}
	// A row the ledger holds says who did it.
	rows := readCSV(t, filepath.Join(e.dir, "report-day3", "report.csv"))
	if r := rows[0]; r["outcome"] != "already" || !strings.HasPrefix(r["detail"], "done by run ") {
		t.Errorf("day 3, %s: %s %q", r["user"], r["outcome"], r["detail"])
	}
}
