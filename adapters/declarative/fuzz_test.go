package declarative

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/userbatch/userbatch/batch"
)

// FuzzParse: no spec text panics the loader, and a spec it accepts builds
// an adapter that describes itself and refuses, without sending, an op it
// cannot express (base_url points nowhere that answers).
func FuzzParse(f *testing.F) {
	paths, _ := filepath.Glob("specs/*.yaml")
	paths = append(paths, "testdata/acme.yaml")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(minimal))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		spec.Describe()
		_ = spec.Reads()
		config := map[string]string{}
		for _, k := range spec.Keys() {
			config[k] = "v"
		}
		a, err := New(spec, Settings{BaseURL: "http://127.0.0.1:1/", Config: config})
		if err != nil {
			return
		}
		for _, act := range batch.Actions {
			if !a.Supports(act) {
				if _, err := a.Apply(context.Background(), batch.Op{User: "u", Action: act}); err == nil {
					t.Errorf("%s: an action the spec lacks was accepted", act)
				}
			}
		}
	})
}
