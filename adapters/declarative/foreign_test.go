package declarative_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/userbatch/userbatch/adapters/declarative"
	"github.com/userbatch/userbatch/batch"
)

// foreignSpec is a vendor whose own answers are JSON with an errorCode, or
// labelled with its media types; each way a spec says "not the vendor's
// own" has a rule here, and the built-in rules end the list.
const foreignSpec = `vendor: ownish
config:
  token: {required: true, secret: true}
auth:
  headers: [{name: Authorization, value: "Bearer {config.token}"}]
envelope:
  pointers: [/errorCode]
  content_types: ["application/vnd.ownish.*"]
rules:
  - if: {status: 2xx, json: [{pointer: /ok, type: [bool]}]}
    then: applied
  - if: {status: 2xx}
    then: ambiguous
    code: bad_response
    not_vendor_api: true
  - if: {status: 400, body: html}
    then: not_vendor_api
  - if: {status: 404, envelope: false}
    then: not_vendor_api
  - if: {status: 404}
    then: not_found
  - if: {status: 409, json: [{pointer: /errorCode, type: [string]}]}
    then: already
actions:
  disable:
    idempotent: true
    request: {method: POST, path: "/users/{user}/disable"}
`

// TestNotTheVendorsAnswer: what a spec says is not its vendor's own answer
// ends bad_response marked batch.FaultForeign (three in a row stop the
// target), with the kind the rule gives; the vendor's own answers carry no
// fault. Envelope pointers and media types, body: html, json type and the
// built-in rules each decide one case.
func TestNotTheVendorsAnswer(t *testing.T) {
	spec, err := declarative.Parse("ownish.yaml", []byte(foreignSpec))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		status            int
		contentType, body string
		want              string
	}{
		{200, "application/json", `{"ok":true}`, "applied"},
		{200, "text/html", "<html>portal</html>", "ambiguous bad_response foreign"},
		{200, "application/json", `{"ok":"yes"}`, "ambiguous bad_response foreign"},
		{400, "text/html", "<p>plain HTTP sent to an HTTPS port</p>", "permanent bad_response foreign"},
		{400, "text/plain", "<html>unlabelled</html>", "permanent bad_response foreign"},
		{400, "application/json", `{"errorCode":"BAD"}`, "permanent bad_response none"},
		{404, "text/plain", "404 page not found", "permanent bad_response foreign"},
		{404, "application/json", `{"message":"no route"}`, "permanent bad_response foreign"},
		{404, "application/json", `{"errorCode":"NO_USER"}`, "permanent not_found none"},
		{404, "application/vnd.ownish.error+json", `{"message":"gone"}`, "permanent not_found none"},
		{409, "application/json", `{"errorCode":"SAME"}`, "already"},
		{409, "application/json", `{"errorCode":7}`, "permanent bad_response none"},
		{418, "text/html", "<html>teapot</html>", "permanent bad_response foreign"},
		{302, "", "", "permanent bad_response foreign"},
		{503, "text/html", "<html>down</html>", "ambiguous server_error none"},
	} {
		t.Run(fmt.Sprintf("%d %s %s", tc.status, tc.contentType, tc.body), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				}
				if tc.status/100 == 3 {
					w.Header().Set("Location", "/login")
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			a, err := declarative.New(spec, declarative.Settings{BaseURL: srv.URL + "/api", Config: map[string]string{"token": "tok-1"}})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := a.Apply(context.Background(), batch.Op{User: "u1", Action: batch.Disable})
			if got := verdict(rep, err); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func verdict(rep batch.Reply, err error) string {
	var berr *batch.Error
	switch {
	case err == nil && rep.Already:
		return "already"
	case err == nil:
		return "applied"
	case !errors.As(err, &berr):
		return "not a *batch.Error"
	}
	return fmt.Sprintf("%v %s %s", berr.Kind, berr.Code, faultName(berr.Fault))
}
