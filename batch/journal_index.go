package batch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

// OutcomeIndex looks rows' results up in a journal by index without holding them
// in memory: an index file of one offset per row points into the journal.
// It is not safe for concurrent use: Lookup reuses its buffers.
//
// Rows finish roughly in input order and the report looks them up in input
// order, so both files are read (and the index written) through small
// caches: a few syscalls per thousand rows rather than one or two a row.
type OutcomeIndex struct {
	journal *os.File
	index   *slots
	win     []byte // the journal's bytes [start, start+len(win))
	start   int64
	seen    map[string]string // targets, actions, outcomes, details made once
	bases   []runBase         // the run records, by offset
}

// runBase is where a run record is and the time base it sets (timeBase).
type runBase struct {
	off  int64
	base time.Time
}

// baseAt is the time base of a record at off: the last run's before it.
func (o *OutcomeIndex) baseAt(off int64) time.Time {
	n := sort.Search(len(o.bases), func(k int) bool { return o.bases[k].off > off })
	if n == 0 {
		return time.Time{}
	}
	return o.bases[n-1].base
}

// OpenOutcomeIndex indexes the journal at path. Call Close to remove the index.
func OpenOutcomeIndex(path string) (*OutcomeIndex, error) {
	idx, err := os.CreateTemp("", "userbatch-index-*")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(idx.Name()) // unlinked: gone with the process, whatever happens
	index := newSlots(idx)
	var bases []runBase
	err = scanJournal(path, func(typ string, line []byte, off int64) error {
		if typ == "run" {
			var rec record
			if err := json.Unmarshal(line, &rec); err != nil {
				return err
			}
			if rec.StartedAt != nil {
				bases = append(bases, runBase{off, timeBase(*rec.StartedAt)})
			}
		}
		if typ != "result" {
			return nil
		}
		i, err := resultRowIndex(line)
		if err != nil {
			return err
		}
		return index.put(i, off)
	})
	if err != nil {
		idx.Close()
		return nil, err
	}
	j, err := os.Open(path)
	if err != nil {
		idx.Close()
		return nil, err
	}
	return &OutcomeIndex{journal: j, index: index, seen: map[string]string{}, bases: bases}, nil
}

// slots is the index file, one 8-byte slot per row holding its record's
// offset+1 (0: no outcome), seen through a cache of a few blocks.
type slots struct {
	f      *os.File
	blocks map[int64]*slotBlock
}

type slotBlock struct {
	b     []byte
	dirty bool
}

const (
	slotBlockSize = 64 << 10 // 8192 rows a block
	slotBlocks    = 8        // blocks cached: 512 KiB
)

func newSlots(f *os.File) *slots { return &slots{f: f, blocks: map[int64]*slotBlock{}} }

// put stores off+1 at slot i.
func (s *slots) put(i int, off int64) error {
	blk, at, err := s.block(i)
	if err != nil {
		return err
	}
	putUint64(blk.b[at:], uint64(off)+1)
	blk.dirty = true
	return nil
}

// get returns slot i's value (0 for a row past the end).
func (s *slots) get(i int) (uint64, error) {
	blk, at, err := s.block(i)
	if err != nil {
		return 0, err
	}
	return getUint64(blk.b[at:]), nil
}

// block returns the cached block holding slot i and i's byte in it,
// reading it in (and evicting the lowest-numbered block) when needed.
func (s *slots) block(i int) (*slotBlock, int, error) {
	pos := int64(i) * 8
	n, at := pos/slotBlockSize, int(pos%slotBlockSize)
	if blk, ok := s.blocks[n]; ok {
		return blk, at, nil
	}
	if len(s.blocks) >= slotBlocks {
		if err := s.evict(); err != nil {
			return nil, 0, err
		}
	}
	blk := &slotBlock{b: make([]byte, slotBlockSize)}
	if _, err := s.f.ReadAt(blk.b, n*slotBlockSize); err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, err // a short read leaves zeros: no outcome
	}
	s.blocks[n] = blk
	return blk, at, nil
}

// evict writes back and drops the lowest-numbered block: rows go forward.
func (s *slots) evict() error {
	low := int64(-1)
	for n := range s.blocks {
		if low < 0 || n < low {
			low = n
		}
	}
	if blk := s.blocks[low]; blk.dirty {
		if _, err := s.f.WriteAt(blk.b, low*slotBlockSize); err != nil {
			return err
		}
	}
	delete(s.blocks, low)
	return nil
}

func putUint64(b []byte, v uint64) {
	for k := 0; k < 8; k++ {
		b[k] = byte(v >> (8 * k))
	}
}

func getUint64(b []byte) uint64 {
	var v uint64
	for k := 7; k >= 0; k-- {
		v = v<<8 | uint64(b[k])
	}
	return v
}

// Lookup returns the recorded result of op's row, if any. op is the row as
// the input holds it: a version 2 record takes its identity from it.
func (o *OutcomeIndex) Lookup(op Op) (Result, bool, error) {
	i := op.Index
	if i < 0 {
		return Result{}, false, fmt.Errorf("looking up row %d: negative index", i)
	}
	v, err := o.index.get(i)
	if err != nil || v == 0 {
		return Result{}, false, err
	}
	off := int64(v - 1)
	line, err := o.readLineAt(off)
	if err != nil {
		return Result{}, false, err
	}
	cr, compact, err := decodeResult(line, o.seen)
	if err != nil {
		return Result{}, false, err
	}
	if !compact {
		return cr.Result, true, nil
	}
	return cr.finish(op, o.baseAt(off)), true, nil
}

// The journal window: records are read from it when it holds them, else it
// is refilled from a little before the record (rows finished out of order
// lie on both sides). It is larger than any record scanJournal accepts.
const (
	windowSize   = 1 << 20
	windowBehind = windowSize / 8
)

// readLineAt returns the journal's line at off, without its newline. The
// bytes are valid until the next call.
func (o *OutcomeIndex) readLineAt(off int64) ([]byte, error) {
	if line, ok := o.fromWindow(off); ok {
		return line, nil
	}
	if o.win == nil {
		o.win = make([]byte, 0, windowSize)
	}
	o.start = max(0, off-windowBehind)
	n, err := o.journal.ReadAt(o.win[:windowSize], o.start)
	if err != nil && !errors.Is(err, io.EOF) {
		o.win = o.win[:0]
		return nil, fmt.Errorf("reading the journal at %d: %w", off, err)
	}
	o.win = o.win[:n]
	if line, ok := o.fromWindow(off); ok {
		return line, nil
	}
	// scanJournal refuses records over its 256 KiB buffer, so an indexed
	// record always fits the window from off.
	return nil, fmt.Errorf("reading the journal at %d: the record has no end", off)
}

func (o *OutcomeIndex) fromWindow(off int64) ([]byte, bool) {
	if off < o.start || off >= o.start+int64(len(o.win)) {
		return nil, false
	}
	rest := o.win[off-o.start:]
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		return rest[:i], true
	}
	return nil, false
}

// Close removes the index and closes the journal.
func (o *OutcomeIndex) Close() error {
	return errors.Join(o.index.f.Close(), o.journal.Close())
}
