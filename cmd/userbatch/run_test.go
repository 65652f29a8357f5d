package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunEveryVendorEveryOutcome(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	in := e.write("ops.csv", allVendorsCSV)
	out := filepath.Join(e.dir, "report")
	res := e.run("run", "-c", e.cfg, "-o", out, in, "--log-format", "json")
	if res.code != exitIncomplete {
		t.Fatalf("exit %d, want %d (some rows fail on purpose)\n%s", res.code, exitIncomplete, res.stderr)
	}
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	want := map[string]struct{ outcome, code string }{
		"e-disable": {"applied", ""}, "e-member": {"already", ""}, "e-nobody": {"failed", "not_found"},
		"e-conflict": {"failed", "conflict"}, "e-flaky": {"applied", ""}, "e-down": {"applied", ""},
		"../x?y=1": {"applied", ""}, "c-toggle": {"applied", ""}, "c-dropped": {"unknown", "network"},
		"c-503": {"unknown", "server_error"}, "LOGIN_NAME:k-alice": {"applied", ""}, "k-already": {"already", ""},
		"k-nobody": {"failed", "not_found"}, "PHONE:+8190": {"applied", ""}, "m-busy": {"applied", ""},
		"m-already": {"already", ""}, "m/slash": {"applied", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("report has %d rows, want %d", len(rows), len(want))
	}
	for i, r := range rows {
		w := want[r["user"]]
		if r["outcome"] != w.outcome || r["error_code"] != w.code {
			t.Errorf("%s: outcome %s/%s, want %s/%s (%s)", r["user"], r["outcome"], r["error_code"], w.outcome, w.code, r["message"])
		}
		if r["line"] != itoa(i+2) || r["ticket"] != "T"+itoa(i+1) {
			t.Errorf("row %d: line %s ticket %s: order or passthrough lost", i, r["line"], r["ticket"])
		}
	}
	if got := rows[4]["attempts"]; got != "3" {
		t.Errorf("e-flaky: attempts %s, want 3 (two 503s, then applied)", got)
	}
	e.assertVendorState()
	sum := readSummary(t, out)
	if sum["rows"].(float64) != 17 || sum["exit_code"].(float64) != 1 {
		t.Errorf("summary rows %v exit %v", sum["rows"], sum["exit_code"])
	}
	for _, name := range []string{"report.csv", "summary.json", "failed.csv", "undo.csv", "journal.jsonl"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
	// The two unknown toggles are not safe to send again: check.csv, not failed.csv.
	if failed := readCSV(t, filepath.Join(out, "failed.csv")); len(failed) != 3 {
		t.Errorf("failed.csv has %d rows, want 3 (the failed ones)", len(failed))
	}
	if check := readCSV(t, filepath.Join(out, "check.csv")); len(check) != 2 {
		t.Errorf("check.csv has %d rows, want 2 (the unknown toggles)", len(check))
	}
}

func TestDryRunSendsNoChange(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.seedAllVendors()
	in := e.write("ops.csv", allVendorsCSV)
	out := filepath.Join(e.dir, "plan")
	res := e.run("run", "-c", e.cfg, "-o", out, "--dry-run", in)
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	details := map[string]string{}
	for _, r := range rows {
		details[r["user"]] = r["outcome"] + ":" + strings.SplitN(r["detail"], ":", 2)[0]
	}
	for user, want := range map[string]string{
		"e-disable": "planned:unknown state", "c-toggle": "planned:unknown state",
		"LOGIN_NAME:k-alice": "planned:would change", "k-already": "planned:no change",
		"m-busy": "planned:would change", "m-already": "planned:no change", "k-nobody": "failed:not_found",
	} {
		got := details[user]
		if user == "k-nobody" {
			got = rowsByUser(rows)[user]["outcome"] + ":" + rowsByUser(rows)[user]["error_code"]
		}
		if got != want {
			t.Errorf("%s: %s, want %s", user, got, want)
		}
	}
	writes := 0
	for _, id := range []string{"e-disable", "e-flaky", "e-member"} {
		writes += e.fakes.epixel.Writes(id)
	}
	writes += e.fakes.clearsquare.Writes("c-toggle") + e.fakes.kii.Writes("LOGIN_NAME:k-alice") + e.fakes.msgkart.Writes("m-busy")
	if writes != 0 || e.fakes.epixel.Requests() != 0 || e.fakes.clearsquare.Requests() != 0 {
		t.Errorf("dry run wrote: %d writes, epixel %d requests, clearsquare %d", writes, e.fakes.epixel.Requests(), e.fakes.clearsquare.Requests())
	}
	if res.code != exitIncomplete { // k-nobody cannot be read
		t.Errorf("exit %d\n%s", res.code, res.stderr)
	}
}
