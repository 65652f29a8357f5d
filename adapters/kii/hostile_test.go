package kii

import (
	"net/http"
	"testing"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/batch"
)

func newHostile(t testing.TB, base string, client *http.Client, secret string) batch.Adapter {
	c, err := New(Config{BaseURL: base, AppID: appID, Token: secret, Client: client})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestNeverSent(t *testing.T) {
	adaptertest.RunNeverSent(t, batch.Op{User: "u1", Action: batch.Disable}, newHostile)
}

// TestForeign: answers from a server that is not the vendor's count toward
// stopping the target, and are never taken for the vendor's own.
func TestForeign(t *testing.T) {
	adaptertest.RunForeign(t, batch.Op{User: "u1", Action: batch.Disable}, newHostile)
}

func TestSecretsInBodies(t *testing.T) {
	adaptertest.RunSecretsInBodies(t, batch.Op{User: "u1", Action: batch.Disable}, newHostile)
}
