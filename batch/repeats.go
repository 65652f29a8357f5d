package batch

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"slices"
)

// Repeats are the rows of a file that meet another row of the same user:
// same target, same user by identity (Identity.Key), same effective_at, and
// both changing the user's status (disable, enable, toggle-status) or both
// its role (upgrade-role, downgrade-role). Such a row is either an exact
// repeat of the group's first row (Op.DuplicateOf: never sent), or the
// group contradicts itself and every row of it is invalid, "conflicts with
// line N" (README "The operations CSV"). A Parser given Repeats marks its
// rows so; FindRepeats finds them over the whole file, so that a shard of
// it sees the conflicts of every row.
//
// The cost is 4 bytes a valid row while they are found (a fingerprint of
// each row's group), then 24 bytes for each group of rows that meet, kept
// in one sorted array (README "Performance"). A group is known by a 64-bit
// hash: two groups would have to share all 64 bits to be taken for one.
type Repeats struct {
	seed maphash.Seed
	// groups are sorted by fingerprint (hash >> 24), one for each
	// fingerprint that two or more rows share.
	groups []repeatGroup
	// extra holds the groups whose fingerprint another group took first.
	extra map[uint64]*repeatGroup
}

// repeatGroup is one group of rows: the first one and what it asks, and
// the first row that contradicts it. Lines past 2^32 are not expected.
type repeatGroup struct {
	h     uint64 // the group's hash; before its first row, the fingerprint << 24
	first uint32 // the first row's line; 0: none seen yet
	other uint32 // the first row contradicting the first; 0: none
	code  uint64 // what the first row asks (repeatCode)
}

// FindRepeats reads the file through parsers open returns: once to find
// the groups that may hold more than one row, by a 40-bit fingerprint of
// their hash, and, only when there are such groups, once more to learn
// their rows. The parsers must read the same file, with no Repeats. It also
// passes every row of its first pass, valid or not, in order, to seen (nil:
// none); the rows have no Record. When the Repeats it returns are None,
// those rows are exactly what a parser given them would return: a caller
// that only needs the rows' ops and problems has read the file once.
func FindRepeats(open func() (*Parser, error), seen func(Row)) (*Repeats, error) {
	r := &Repeats{seed: maphash.MakeSeed()}
	groups, err := r.sharedPrints(open, seen)
	if err != nil || len(groups) == 0 {
		return r, err
	}
	r.groups, r.extra = groups, map[uint64]*repeatGroup{}
	err = eachValid(open, nil, func(op *Op) { r.add(r.hash(op), op) })
	return r, err
}

// None reports whether no two rows meet: a parser given r marks no row.
func (r *Repeats) None() bool { return r == nil || len(r.groups) == 0 }

// sharedPrints returns a group for each fingerprint (a hash's top 40 bits)
// two or more valid rows share, sorted. The fingerprints are kept in 256
// buckets by their top byte, the other 32 bits in each bucket's list of
// small chunks, and each bucket is sorted on its own: 4 bytes a row, no
// table over the whole file, and no copies left behind while it grows.
func (r *Repeats) sharedPrints(open func() (*Parser, error), seen func(Row)) ([]repeatGroup, error) {
	var buckets [256][][]uint32
	err := eachValid(open, seen, func(op *Op) {
		h := r.hash(op)
		b := &buckets[h>>56]
		if n := len(*b); n == 0 || len((*b)[n-1]) == printChunk {
			*b = append(*b, make([]uint32, 0, printChunk))
		}
		last := &(*b)[len(*b)-1]
		*last = append(*last, uint32(h>>24))
	})
	if err != nil {
		return nil, err
	}
	var shared [256][]uint32
	var sorted []uint32
	n := 0
	for top := range buckets {
		sorted = sorted[:0]
		for _, c := range buckets[top] {
			sorted = append(sorted, c...)
		}
		buckets[top] = nil
		slices.Sort(sorted)
		for j := 1; j < len(sorted); j++ {
			if sorted[j] == sorted[j-1] && (j == 1 || sorted[j] != sorted[j-2]) {
				shared[top] = append(shared[top], sorted[j])
			}
		}
		n += len(shared[top])
	}
	groups := make([]repeatGroup, 0, n)
	for top := range shared {
		for _, low := range shared[top] {
			groups = append(groups, repeatGroup{h: (uint64(top)<<32 | uint64(low)) << 24})
		}
		shared[top] = nil
	}
	return groups, nil
}

// printChunk is how many fingerprints a bucket's chunk holds (4 KiB).
const printChunk = 1024

// find returns the group whose fingerprint h has, or nil.
func (r *Repeats) find(h uint64) *repeatGroup {
	i, ok := slices.BinarySearchFunc(r.groups, h>>24, func(g repeatGroup, fp uint64) int {
		return cmp.Compare(g.h>>24, fp)
	})
	if !ok {
		return nil
	}
	return &r.groups[i]
}

