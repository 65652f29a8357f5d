package reports

import (
	"math"
	"math/bits"
	"time"
)

// histogram records durations in nanoseconds in a fixed number of buckets,
// the way HdrHistogram does: values below 256 ns exactly, larger ones in
// buckets whose width is 1/128 to 1/256 of their value (128 per power of two).
// A bucket is reported by its midpoint, so a percentile is off by at most
// 1/256 (0.4%). It holds 7,424 counters whatever the number of rows.
type histogram struct {
	counts   [histBuckets]uint64
	n        uint64
	min, max uint64
}

const (
	subBits  = 7
	subCount = 1 << subBits // buckets per power of two
	// exact is the first value not counted exactly.
	exact = 2 * subCount
	// histBuckets covers every uint64: shifts 1 to 56 after the exact range.
	histBuckets = exact + (64-subBits-1)*subCount
)

func (h *histogram) add(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	h.max = max(h.max, v)
	h.n++
}

// bucketOf returns the bucket holding v: v itself below exact; above, the
// top subBits+1 bits of v pick one of subCount buckets for v's power of two.
func bucketOf(v uint64) int {
	if v < exact {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1) // at least 1
	top := v >> shift                      // in [subCount, 2*subCount)
	return exact + (shift-1)*subCount + int(top-subCount)
}

// bucketMid returns the middle of bucket i's range of values.
func bucketMid(i int) uint64 {
	if i < exact {
		return uint64(i)
	}
	j := i - exact
	shift := j/subCount + 1
	low := uint64(j%subCount+subCount) << shift
	return low + (uint64(1)<<shift-1)/2
}

// quantile returns the value at rank ceil(q·n) (nearest rank), 0 when empty.
// It never reports beyond the smallest and largest values seen.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(max(bucketMid(i), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
