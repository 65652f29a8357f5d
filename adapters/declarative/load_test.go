package declarative

import "testing"

func TestBuiltinsLoad(t *testing.T) {
	for _, name := range Builtins() {
		if _, err := Open(BuiltinPrefix + name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(Builtins()) != 4 {
		t.Errorf("built in: %v", Builtins())
	}
}