// group returns the group of hash h, or nil.
func (r *Repeats) group(h uint64) *repeatGroup {
	if g := r.find(h); g != nil && g.h == h {
		return g
	}
	return r.extra[h]
}

// eachValid calls fn with the op of every valid row of a fresh parser,
// and seen (unless nil) with every row.
func eachValid(open func() (*Parser, error), seen func(Row), fn func(*Op)) error {
	p, err := open()
	if err != nil {
		return err
	}
	defer p.Close()
	p.OpsOnly()
	var op Op // one for every row: a pointer to the row's own would cost each an allocation
	return p.Each(func(row Row) error {
		if seen != nil {
			seen(row)
		}
		if row.Valid() {
			op = row.Op
			fn(&op)
		}
		return nil
	})
}

// add records op in its group, if its fingerprint is shared.
func (r *Repeats) add(h uint64, op *Op) {
	g := r.find(h)
	switch {
	case g == nil:
		return
	case g.first == 0:
		g.h = h
	case g.h != h:
		// Another group took this fingerprint first: a chance meeting.
		if g = r.extra[h]; g == nil {
			r.extra[h] = &repeatGroup{h: h, first: uint32(op.Line), code: r.repeatCode(op)}
			return
		}
	}
	code := r.repeatCode(op)
	switch {
	case g.first == 0:
		g.first, g.code = uint32(op.Line), code
	case g.other == 0 && (code != g.code || op.Action == ToggleStatus):
		g.other = uint32(op.Line)
	}
}

// mark makes a valid row a duplicate, or invalid for a conflict.
func (r *Repeats) mark(row *Row) {
	if r.None() {
		return
	}
	op := &row.Op
	g := r.group(r.hash(op))
	if g == nil {
		return
	}
	first, other := int(g.first), int(g.other)
	switch {
	case op.Line == first:
		if other != 0 {
			conflict(row, other)
		}
	case other == 0:
		op.DuplicateOf = first
	case r.repeatCode(op) == g.code && op.Action != ToggleStatus:
		// A repeat of the first row: it contradicts what the first does.
		conflict(row, other)
	default:
		conflict(row, first)
	}
}

func conflict(row *Row, line int) {
	what := "status"
	if repeatAspect(row.Op.Action) == aspectRole {
		what = "role"
	}
	row.Problems = append(row.Problems, Problem{Line: row.Line, Column: ColAction, Value: string(row.Op.Action),
		Msg: fmt.Sprintf("conflicts with line %d: both rows change the %s of user %s at the same effective_at", line, what, row.Op.User),
		Accepted: "one status change and one role change per user and effective_at: " +
			"delete the row that is wrong, or give the rows different effective_at"})
}

// The aspects of a user a row changes: rows of different aspects never
// repeat or contradict each other.
const (
	aspectStatus byte = 1
	aspectRole   byte = 2
)

func repeatAspect(a Action) byte {
	if a == UpgradeRole || a == DowngradeRole {
		return aspectRole
	}
	return aspectStatus
}

// hash is the 64-bit hash of op's group.
func (r *Repeats) hash(op *Op) uint64 {
	var h maphash.Hash
	h.SetSeed(r.seed)
	k := op.Key()
	h.WriteString(k.Target)
	h.WriteByte(0)
	h.WriteString(k.User)
	var b [13]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(op.EffectiveAt.Unix()))
	binary.LittleEndian.PutUint32(b[8:12], uint32(op.EffectiveAt.Nanosecond()))
	b[12] = repeatAspect(op.Action)
	h.Write(b[:])
	return h.Sum64()
}

// repeatCode is what op asks: its action, and for role changes a hash of
// the role and the vendor cells that change what the vendor does. A flag
// set false asks what an unset one does.
func (r *Repeats) repeatCode(op *Op) uint64 {
	code := uint64(slices.Index(Actions, op.Action) + 1)
	if repeatAspect(op.Action) != aspectRole {
		return code
	}
	var h maphash.Hash
	h.SetSeed(r.seed)
	h.WriteByte(byte(code))
	h.WriteString(op.Role)
	for _, c := range sortedCells(op.Cells) {
		if c.Value != "false" {
			h.WriteByte(0)
			h.WriteString(c.Column)
			h.WriteByte(0)
			h.WriteString(c.Value)
		}
	}
	return h.Sum64() | 1<<63 // never a status action's code
}

// sortedCells returns cells by column, copying only when out of order.
func sortedCells(cells []Cell) []Cell {
	less := func(a, b Cell) int { return cmp.Compare(a.Column, b.Column) }
	if slices.IsSortedFunc(cells, less) {
		return cells
	}
	return slices.SortedFunc(slices.Values(cells), less)
}
