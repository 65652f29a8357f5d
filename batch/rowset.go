package batch

import "math/bits"

// RowSet is a set of row indexes, a bit a row: 125 KB for a million rows.
// The zero value is empty and ready to use.
type RowSet struct{ words []uint64 }

// Put adds row i to the set, or removes it.
func (s *RowSet) Put(i int, in bool) {
	w := i / 64
	if in && w >= len(s.words) {
		s.words = append(s.words, make([]uint64, w-len(s.words)+1)...)
	}
	switch {
	case in:
		s.words[w] |= 1 << (i % 64)
	case w < len(s.words):
		s.words[w] &^= 1 << (i % 64)
	}
}

// Has reports whether row i is in the set.
func (s *RowSet) Has(i int) bool {
	w := i / 64
	return w < len(s.words) && s.words[w]&(1<<(i%64)) != 0
}

// Each calls fn for every row in the set, in order.
func (s *RowSet) Each(fn func(int)) {
	for w, word := range s.words {
		for word != 0 {
			fn(w*64 + bits.TrailingZeros64(word))
			word &= word - 1
		}
	}
}
