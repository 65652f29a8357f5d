package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
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
// The cost is 8 bytes a valid row while they are found (a 64-bit hash of
// each row's group), then a few dozen bytes for each group of rows that
// meet: a million-row file costs about 8 MiB for a moment.
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
}

// FindRepeats reads the file twice through parsers open returns: once to
// find the groups that hold more than one row, by hash, and once to learn
// those groups' rows. The parsers must read the same file, with no Repeats.
func FindRepeats(open func() (*Parser, error)) (*Repeats, error) {
	r := &Repeats{seed: maphash.MakeSeed()}
	multi, err := r.repeatedHashes(open)
	if err != nil || len(multi) == 0 {
		return r, err
	}
	r.groups = make(map[uint64]*repeatGroup, len(multi))
	err = eachValid(open, func(op *Op) {
		h := r.hash(op)
		if _, ok := multi[h]; ok {
			r.add(h, op)
		}
	})
	return r, err
}

// repeatedHashes returns the hashes two or more valid rows share. The
// hashes are kept in 256 buckets by their top byte, each sorted on its
// own: no table over the whole file, and no copy of it while it grows.
func (r *Repeats) repeatedHashes(open func() (*Parser, error)) (map[uint64]struct{}, error) {
	var buckets [256][]uint64
	err := eachValid(open, func(op *Op) {
		h := r.hash(op)
		buckets[h>>56] = append(buckets[h>>56], h)
	})
	if err != nil {
		return nil, err
	}
	multi := map[uint64]struct{}{}
	for i := range buckets {
		b := buckets[i]
		slices.Sort(b)
		for j := 1; j < len(b); j++ {
			if b[j] == b[j-1] {
				multi[b[j]] = struct{}{}
			}
		}
		buckets[i] = nil
	}
	return multi, nil
}

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
	switch {
	case g == nil:
		r.groups[h] = &repeatGroup{id: id, first: op.Line, code: code}
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
