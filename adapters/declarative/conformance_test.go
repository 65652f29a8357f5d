package declarative_test

import (
	"net/http"
	"testing"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/batch"
)

// TestConformance runs adapters/adaptertest, the suite every Go adapter
// passes, on each shipped spec against the same fake as its Go adapter.
func TestConformance(t *testing.T) {
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			adaptertest.Run(t, func(t *testing.T) *adaptertest.Fixture {
				w := v.newWorld()
				base := adaptertest.Serve(t, w.h)
				return &adaptertest.Fixture{
					Adapter:         v.specAdapter(t, base, nil, goodKey, goodToken),
					BadCredentials:  v.specAdapter(t, base, nil, badKey, badToken),
					Secrets:         secrets,
					Faults:          w.faults,
					AddUser:         w.add,
					State:           w.state,
					Writes:          w.writes,
					Cases:           v.cases,
					UnknownUserCode: v.unknownCode,
				}
			})
		})
	}
}

// hostile is the suite's constructor: secret is every credential.
func (v vendor) hostile(t testing.TB, base string, client *http.Client, secret string) batch.Adapter {
	return v.specAdapter(t, base, client, secret, secret)
}

// TestNeverSent: under every failure that proves nothing reached the
// vendor, a spec's error is not ambiguous, and a credential holding a
// newline never reaches a header.
func TestNeverSent(t *testing.T) {
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			op := v.cases[0].Op
			op.User = "u1"
			adaptertest.RunNeverSent(t, op, v.hostile)
		})
	}
}

// TestSecretsInBodies: no piece of a credential the vendor echoes reaches
// a message, wherever the cut falls.
func TestSecretsInBodies(t *testing.T) {
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			op := v.cases[0].Op
			op.User = "u1"
			if v.name == "epixel" {
				op = batch.Op{User: "u1", Action: batch.DowngradeRole, Role: "Customer"}
			}
			adaptertest.RunSecretsInBodies(t, op, v.hostile)
		})
	}
}
