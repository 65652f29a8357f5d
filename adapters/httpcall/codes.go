package httpcall

// Error codes for failures that prove nothing reached the vendor, beside
// batch's own codes. They end up in report.csv's error_code column.
const (
	// CodeTLS: the TLS handshake with the vendor (or the proxy) failed, or
	// its certificate is not trusted. Permanent: a retry meets the same
	// certificate.
	CodeTLS = "tls"
	// CodeRequest: the request could not be built or sent as built (a
	// credential holding a newline, a URL that is not http or https).
	// Permanent: it would fail the same way again.
	CodeRequest = "request"
)
