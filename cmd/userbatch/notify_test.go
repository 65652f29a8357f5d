package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters/kii/kiitest"
)

// TestWebhookNamesTheReportByAbsolutePathAndHost: run from a directory with
// a relative -o, the webhook's text names the report by its absolute path
// and the host it is on: a person reading the chat channel can find it.
func TestWebhookNamesTheReportByAbsolutePathAndHost(t *testing.T) {
	t.Parallel()
	bodies := make(chan []byte, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))
	t.Cleanup(hook.Close)
	e := newE2E(t)
	e.fakes.kii.AddUser("k-1", kiitest.User{})
	cfg := e.write("t.yaml", e.baseYAML()+"notify:\n  webhook: "+hook.URL+"/hook\n")
	e.write("ops.csv", opsCSV("apps,k-1,disable"))
	p := &process{cmd: exec.Command(binPath, "run", "-c", cfg, "-o", "out", "ops.csv")}
	p.cmd.Dir, p.cmd.Stdout, p.cmd.Stderr = e.dir, &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(); code != exitOK {
		t.Fatalf("exit %d, want 0\n%s", code, p.stderr.String())
	}
	var got struct {
		Text string `json:"text"`
	}
	select {
	case b := <-bodies:
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("the POST is not JSON: %v\n%s", err, b)
		}
	default:
		t.Fatal("no POST reached the webhook by the end of the run")
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	want := "report: " + filepath.Join(e.dir, "out") + " on host " + host
	if !strings.HasSuffix(got.Text, want) {
		t.Errorf("the webhook text is %q; want it to end %q", got.Text, want)
	}
}
