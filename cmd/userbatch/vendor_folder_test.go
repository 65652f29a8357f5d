package main

import (
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters"
	"github.com/userbatch/userbatch/adapters/deskly"
	"github.com/userbatch/userbatch/adapters/deskly/desklytest"
	"github.com/userbatch/userbatch/batch"
)

// TestSixthVendorIsOneFolder: a vendor with a column of its own is one
// new folder and one registry entry, and nothing else changes (README
// "Layout"). Adding Deskly, whose disable needs a handover_to column, is by
// `git diff --stat`:
//
//	adapters/deskly/deskly.go             (the adapter)
//	adapters/deskly/rules.go              (its column and how it is validated)
//	adapters/deskly/desklytest/fake.go    (its fake)
//	adapters/registry.go                  (one entry: here, registerDeskly)
//
// and no line of batch, reports or cmd/userbatch/internal/job, which
// TestCoreImportsNoVendor and TestCoreNamesNoVendor (adapters) hold to.
// validate checks the column with its line and column, and a run sends the
// cell to the vendor and accounts for every row.
func TestSixthVendorIsOneFolder(t *testing.T) {
	registerDeskly(t)
	fake := desklytest.New("desk-token-1")
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	e := newE2E(t)
	cfg := e.write("desk.yaml", "targets:\n  desk:\n    vendor: deskly\n    base_url: "+srv.URL+
		"\n    token: desk-token-1\n    rate: 100\n")
	in := e.write("agents.csv", "target,user,action,handover_to,ticket\n"+
		"desk,a1,disable,,T1\n"+
		"desk,a2,disable, b7 ,T2\n"+
		"desk,a3,enable,,T3\n"+
		"desk,a4,disable,a4,T4\n")

	res := e.inProcess("validate", "-c", cfg, in) // in process: the registry entry is this test's
	if res.code != exitBadInput {
		t.Fatalf("validate: exit %d, want 2\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{
		"line 2, column handover_to: handover_to is empty: a disabled agent's tickets need an owner (accepted: the id of another agent, who takes over the open tickets)",
		"line 5, column handover_to: handover_to is the agent being disabled (a4)",
	} {
		if !strings.Contains(res.stdout+res.stderr, want) {
			t.Errorf("validate lacks %q:\n%s%s", want, res.stdout, res.stderr)
		}
	}
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("validate sent %d requests", n)
	}

	out := filepath.Join(e.dir, "report")
	res = e.inProcess("run", "-c", cfg, "-o", out, "--skip-invalid", in)
	if res.code != exitIncomplete {
		t.Fatalf("run: exit %d\n%s", res.code, res.stderr)
	}
	want := []desklytest.Request{{Agent: "a2", Verb: "disable", HandoverTo: "b7"}, {Agent: "a3", Verb: "enable"}}
	got := fake.Requests() // rows of different users run in parallel
	slices.SortFunc(got, func(a, b desklytest.Request) int { return strings.Compare(a.Agent, b.Agent) })
	if !slices.Equal(got, want) {
		t.Errorf("the vendor got %+v, want %+v", got, want)
	}
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	var outcomes []string
	for _, r := range rows {
		outcomes = append(outcomes, r["outcome"])
		if _, ok := r["handover_to"]; ok {
			t.Errorf("report.csv carries the vendor's column as a passthrough: %v", r)
		}
	}
	if !slices.Equal(outcomes, []string{"invalid", "applied", "applied", "invalid"}) || rows[1]["ticket"] != "T2" {
		t.Errorf("report.csv outcomes %q, rows %v", outcomes, rows)
	}
	undo := readCSV(t, filepath.Join(out, "undo.csv"))
	if len(undo) != 2 || undo[1]["action"] != "enable" || undo[1]["user"] != "a2" || undo[1]["handover_to"] != "" {
		t.Errorf("undo.csv: %v (want a2's enable, its handover not copied)", undo)
	}
}

// registerDeskly is the registry entry a vendor needs: its name, actions,
// keys and the values of its folder. The test puts it in adapters.Vendors
// for its own run only.
func registerDeskly(t *testing.T) {
	saved := adapters.Vendors
	t.Cleanup(func() { adapters.Vendors = saved })
	adapters.Vendors = append(slices.Clone(saved), adapters.Vendor{
		Name:        "deskly",
		Summary:     "Deskly helpdesk: disable agents with a handover of their tickets, enable them",
		Actions:     []batch.Action{batch.Disable, batch.Enable},
		Reads:       "nothing",
		Credentials: []string{"token"},
		Columns:     deskly.Rules{}.Columns(),
		Validator:   deskly.Rules{},
		New: func(s adapters.Settings) (batch.Adapter, error) {
			return deskly.New(deskly.Config{BaseURL: s.BaseURL, Token: s.Token, Client: s.Client})
		},
	})
}
