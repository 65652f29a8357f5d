package batch

import (
	"fmt"
	"strings"
	"time"
)

// effectiveAt reads an effective_at cell: an RFC 3339 time, or a date that
// means midnight in loc. Blank means now, the zero time. The result is UTC,
// so that the same instant written in two zones is the same op.
func (v *validator) effectiveAt(s string, loc *time.Location) time.Time {
	if s == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC()
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t.UTC()
	}
	msg := fmt.Sprintf("effective_at %q is not a date (YYYY-MM-DD) or an RFC 3339 time", s)
	if strings.ContainsAny(s, "/.") || isAllDigits(s) {
		msg += "; a spreadsheet may have reformatted it: format the column as Text, or as yyyy-mm-dd"
	}
	v.add(ColEffectiveAt, s, msg, fmt.Sprintf(
		"a date such as 2026-12-31, meaning midnight in %s, or a time such as 2026-12-31T18:00:00Z or 2026-12-31T18:00:00+01:00; blank means now", loc))
	return time.Time{}
}

func isAllDigits(s string) bool {
	return s != "" && digits(s, 0) == len(s)
}
