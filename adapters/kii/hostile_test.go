package kii

import (
	"net/http"
	"testing"

	"github.com/userbatch/userbatch/batch"
)

func newHostile(t testing.TB, base string, client *http.Client, secret string) batch.Adapter {
	c, err := New(Config{BaseURL: base, AppID: appID, Token: secret, Client: client})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}
