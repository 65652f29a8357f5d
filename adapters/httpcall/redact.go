package httpcall

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// Redacted replaces a secret wherever vendor text quoted one.
const Redacted = "[redacted]"

// SnippetLen is the most characters of vendor text a message carries.
const SnippetLen = 200

// Redact replaces every occurrence of each non-empty secret in s, as sent
// and as escaped in a query or a path, with Redacted.
func Redact(s string, secrets ...string) string {
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		s = strings.ReplaceAll(s, secret, Redacted)
		if q := url.QueryEscape(secret); q != secret {
			s = strings.ReplaceAll(s, q, Redacted)
		}
		if p := url.PathEscape(secret); p != secret {
			s = strings.ReplaceAll(s, p, Redacted)
		}
	}
	return s
}

// SafeSnippet is the one way vendor text reaches a message: it redacts every
// secret in the whole body first, then makes it one line and cuts it to
// SnippetLen characters, so that a secret straddling the cut cannot leave a
// fragment behind. A blank body reads "(empty body)".
func SafeSnippet(body []byte, secrets ...string) string {
	if s := SafeMessage(string(body), secrets...); s != "" {
		return s
	}
	return "(empty body)"
}

// SafeMessage is SafeSnippet for a message the vendor sent (a JSON field):
// redacted whole, one line, at most SnippetLen characters; "" when blank.
func SafeMessage(s string, secrets ...string) string {
	s = strings.Join(strings.Fields(Redact(s, secrets...)), " ")
	return cut(s, SnippetLen)
}

// cut keeps the first n characters of s, never splitting one.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i, count := 0, 0
	for i < len(s) && count < n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		count++
	}
	if i >= len(s) {
		return s
	}
	return s[:i] + "…"
}
