package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters/declarative"
	"github.com/userbatch/userbatch/batch"
)

// writeFiles writes name → content under a new directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func kiiSpecText(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../../../adapters/declarative/specs/kii.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHTTPTarget: vendor http with spec: PATH loads the spec relative to
// targets.yaml, accepts the keys it declares and no others, and gives
// validation its actions, identity and columns.
func TestHTTPTarget(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"vendors/kii.yaml": kiiSpecText(t),
		"targets.yaml": `targets:
  apps:
    vendor: http
    spec: vendors/kii.yaml
    base_url: https://api.kii.com
    app_id: app-1
    token: ${KII_TOKEN}
  chat:
    vendor: http
    spec: builtin:msgkart
    base_url: https://alb-backend.msgkart.com
    apikey: k
`})
	t.Setenv("KII_TOKEN", "tok")
	cfg, err := Load(filepath.Join(dir, "targets.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	apps := cfg.Targets["apps"]
	if apps.Spec == nil || apps.Spec.Vendor() != "kii" || apps.Extra["app_id"] != "app-1" || apps.SpecRef() != filepath.Join(dir, "vendors/kii.yaml") {
		t.Fatalf("apps: %+v", apps)
	}
	rt, err := apps.Runtime(nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rt.Adapter.(*declarative.Reader); !ok || !rt.Adapter.Supports(batch.Disable) || rt.Adapter.Supports(batch.ToggleStatus) {
		t.Errorf("apps adapter: %T", rt.Adapter)
	}
	infos := cfg.Infos()
	if info := infos["apps"]; info.Vendor != "kii" || len(info.Actions) != 2 || info.Identity.Key("LOGIN_NAME:Leo") != "leo" {
		t.Errorf("apps info: %+v", info)
	}
	// msgkart's spec needs an email, from the row or the target.
	p := infos["chat"].Check(batch.Op{Line: 7, User: "m1", Action: batch.Disable})
	if len(p) != 1 || p[0].Column != "email" || !strings.Contains(p[0].Msg, "target chat has no email") {
		t.Errorf("chat problems: %+v", p)
	}
	if p := infos["chat"].Check(batch.Op{User: "m1", Action: batch.Disable, Email: "a@b.c"}); len(p) != 0 {
		t.Errorf("chat problems with an email: %+v", p)
	}
	// A changed spec changes the fingerprint.
	before := cfg.Fingerprint()
	if err := os.WriteFile(filepath.Join(dir, "vendors/kii.yaml"), []byte(kiiSpecText(t)+"\n# edited\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := Load(filepath.Join(dir, "targets.yaml"))
	if err != nil || again.Fingerprint() == before {
		t.Errorf("fingerprint unchanged by an edited spec (%v)", err)
	}
}

func TestHTTPTargetErrors(t *testing.T) {
	for _, tc := range []struct {
		name, target, spec, want string
	}{
		{"no spec", "    vendor: http\n    base_url: https://x.example\n", "", "line 3: target t: vendor http needs spec:"},
		{"missing file", "    vendor: http\n    spec: nope.yaml\n    base_url: https://x.example\n", "", "line 4: target t: spec: reading the spec:"},
		{"spec fails to load", "    vendor: http\n    spec: s.yaml\n    base_url: https://x.example\n",
			"vendor: x\nactions:\n  disable:\n    idempotent: true\n    request: {method: POST, path: /a/../b}\n",
			"line 4: target t: spec: " + "SPEC" + ": line 5, column 35: path \"/a/../b\" holds a \"..\" segment"},
		{"key the spec does not declare", "    vendor: http\n    spec: builtin:kii\n    base_url: https://x.example\n    email: a@b.c\n", "",
			`line 6: target t: vendor http does not use email: remove it (a http target takes: vendor, base_url, token, rate,`},
		{"credential the spec does not read", "    vendor: http\n    spec: builtin:kii\n    base_url: https://x.example\n    apikey: k\n", "",
			`line 6: target t: vendor http does not use apikey: remove it (a http target takes: vendor, base_url, token, rate,`},
		{"spec key shadows a common key", "    vendor: http\n    spec: s.yaml\n    base_url: https://x.example\n",
			"vendor: x\nconfig: {rate: {}}\nactions:\n  disable:\n    idempotent: true\n    request: {method: POST, path: /a}\n",
			"config key rate is a key every target has"},
		{"unknown key elsewhere still refused", "    vendor: kii\n    tenant: x\n", "", `line 4: target t: unknown key "tenant"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"targets.yaml": "targets:\n  t:\n" + tc.target}
			if tc.spec != "" {
				files["s.yaml"] = tc.spec
			}
			dir := writeFiles(t, files)
			_, err := Load(filepath.Join(dir, "targets.yaml"))
			want := strings.ReplaceAll(tc.want, "SPEC", filepath.Join(dir, "s.yaml"))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v, want %q", err, want)
			}
		})
	}
}

// TestHTTPTargetMissingCredential: a key the spec requires is refused at
// start, by name.
func TestHTTPTargetMissingCredential(t *testing.T) {
	cfg, err := Parse([]byte("targets:\n  t:\n    vendor: http\n    spec: builtin:kii\n    base_url: https://x.example\n    token: t\n"), envLookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Runtime(nil, 1); err == nil || !strings.Contains(err.Error(), "kii: app_id is required (the Kii application id)") {
		t.Errorf("Runtime: %v", err)
	}
}
