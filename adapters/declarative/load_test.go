package declarative

import (
	"strings"
	"testing"
)

func TestBuiltinsLoad(t *testing.T) {
	for _, name := range Builtins() {
		if _, err := Open(BuiltinPrefix + name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := strings.Join(Builtins(), ","); got != "clearsquare,epixel,kii,msgkart" {
		t.Errorf("built in: %s", got)
	}
	if _, err := Open(BuiltinPrefix + "../specs/kii"); err == nil {
		t.Error("a built-in name with a path was accepted")
	}
}

// minimal is a spec that loads; each case below breaks one line of it.
const minimal = `vendor: acme
config:
  token: {required: true}
actions:
  disable:
    idempotent: true
    request:
      method: POST
      path: /users/{user}/disable
`

// TestLoadErrors: a spec that fails to load is refused with the line and
// column of what is wrong, and what is accepted.
func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name, spec, want string
	}{
		{"unknown top key", minimal + "colour: red\n", `line 10, column 1: unknown key "colour" (accepted: actions, auth,`},
		{"unknown nested key", strings.Replace(minimal, "method: POST", "methd: POST", 1), `line 8, column 7: unknown key "methd" under request (accepted: accept, content_type, encoding, form, headers, json, method, path, query, rules)`},
		{"unknown action", strings.Replace(minimal, "disable:", "nuke:", 1), `line 5, column 3: unknown action "nuke" (accepted: disable, enable,`},
		{"alias action", strings.Replace(minimal, "disable:", "block:", 1), `line 5, column 3: unknown action "block"`},
		{"not a bool", strings.Replace(minimal, "idempotent: true", "idempotent: maybe", 1), "line 6, column 17: cannot unmarshal !!str `maybe` into bool"},
		{"idempotent unsaid", strings.Replace(minimal, "    idempotent: true\n", "", 1), "line 6, column 5: action disable: say idempotent: true or false"},
		{"path with ..", strings.Replace(minimal, "/users/{user}/disable", "/users/../{user}", 1), `line 9, column 13: path "/users/../{user}" holds a ".." segment`},
		{"path with query", strings.Replace(minimal, "/users/{user}/disable", "/users/{user}?admin=1", 1), `line 9, column 13: path "/users/{user}?admin=1" holds one of ?`},
		{"path not below base", strings.Replace(minimal, "/users/{user}/disable", "https://evil.example/{user}", 1), "line 9, column 13: path must start with a single /"},
		{"scheme-relative path", strings.Replace(minimal, "/users/{user}/disable", "//evil.example/{user}", 1), "line 9, column 13: path must start with a single /"},
		{"placeholder in a segment", strings.Replace(minimal, "/users/{user}/disable", "/users/id-{user}", 1), "must be a whole segment"},
		{"undeclared key", strings.Replace(minimal, "/users/{user}/disable", "/users/{config.app}/{user}", 1), "line 9, column 13: {config.app}: app is not a key under config"},
		{"undeclared column", strings.Replace(minimal, "/users/{user}/disable", "/users/{user}/{role}", 1), "line 9, column 13: {role}: declare the column under columns"},
		{"bad placeholder", strings.Replace(minimal, "/users/{user}/disable", "/users/{user.name}", 1), "line 9, column 13: placeholder {user.name} is not"},
		{"bad method", strings.Replace(minimal, "method: POST", "method: TRACE", 1), `line 8, column 7: method "TRACE"`},
		{"bad status", minimal + "rules:\n  - if: {status: 7xx}\n    then: applied\n", `line 11, column 18: status "7xx" is not a status`},
		{"bad then", minimal + "rules:\n  - if: {status: 404}\n    then: gone\n", `line 11, column 5: then "gone" (accepted: applied, already, not_found,`},
		{"bad code", minimal + "rules:\n  - if: {status: 404}\n    then: permanent\n    code: nope\n", `line 11, column 5: code "nope"`},
		{"bad regexp", minimal + "rules:\n  - if: {message: '(unclosed'}\n    then: permanent\n", "line 11, column 19: not a regular expression"},
		{"capture without group", minimal + "rules:\n  - if: {message: 'x', captures: {role: role}}\n    then: already\n", "line 11, column 19: the pattern has no group (?P<role>...)"},
		{"bad pointer", minimal + "envelope: [errorCode]\n", `line 10, column 12: "errorCode" is not a JSON pointer`},
		{"unknown column", minimal + "columns:\n  - {name: colour}\n", `line 11, column 5: column "colour" is not one a spec can read`},
		{"no actions", "vendor: acme\n", "actions: describe at least one of"},
		{"no vendor", strings.Replace(minimal, "vendor: acme\n", "", 1), "vendor is required"},
		{"alias", minimal + "summary: &s x\nauth: {headers: [{name: X, value: *s}]}\n", "line 11, column 35: YAML aliases are not accepted"},
		{"not yaml", "vendor: [\n", "not valid YAML"},
		{"read without disable", minimal + "read:\n  request: {method: GET, path: '/u/{user}'}\n  value: /d\n  type: bool\n  in_state: {enable: {equals: [x]}}\n", "line 11, column 3: read: in_state must say what disable reads as"},
		{"header name", minimal + "auth: {headers: [{name: 'X Bad', value: x}]}\n", `line 10, column 18: name "X Bad" is not a valid header name`},
		{"not_vendor_api on a success", minimal + "rules:\n  - if: {status: 2xx}\n    then: applied\n    not_vendor_api: true\n", "line 11, column 5: not_vendor_api: true is for then: permanent or ambiguous"},
		{"not_vendor_api code is bad_response", minimal + "rules:\n  - if: {status: 404}\n    then: not_vendor_api\n    code: not_vendor_api\n", `line 11, column 5: code "not_vendor_api"`},
		{"bad json type", minimal + "rules:\n  - if: {json: [{pointer: /e, type: [map]}]}\n    then: permanent\n", `line 11, column 17: type "map" (accepted: object, array, string, number, bool, null)`},
		{"bad envelope media", minimal + "envelope: {content_types: ['text/html; q=1']}\n", `line 10, column 11: envelope: content type "text/html; q=1"`},
		{"unknown envelope key", minimal + "envelope: {pointer: [/e]}\n", `line 10, column 12: unknown key "pointer" under envelope (accepted: content_types, pointers)`},
		{"bad body", minimal + "rules:\n  - if: {body: xml}\n    then: permanent\n", `line 11, column 5: body "xml" (accepted: json, not_json, empty, not_empty, html)`},
		{"message placeholder", minimal + "rules:\n  - if: {status: 404}\n    then: permanent\n    message: '{token}'\n", "line 11, column 5: message: {token} (accepted: {message}, {body}, {status}, {content_type})"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tc.spec))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := Parse("test.yaml", []byte(minimal)); err != nil {
		t.Fatalf("the minimal spec: %v", err)
	}
}
