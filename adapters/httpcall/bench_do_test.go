package httpcall

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkDo measures one request through Do on loopback, connection
// tracing included, against the bare client call.
func BenchmarkDo(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	client := srv.Client()
	b.Run("Do", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/x", nil)
			req.Header.Set("Authorization", "Bearer abcdef0123456789")
			if _, _, err := Do(client, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("client.Do", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/x", nil)
			req.Header.Set("Authorization", "Bearer abcdef0123456789")
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
		}
	})
}
