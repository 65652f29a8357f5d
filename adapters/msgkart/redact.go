package msgkart

import (
	"errors"

	"github.com/userbatch/userbatch/adapters/httpcall"
	"github.com/userbatch/userbatch/batch"
)

// redact removes the API key, as sent and as escaped in a query or a path,
// from text that came from the vendor or the transport. The key travels in
// the URL, so a server or proxy that echoes the request (a 400 quoting the
// query, an HTML error page) would otherwise put it in the report.
func (c *Client) redact(s string) string { return httpcall.Redact(s, c.apiKey) }

// scrub returns err with the API key removed from its message and from the
// error it wraps. Anything that is not a *batch.Error becomes one (Ambiguous
// network), so the Adapter contract holds.
func (c *Client) scrub(err error) error {
	var berr *batch.Error
	if !errors.As(err, &berr) {
		return &batch.Error{Kind: batch.Ambiguous, Code: batch.CodeNetwork, Message: c.redact(err.Error())}
	}
	out := *berr
	out.Message = c.redact(out.Message)
	if out.Err != nil {
		// The wrapped error is kept (for errors.Is) only when it is clean.
		if text := out.Err.Error(); c.redact(text) != text {
			out.Err = errors.New(c.redact(text))
		}
	}
	return &out
}
