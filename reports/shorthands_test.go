package reports

import "github.com/userbatch/userbatch/batch"

// Create is CreateWith with the default Options: a shorthand only the
// tests use.
func Create(dir string, h batch.Header) (*Writer, error) {
	return CreateWith(dir, h, Options{})
}
