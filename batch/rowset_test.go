package batch

import (
	"slices"
	"testing"
)

func TestRowSet(t *testing.T) {
	var s RowSet
	for _, i := range []int{0, 63, 64, 1000, 5} {
		s.Put(i, true)
	}
	s.Put(63, false)
	s.Put(100000, false) // removing what was never added is no change
	var got []int
	s.Each(func(i int) { got = append(got, i) })
	if want := []int{0, 5, 64, 1000}; !slices.Equal(got, want) {
		t.Errorf("Each: %v, want %v", got, want)
	}
	for i, want := range map[int]bool{0: true, 5: true, 63: false, 64: true, 1000: true, 1001: false, 100000: false} {
		if s.Has(i) != want {
			t.Errorf("Has(%d) = %v, want %v", i, !want, want)
		}
	}
}
