package main

import (
	"bytes"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters/declarative/acmetest"
	"github.com/userbatch/userbatch/adapters/msgkart/msgkarttest"
)

// TestSpecTargetThroughTheBinary: a target with vendor: http and spec:
// PATH (relative to targets.yaml) runs through the built binary to the
// vendor's fake, and report.csv says what happened row by row: README's
// worked example (Acme HR), and msgkart through its shipped spec.
func TestSpecTargetThroughTheBinary(t *testing.T) {
	t.Parallel()
	acme := acmetest.New("acme-token-1", "t-1")
	acme.AddUser("alice", false)
	acme.AddUser("bob", true)
	acme.AddUser("carol", true)
	acmeSrv := httptest.NewServer(acme)
	t.Cleanup(acmeSrv.Close)
	chat := msgkarttest.New(msgkarttest.Options{APIKey: "chat-key-1", Email: "ops@example.com"})
	chat.AddUser("m-1", msgkarttest.User{Status: msgkarttest.StatusAvailable})
	chatSrv := httptest.NewServer(chat)
	t.Cleanup(chatSrv.Close)

	e := &e2e{t: t, dir: t.TempDir()}
	spec, err := os.ReadFile("../../adapters/declarative/testdata/acme.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(e.dir, "vendors"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.write("vendors/acme.yaml", string(spec))
	e.env = []string{"ACME_TOKEN=acme-token-1"}
	cfg := e.write("targets.yaml", `targets:
  acme:
    vendor: http
    spec: vendors/acme.yaml
    base_url: `+acmeSrv.URL+`
    token: ${ACME_TOKEN}
    tenant: t-1
  chat:
    vendor: http
    spec: builtin:msgkart
    base_url: `+chatSrv.URL+`
    apikey: chat-key-1
`)

	// msgkart's spec needs an email, in the row or on the target: a row
	// without one is invalid at validate, with its line and column, and
	// nothing is sent.
	bad := e.write("bad.csv", "target,user,action,email\nacme,alice,disable,\nchat,m-1,disable,\n")
	p := e.start("validate", "-c", cfg, bad)
	if code := p.wait(); code != 2 || !strings.Contains(p.stdout.String()+p.stderr.String(), "line 3, column email: email is empty and target chat has no email") {
		t.Fatalf("validate exit %d:\n%s%s", code, p.stdout.String(), p.stderr.String())
	}
	p = e.start("run", "-c", cfg, "-o", filepath.Join(e.dir, "refused"), bad)
	if code := p.wait(); code != 2 || acme.Writes("alice") != 0 || chat.Writes("m-1") != 0 {
		t.Fatalf("run of an invalid file: exit %d, writes %d %d; stderr:\n%s", code, acme.Writes("alice"), chat.Writes("m-1"), p.stderr.String())
	}

	in := e.write("ops.csv", "target,user,action,email\n"+
		"acme,alice,disable,hr@example.com\n"+
		"acme,staff:BOB,disable,\n"+
		"acme,carol,enable,\n"+
		"acme,ghost,disable,\n"+
		"chat,m-1,disable,ops@example.com\n")
	out := filepath.Join(e.dir, "report")
	p = e.start("run", "-c", cfg, "-o", out, in)
	if code := p.wait(); code != 1 { // ghost fails: the run is incomplete
		t.Fatalf("run exit %d, stderr:\n%s", code, p.stderr.String())
	}
	want := []struct{ user, outcome, code, status string }{
		{"alice", "applied", "", "200"},
		{"staff:BOB", "already", "", "200"},
		{"carol", "applied", "", "200"},
		{"ghost", "failed", "not_found", "404"},
		{"m-1", "applied", "", "200"},
	}
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	if len(rows) != len(want) {
		t.Fatalf("report.csv has %d rows: %v", len(rows), rows)
	}
	for i, w := range want {
		r := rows[i]
		if r["user"] != w.user || r["outcome"] != w.outcome || r["error_code"] != w.code || r["http_status"] != w.status {
			t.Errorf("row %d: %v, want %+v", i+1, r, w)
		}
	}
	if s, _ := acme.Suspended("alice"); !s || acme.Writes("bob") != 0 || strings.Join(acme.Notified("alice"), ",") != "hr@example.com" {
		t.Errorf("at the fake: alice suspended %t, bob writes %d, notified %v", s, acme.Writes("bob"), acme.Notified("alice"))
	}
	if u, _ := chat.User("m-1"); u.Status != msgkarttest.StatusDisabled {
		t.Errorf("m-1 is %s", u.Status)
	}
	if strings.Contains(p.stderr.String(), "acme-token-1") || strings.Contains(p.stderr.String(), "chat-key-1") {
		t.Error("a credential reached the log")
	}

	// vendors -c names each http target's spec and what it can do.
	p = e.start("vendors", "-c", cfg)
	if code := p.wait(); code != 0 || !strings.Contains(p.stdout.String(), "acme\tvendor http, spec "+filepath.Join(e.dir, "vendors/acme.yaml")) ||
		!strings.Contains(p.stdout.String(), "sends POST /v1/tenants/{config.tenant}/staff/{user}/suspend") {
		t.Errorf("vendors -c: exit %d\n%s%s", code, p.stdout.String(), p.stderr.String())
	}
}

// TestVendorsCheck: `userbatch vendors check SPEC` prints what a spec can
// do, and refuses a broken one with its line and column.
func TestVendorsCheck(t *testing.T) {
	t.Parallel()
	e := &e2e{t: t, dir: t.TempDir()}
	p := e.start("vendors", "check", "builtin:clearsquare")
	out := p.stdout.String
	if code := p.wait(); code != 0 || !strings.Contains(out(), "toggle-status  NOT idempotent: never resent once it may have arrived") ||
		!strings.Contains(out(), "token (required, secret)") ||
		!regexp.MustCompile(`own answers +JSON with /message, or JSON with /status; 2 rules say what is not the vendor's \(3 in a row stop the target\)`).MatchString(out()) {
		t.Errorf("check builtin:clearsquare: exit %d\n%s%s", code, out(), p.stderr.String())
	}
	broken := e.write("broken.yaml", "vendor: x\nactions:\n  disable:\n    idempotent: yes please\n    request: {method: POST, path: /a}\n")
	p = e.start("vendors", "check", broken)
	if code := p.wait(); code != 2 || !strings.Contains(p.stderr.String(), "broken.yaml: line 4, column 17: cannot unmarshal !!str `yes please` into bool") {
		t.Errorf("check broken: exit %d\n%s", code, p.stderr.String())
	}
	// The same spec named by a target refuses the run at start: nothing sent.
	srv := httptest.NewServer(&counter{next: acmetest.New("t", "t")})
	t.Cleanup(srv.Close)
	cfg := e.write("targets.yaml", "targets:\n  x:\n    vendor: http\n    spec: broken.yaml\n    base_url: "+srv.URL+"\n")
	in := e.write("ops.csv", "target,user,action\nx,u1,disable\n")
	p = e.start("run", "-c", cfg, "-o", filepath.Join(e.dir, "r"), in)
	if code := p.wait(); code != 2 || !strings.Contains(p.stderr.String(), "line 4: target x: spec: ") ||
		!strings.Contains(p.stderr.String(), "broken.yaml: line 4, column 17") {
		t.Errorf("run with a broken spec: exit %d\n%s", code, p.stderr.String())
	}
}

// TestDemoAndSandboxRunASpec: the demo's and the sandbox's chat target is
// msgkart through its shipped spec, built into the binary; its rows end as
// the msgkart contract says (a read finds m-102 already disabled).
func TestDemoAndSandboxRunASpec(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := runMain([]string{"demo", "-o", dir}, strings.NewReader(""), &out, &errb); code != exitOK {
		t.Fatalf("demo exit %d\n%s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "demo: target chat is msgkart described by a spec (builtin:msgkart)") {
		t.Errorf("the demo does not say chat runs through a spec:\n%s", errb.String())
	}
	chat := map[string]string{}
	for _, r := range readCSV(t, filepath.Join(dir, "report.csv")) {
		if r["target"] == "chat" {
			chat[r["user"]] = r["outcome"] + " " + r["detail"]
		}
	}
	if !strings.HasPrefix(chat["m-100"], "applied") || !strings.HasPrefix(chat["m-101"], "applied") ||
		chat["m-102"] != "already already userStatus=Disabled" {
		t.Errorf("demo chat rows: %v", chat)
	}

	yaml, stop := startSandbox()
	if !strings.Contains(yaml.String(), "  chat:\n    vendor: http\n    base_url: ") || !strings.Contains(yaml.String(), "    spec: builtin:msgkart\n") {
		t.Errorf("the sandbox's chat target is not the msgkart spec:\n%s", yaml.String())
	}
	cfg := filepath.Join(dir, "targets.yaml")
	in := filepath.Join(dir, "ops.csv")
	if err := os.WriteFile(cfg, yaml.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, []byte("target,user,action\nchat,m-100,disable\nchat,m-102,disable\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var rout, rerr bytes.Buffer
	code := runMain([]string{"run", "-c", cfg, "-o", filepath.Join(dir, "r"), in}, strings.NewReader(""), &rout, &rerr)
	if err := stop(); err != nil {
		t.Errorf("sandbox: %v", err)
	}
	rows := rowsByUser(readCSV(t, filepath.Join(dir, "r", "report.csv")))
	if code != exitOK || rows["m-100"]["outcome"] != "applied" || rows["m-102"]["outcome"] != "already" {
		t.Errorf("run against the sandbox: exit %d, rows %v\n%s", code, rows, rerr.String())
	}
}
