package declarative_test

import (
	"net/http"
	"testing"

	"github.com/userbatch/userbatch/adapters/adaptertest"
	"github.com/userbatch/userbatch/batch"
)

// TestConformance runs adapters/adaptertest, the suite every Go adapter
// passes, on each shipped spec as the http vendor, against the same fake
// and with the same hostile ops as its Go adapter.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel() // each vendor's suite has fakes of its own
			adaptertest.Run(t, adaptertest.Fixture{
				Vendor: "http",
				New:    v.hostile,
				Ops:    v.suiteOps,
				Fake: func(t *testing.T) *adaptertest.Fake {
					w := v.newWorld()
					base := adaptertest.Serve(t, w.h)
					return &adaptertest.Fake{
						Adapter:        v.specAdapter(t, base, nil, goodKey, goodToken),
						BadCredentials: v.specAdapter(t, base, nil, badKey, badToken),
						Secrets:        secrets,
						Faults:         w.faults,
						AddUser:        w.add,
						State:          w.state,
						Writes:         w.writes,
					}
				},
				Cases:           v.cases,
				UnknownUserCode: v.unknownCode,
			})
		})
	}
}

// hostile is the suite's constructor: secret is every credential.
func (v vendor) hostile(t testing.TB, base string, client *http.Client, secret string) batch.Adapter {
	return v.specAdapter(t, base, client, secret, secret)
}
