package reports

import (
	"testing"
	"time"
)

// TestStampFormatsAsFinishedAt: the remembered finished_at is always the
// one finishedAt makes, whatever the order and zone of the times.
func TestStampFormatsAsFinishedAt(t *testing.T) {
	base := time.Date(2026, 11, 30, 15, 4, 5, 123_000_000, time.UTC)
	east := time.FixedZone("", 5*3600+1800)
	var s stamp
	for _, at := range []time.Time{
		{}, time.Unix(0, 0), time.Unix(0, 999_999), time.Unix(0, 1_000_000),
		base, base.Add(999_999), base.Add(time.Millisecond), base, base.In(east),
		base.Add(-1), {}, base.Add(-time.Hour), time.Unix(-1, 500_000_000),
	} {
		if got, want := s.format(at), finishedAt(at); got != want {
			t.Errorf("format(%v) = %q; want %q", at, got, want)
		}
	}
}
