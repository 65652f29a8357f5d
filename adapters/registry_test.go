package adapters

import (
	"slices"
	"strings"
	"testing"

	"github.com/userbatch/userbatch/adapters/declarative"
	"github.com/userbatch/userbatch/batch"
)

// fullSettings are complete settings for every vendor.
var fullSettings = Settings{BaseURL: "https://vendor.example.com/api", APIKey: "k", Token: "t",
	Extra: map[string]string{"app_id": "app", "email": "ops@example.com"}}

// TestRegistry: every vendor builds from complete settings, refuses missing
// credentials by name, and supports exactly the actions it lists.
func TestRegistry(t *testing.T) {
	full := fullSettings
	if !slices.IsSorted(Names()) || len(Names()) != len(Vendors) {
		t.Errorf("Names() = %v", Names())
	}
	kiiSpec, err := declarative.Open("builtin:kii")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Vendors {
		settings, actions := full, v.Actions
		if v.Name == HTTP { // what an http target can do is its spec's
			settings.Spec, actions = kiiSpec, kiiSpec.Actions()
		}
		a, err := New(v.Name, settings)
		if err != nil {
			t.Errorf("%s: %v", v.Name, err)
			continue
		}
		for _, act := range batch.Actions {
			if got, want := a.Supports(act), slices.Contains(actions, act); got != want {
				t.Errorf("%s: Supports(%s) = %v, the registry says %v", v.Name, act, got, want)
			}
		}
		if _, err := New(v.Name, Settings{BaseURL: full.BaseURL, Extra: map[string]string{}, Spec: settings.Spec}); err == nil ||
			!strings.Contains(err.Error(), "required") {
			t.Errorf("%s without credentials: %v", v.Name, err)
		}
		if _, ok := Lookup(v.Name); !ok {
			t.Errorf("Lookup(%s) failed", v.Name)
		}
	}
	if _, err := New("nosuch", full); err == nil {
		t.Errorf("an unknown vendor was built")
	}
}
