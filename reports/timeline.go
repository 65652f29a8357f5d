package reports

import "time"

// maxBuckets bounds the timeline: the chart has at most this many bars.
const maxBuckets = 120

// timeline counts rows by the second they finished, in at most maxBuckets
// buckets: a bucket spans width seconds (a power of two), and when the
// times seen no longer fit, width doubles and neighbours merge. Buckets are
// aligned on multiples of width since the Unix epoch, so merging is exact.
// Rows arrive in input order, not time order: the range grows both ways.
type timeline struct {
	width  int64   // seconds per bucket; 0 before the first row
	lo     int64   // absolute number (unix second / width) of counts[0]
	counts []int64 // rows per bucket
	rows   int64
}

func (tl *timeline) add(t time.Time) {
	sec := t.Unix()
	if tl.width == 0 {
		tl.width, tl.lo = 1, sec
		tl.counts = make([]int64, 1, maxBuckets)
	}
	for {
		b := floorDiv(sec, tl.width)
		lo := min(tl.lo, b)
		hi := max(tl.lo+int64(len(tl.counts))-1, b)
		if hi-lo < maxBuckets {
			tl.cover(lo, hi)
			tl.counts[b-tl.lo]++
			tl.rows++
			return
		}
		tl.coarsen()
	}
}

// cover grows counts to span the buckets lo to hi.
func (tl *timeline) cover(lo, hi int64) {
	if shift := tl.lo - lo; shift > 0 {
		tl.counts = append(tl.counts, make([]int64, shift)...)
		copy(tl.counts[shift:], tl.counts)
		clear(tl.counts[:shift])
		tl.lo = lo
	}
	if n := hi - tl.lo + 1; n > int64(len(tl.counts)) {
		tl.counts = append(tl.counts, make([]int64, n-int64(len(tl.counts)))...)
	}
}

// coarsen doubles the width, merging buckets in pairs.
func (tl *timeline) coarsen() {
	lo := floorDiv(tl.lo, 2)
	merged := make([]int64, 0, maxBuckets)
	for i, c := range tl.counts {
		j := floorDiv(tl.lo+int64(i), 2) - lo
		for int64(len(merged)) <= j {
			merged = append(merged, 0)
		}
		merged[j] += c
	}
	tl.width *= 2
	tl.lo = lo
	tl.counts = merged
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// bucket is one bar of the chart.
type bucket struct {
	Start time.Time
	Rows  int64
	Rate  float64 // rows per second over the bucket
}

func (tl *timeline) buckets() []bucket {
	out := make([]bucket, len(tl.counts))
	for i, c := range tl.counts {
		out[i] = bucket{
			Start: time.Unix((tl.lo+int64(i))*tl.width, 0).UTC(),
			Rows:  c,
			Rate:  float64(c) / float64(tl.width),
		}
	}
	return out
}
