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
	if t, ok := zoneless(s, loc); ok {
		msg = fmt.Sprintf("effective_at %q is a date and time without a time zone (and RFC 3339 puts a T between them): "+
			"write %s for that time in %s, or give the date alone", s, t.Format(time.RFC3339), loc)
	} else if strings.ContainsAny(s, "/.") || isAllDigits(s) {
		msg += "; a spreadsheet may have reformatted it: format the column as Text, or as yyyy-mm-dd"
	}
	v.add(ColEffectiveAt, s, msg, fmt.Sprintf(
		"an RFC 3339 time like 2026-12-31T18:00:00+01:00 or 2026-12-31T18:00:00Z (UTC), or a date like 2026-12-31 (midnight in %s); blank means now", loc))
	return time.Time{}
}

// zonelessLayouts are how a spreadsheet or a person writes a date and time
// with no zone.
var zonelessLayouts = []string{"2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02T15:04:05"}

// zoneless reads s as a date and time with no zone, in loc, for the message
// that says how to write it. The row stays invalid: the zone is a guess.
func zoneless(s string, loc *time.Location) (time.Time, bool) {
	for _, layout := range zonelessLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func isAllDigits(s string) bool {
	return s != "" && digits(s, 0) == len(s)
}
