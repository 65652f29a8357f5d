package epixel

import "testing"

// TestSuccessFastPathAgreesWithDecoding: the documented answer, taken
// without decoding, and every other body are judged as decoding judges them.
func TestSuccessFastPathAgreesWithDecoding(t *testing.T) {
	for _, body := range []string{
		`{"status_code":200,"errors":{},"data":{}}`, "{\"status_code\":200,\"errors\":{},\"data\":{}}\n",
		` {"status_code":200,"errors":{},"data":{}} `, `{"status_code": 200, "errors": {}, "data": {}}`,
		`{"status_code":200,"errors":{},"data":{}}x`, `{"status_code":200,"errors":{},"data":{}`,
		`{"status_code":400,"errors":{},"data":{}}`, `{"status_code":200,"errors":{"detail":"x"},"data":{}}`,
		`{"status_code":201,"errors":[]}`, `{"status_code":"200"}`, `null`, ``,
	} {
		if got, want := successEnvelope([]byte(body)), decodedSuccess([]byte(body)); got != want {
			t.Errorf("successEnvelope(%q) = %v, decoding says %v", body, got, want)
		}
	}
	if !successEnvelope(documentedSuccess) {
		t.Error("the documented success answer is not taken as success")
	}
}
