package declarative

import (
	"embed"
	"fmt"
	"strings"
)

// shipped holds the specs shipped in specs/: the four seed vendors.
//
//go:embed specs/*.yaml
var shipped embed.FS

// BuiltinPrefix names a shipped spec in a target's spec key: builtin:msgkart.
const BuiltinPrefix = "builtin:"

// Builtins lists the shipped specs' names.
func Builtins() []string {
	entries, _ := shipped.ReadDir("specs")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	return out
}

// Open loads a spec: builtin:NAME for a shipped one, else a file path.
func Open(ref string) (*Spec, error) {
	name, ok := strings.CutPrefix(ref, BuiltinPrefix)
	if !ok {
		return Load(ref)
	}
	data, err := shipped.ReadFile("specs/" + name + ".yaml")
	if err != nil || strings.ContainsAny(name, "/\\") {
		return nil, fmt.Errorf("no built-in spec %q (built in: %s)", name, strings.Join(Builtins(), ", "))
	}
	s, err := Parse(ref, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return s, nil
}
