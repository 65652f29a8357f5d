package clearsquare

import (
	"net/http"
	"testing"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/batch"
)

func newHostile(t testing.TB, base string, client *http.Client, secret string) batch.Adapter {
	c, err := New(Config{BaseURL: base, Token: secret, Client: client})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// TestNeverSent: a toggle that provably never left is failed, not unknown.
func TestNeverSent(t *testing.T) {
	adaptertest.RunNeverSent(t, batch.Op{User: "u1", Action: batch.ToggleStatus}, newHostile)
}

// TestForeign: answers from a server that is not the vendor's count toward
// stopping the target, and are never taken for the vendor's own.
func TestForeign(t *testing.T) {
	adaptertest.RunForeign(t, batch.Op{User: "u1", Action: batch.ToggleStatus}, newHostile)
}

func TestSecretsInBodies(t *testing.T) {
	adaptertest.RunSecretsInBodies(t, batch.Op{User: "u1", Action: batch.ToggleStatus}, newHostile)
}
