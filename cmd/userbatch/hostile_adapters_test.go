package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/userbatch/userbatch/adapters/clearsquare/clearsquaretest"
	"github.com/userbatch/userbatch/adapters/epixel/epixeltest"
)

// TestEpixelCaptivePortalIsUnknown: something in front of epixel answers
// every request 200 with an HTML page. Nothing says the change was made, so
// the row is unknown (check by hand), never applied, and undo.csv offers
// nothing to reverse.
func TestEpixelCaptivePortalIsUnknown(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.fakes.epixel.AddUser("e-portal", epixeltest.User{Role: "Customer"})
	fakes := e.fakes.handler()
	var portal atomic.Int64
	e.serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, fakePrefixes["epixel"]+"/") {
			fakes.ServeHTTP(w, r)
			return
		}
		portal.Add(1)
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body>captive portal: please log in</body></html>")
	}))
	in := e.write("ops.csv", "target,user,action\nshop,e-portal,disable\n")
	out := filepath.Join(e.dir, "report")
	res := e.run("run", "-c", e.cfg, "-o", out, in)
	if res.code != exitIncomplete {
		t.Fatalf("exit %d, want %d\n%s", res.code, exitIncomplete, res.stderr)
	}
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	if len(rows) != 1 || rows[0]["outcome"] != "unknown" || rows[0]["error_code"] != "bad_response" ||
		!strings.Contains(rows[0]["message"], "captive portal") {
		t.Fatalf("report %v, want one unknown bad_response row quoting the page", rows)
	}
	if portal.Load() == 0 {
		t.Fatal("the portal saw no request")
	}
	if u, _ := e.fakes.epixel.User("e-portal"); u.Blocked || e.fakes.epixel.Requests() != 0 {
		t.Errorf("the vendor was reached: %+v, %d requests", u, e.fakes.epixel.Requests())
	}
	if undo := undoRows(t, out); len(undo) != 0 {
		t.Errorf("undo.csv offers %v for a change nobody confirmed", undo)
	}
}

// undoRows reads undo.csv, which may be absent when nothing was applied.
func undoRows(t *testing.T, dir string) []map[string]string {
	t.Helper()
	p := filepath.Join(dir, "undo.csv")
	if _, err := os.Stat(p); os.IsNotExist(err) {
		return nil
	}
	return readCSV(t, p)
}

// TestEpixelDowngradeAlreadyBlocks: an offboarding row (downgrade to
// Customer, block_user) for a user who already is a Customer ends applied,
// and the user is blocked at the vendor: epixel skips the block when the
// role is already right, so userbatch sends it itself.
func TestEpixelDowngradeAlreadyBlocks(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	e.fakes.epixel.AddUser("e-cust", epixeltest.User{Role: "Customer"})
	in := e.write("ops.csv", "target,user,action,role,block_user\nshop,e-cust,downgrade-role,Customer,yes\n")
	out := filepath.Join(e.dir, "report")
	res := e.run("run", "-c", e.cfg, "-o", out, in)
	if res.code != exitOK {
		t.Fatalf("exit %d, want %d\n%s", res.code, exitOK, res.stderr)
	}
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	if len(rows) != 1 || rows[0]["outcome"] != "applied" {
		t.Fatalf("report %v, want the row applied", rows)
	}
	if !strings.Contains(rows[0]["message"]+rows[0]["detail"], "role already right, user blocked") {
		t.Errorf("row %v does not say the role was already right and the user was blocked", rows[0])
	}
	if u, _ := e.fakes.epixel.User("e-cust"); !u.Blocked || u.Role != "Customer" {
		t.Errorf("epixel user %+v, want a blocked Customer", u)
	}
}

// TestClearsquareUntrustedCertificateFails: a toggle that never left because
// the vendor's certificate is not trusted is failed (safe to re-run once
// fixed), not unknown.
func TestClearsquareUntrustedCertificateFails(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	vendor := httptest.NewUnstartedServer(e.fakes.handler())
	vendor.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	vendor.StartTLS()
	defer vendor.Close()
	e.fakes.clearsquare.AddUser("c-1", clearsquaretest.User{Active: true})
	cfg := e.write("tls.yaml", clearsquareTarget(vendor.URL+fakePrefixes["clearsquare"], e.fakes.creds.clearsquareToken))
	in := e.write("ops.csv", "target,user,action\nadmin,c-1,toggle-status\n")
	out := filepath.Join(e.dir, "report")
	res := e.run("run", "-c", cfg, "-o", out, in)
	if res.code != exitIncomplete {
		t.Fatalf("exit %d, want %d\n%s", res.code, exitIncomplete, res.stderr)
	}
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	if len(rows) != 1 || rows[0]["outcome"] != "failed" || rows[0]["error_code"] != "tls" {
		t.Fatalf("report %v, want the toggle failed with error_code tls", rows)
	}
	if n := e.fakes.clearsquare.Requests(); n != 0 {
		t.Errorf("the vendor saw %d requests", n)
	}
}

// TestClearsquareProxyRefusesConnectFails runs the binary behind a proxy (on
// loopback) that answers every CONNECT with 502: nothing reached the vendor,
// so the toggles end failed, never unknown. It runs the built binary rather
// than runMain because net/http reads HTTPS_PROXY once per process. The
// vendor's host name is only ever sent to the proxy, never resolved.
func TestClearsquareProxyRefusesConnectFails(t *testing.T) {
	t.Parallel()
	e := newE2E(t)
	var connects atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			connects.Add(1)
		}
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer proxy.Close()
	cfg := e.write("proxied.yaml", clearsquareTarget("https://admin.clearsquare.example", e.fakes.creds.clearsquareToken))
	in := e.write("ops.csv", "target,user,action\nadmin,c-1,toggle-status\nadmin,c-2,toggle-status\n")
	out := filepath.Join(e.dir, "report")
	cmd := exec.Command(binPath, "run", "-c", cfg, "-o", out, in)
	cmd.Env = append(withoutProxyEnv(os.Environ()), "HTTPS_PROXY="+proxy.URL, "NO_PROXY=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitIncomplete {
		t.Fatalf("exit %v, want %d\n%s", err, exitIncomplete, stderr.String())
	}
	rows := readCSV(t, filepath.Join(out, "report.csv"))
	if len(rows) != 2 {
		t.Fatalf("report has %d rows, want 2", len(rows))
	}
	for _, r := range rows {
		if r["outcome"] != "failed" || r["error_code"] != "network" {
			t.Errorf("%s: %s/%s (%s), want failed/network", r["user"], r["outcome"], r["error_code"], r["message"])
		}
	}
	if connects.Load() == 0 {
		t.Error("the proxy saw no CONNECT: the run did not go through it")
	}
}

// clearsquareTarget is a targets.yaml with one clearsquare target, "admin".
func clearsquareTarget(base, token string) string {
	return fmt.Sprintf("targets:\n  admin:\n    vendor: clearsquare\n    base_url: %s\n    token: %s\n"+
		"    rate: 1000\n    burst: 4\n    concurrency: 4\n    timeout: 10s\n", base, token)
}

// withoutProxyEnv drops the proxy settings the test process may have.
func withoutProxyEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY":
			continue
		}
		out = append(out, kv)
	}
	return out
}
