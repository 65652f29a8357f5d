package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"maps"
	"slices"
	"strconv"
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
// each row's group), then a few dozen bytes for each group of rows that
// meet (README "Performance").
type Repeats struct {
	seed   maphash.Seed
	groups map[uint64]*repeatGroup
}

// repeatGroup is the rows of one group: the first one and what it asks,
// and the first row that contradicts it.
type repeatGroup struct {
	id    string // target, user key, effective_at, aspect: tells a hash collision apart
	first int    // the first row's line
	code  uint16 // what the first row asks (repeatCode)
	other int    // the line of the first row contradicting the first; 0: none
	rows  int
}

// FindRepeats reads the file twice through parsers open returns: once to
// find the groups that may hold more than one row, by a 40-bit fingerprint
// of their hash, and once to learn those groups' rows. The parsers must
// read the same file, with no Repeats.
func FindRepeats(open func() (*Parser, error)) (*Repeats, error) {
	r := &Repeats{seed: maphash.MakeSeed()}
	multi, err := r.sharedPrints(open)
	if err != nil || len(multi) == 0 {
		return r, err
	}
	r.groups = map[uint64]*repeatGroup{}
	err = eachValid(open, func(op *Op) {
		h := r.hash(op)
		if _, ok := multi[h>>24]; ok {
			r.add(h, op)
		}
	})
	// Groups of one row are fingerprints that met by chance.
	maps.DeleteFunc(r.groups, func(_ uint64, g *repeatGroup) bool { return g.rows == 1 })
	return r, err
}

// sharedPrints returns the fingerprints (a hash's top 40 bits) that two or
// more valid rows share. They are kept in 256 buckets by their top byte,
// the other 32 bits in each bucket's list of small chunks, and each bucket
// is sorted on its own: 4 bytes a row, no table over the whole file, and
// no copies left behind while it grows. Two groups sharing a fingerprint
// only cost the second pass a little: it compares full hashes and groups.
func (r *Repeats) sharedPrints(open func() (*Parser, error)) (map[uint64]struct{}, error) {
	var buckets [256][][]uint32
	err := eachValid(open, func(op *Op) {
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
	multi := map[uint64]struct{}{}
	var sorted []uint32
	for top := range buckets {
		sorted = sorted[:0]
		for _, c := range buckets[top] {
			sorted = append(sorted, c...)
		}
		buckets[top] = nil
		slices.Sort(sorted)
		for j := 1; j < len(sorted); j++ {
			if sorted[j] == sorted[j-1] {
				multi[uint64(top)<<32|uint64(sorted[j])] = struct{}{}
			}
		}
	}
	return multi, nil
}

// printChunk is how many fingerprints a bucket's chunk holds (4 KiB).
const printChunk = 1024

// eachValid calls fn with the op of every valid row of a fresh parser.
func eachValid(open func() (*Parser, error), fn func(*Op)) error {
	p, err := open()
	if err != nil {
		return err
	}
	defer p.Close()
	p.OpsOnly()
	for {
		row, err := p.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if row.Valid() {
			fn(&row.Op)
		}
	}
}

// add records op in its group.
func (r *Repeats) add(h uint64, op *Op) {
	id, code := repeatID(op), repeatCode(op)
	g := r.groups[h]
	if g == nil {
		r.groups[h] = &repeatGroup{id: id, first: op.Line, code: code, rows: 1}
		return
	}
	if g.id == id {
		g.rows++
	}
	switch {
	case g.id != id || g.other != 0:
		// Another group with the same hash, or a conflict known already.
	case code != g.code || op.Action == ToggleStatus:
		g.other = op.Line
	}
}

// mark makes a valid row a duplicate, or invalid for a conflict.
func (r *Repeats) mark(row *Row) {
	if r == nil || len(r.groups) == 0 {
		return
	}
	op := &row.Op
	g := r.groups[r.hash(op)]
	if g == nil || g.id != repeatID(op) {
		return
	}
	switch {
	case op.Line == g.first:
		if g.other != 0 {
			conflict(row, g.other)
		}
	case g.other == 0:
		op.DuplicateOf = g.first
	case repeatCode(op) == g.code && op.Action != ToggleStatus:
		// A repeat of the first row: it contradicts what the first does.
		conflict(row, g.other)
	default:
		conflict(row, g.first)
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

// repeatID is op's group spelled out; only rows whose hash meets another
// row's pay for it.
func repeatID(op *Op) string {
	k := op.Key()
	at := strconv.FormatInt(op.EffectiveAt.Unix(), 10) + "." + strconv.Itoa(op.EffectiveAt.Nanosecond())
	return k.Target + "\x00" + k.User + "\x00" + at + "\x00" + string(rune('0'+repeatAspect(op.Action)))
}

// repeatCode is what op asks, packed: its action, and for role changes the
// role and the options that change what the vendor does.
func repeatCode(op *Op) uint16 {
	code := uint16(slices.Index(Actions, op.Action) + 1)
	if repeatAspect(op.Action) != aspectRole {
		return code
	}
	code |= uint16(slices.Index([]string{RoleMember, RolePreferredCustomer, RoleCustomer}, op.Role)+1) << 4
	if op.Action == UpgradeRole && op.PlaceGenealogy {
		code |= 1 << 8
	}
	if op.Action == DowngradeRole && op.BlockUser {
		code |= 1 << 9
	}
	return code
}
