package batch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Journal is the write-ahead record of a run: an intent before each write,
// and an outcome after every row. Intents are made durable by Commit before
// the write is sent (the pipeline commits many at once); outcomes of rows
// with an intent are made durable by the next Commit, and the others are
// synced in batches (every SyncEvery rows or SyncInterval). Its methods are
// safe for concurrent use; the file's sync runs outside mu, so that records
// go on being written while it runs (see Runner.Run's pipelined commits).
type Journal struct {
	syncMu    sync.Mutex // one fsync at a time
	kick      chan struct{}
	mu        sync.Mutex
	f         *os.File
	w         *bufio.Writer
	unsynced  int
	lastFlush time.Time // when records were last flushed to the file
	intents   map[int]bool
	dirty     bool // intents, or results of rows with one, await a flush
	// Flushes are numbered: synced is the last one a finished sync
	// covers, committed the last that held what dirty marked.
	flushed, synced, committed uint64
	buf                        []byte    // reused for encoding records
	base                       time.Time // what results' finish times count from (timeBase)
	err                        error
	stop                       chan struct{}
	stopped                    chan struct{}
}

// Batching of outcome syncs; see BenchmarkJournal for what it saves.
const (
	SyncEvery    = 100
	SyncInterval = 200 * time.Millisecond
)

// CreateJournal starts a new journal at path, refusing to overwrite one.
func CreateJournal(path string, h JournalHeader) (*Journal, error) {
	return createJournal(path, h, os.O_EXCL)
}

// RestartJournal replaces a journal that has no header (see ErrNoHeader).
func RestartJournal(path string, h JournalHeader) (*Journal, error) {
	return createJournal(path, h, os.O_TRUNC)
}

func createJournal(path string, h JournalHeader, mode int) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|mode, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%s already exists: this report directory holds an earlier run; use --resume to continue it, or another -o directory", path)
	}
	if err != nil {
		return nil, err
	}
	h.Type, h.Version = "header", journalVersion
	j := newJournal(f)
	// Locked: the flush loop already runs, and a slow first sync would
	// meet its tick.
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.writeLine(h); err != nil {
		f.Close()
		return nil, err
	}
	return j, j.syncLocked()
}

// AppendJournal reopens an existing journal to continue it. A torn last
// record (the run died mid-write) is cut off first, so the next record
// starts on a line of its own.
func AppendJournal(path string) (*Journal, error) {
	if err := cutTornTail(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return newJournal(f), nil
}

// cutTornTail truncates the file after its last newline.
func cutTornTail(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	end := info.Size()
	buf := make([]byte, 4096)
	for end > 0 {
		start := max(end-int64(len(buf)), 0)
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			if cut := start + int64(i) + 1; cut != info.Size() {
				return f.Truncate(cut)
			}
			return nil
		}
		end = start
	}
	return f.Truncate(0)
}

func newJournal(f *os.File) *Journal {
	j := &Journal{f: f, w: bufio.NewWriterSize(f, 64<<10), intents: map[int]bool{}, kick: make(chan struct{}, 1),
		lastFlush: time.Now(), stop: make(chan struct{}), stopped: make(chan struct{})}
	go j.flushLoop()
	return j
}

// flushLoop syncs the batches of outcomes Result flushed, and outcomes that
// have waited SyncInterval, so a quiet run's last rows are not left
// unsynced until Close. The writer never waits for these syncs.
func (j *Journal) flushLoop() {
	defer close(j.stopped)
	t := time.NewTicker(SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-j.kick:
			_ = j.fsync()
		case <-t.C:
			j.mu.Lock()
			due := j.unsynced > 0 && time.Since(j.lastFlush) >= SyncInterval && j.flushLocked() == nil
			j.mu.Unlock()
			if due {
				_ = j.fsync()
			}
		}
	}
}

// Started records the start of a run (the first, or a resume).
func (j *Journal) Started(at time.Time) error { return j.StartedBy(at, "") }

// StartedBy records the start of a run by actor (--actor).
func (j *Journal) StartedBy(at time.Time, actor string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	at = at.UTC()
	if err := j.writeLine(record{Type: "run", StartedAt: &at, Actor: actor}); err != nil {
		return err
	}
	j.base = timeBase(at)
	return j.syncLocked()
}

// Canary records, durably, the rows (by index) a canary is about to apply:
// a resume judges the canary on every one of them.
func (j *Journal) Canary(rows []int) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.writeLine(record{Type: "canary", Canary: rows}); err != nil {
		return err
	}
	return j.syncLocked()
}

// Intent records that op is about to be sent; Commit makes it durable.
func (j *Journal) Intent(op Op, attempt int) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.writeBytes(appendIntent(j.buf[:0], op.Index, attempt)); err != nil {
		return err
	}
	j.intents[op.Index] = true
	j.dirty = true
	return nil
}

// Commit syncs the intents written before it was called, and the results
// of rows that had one. With nothing of the kind waiting it costs nothing.
// Records written while it syncs wait for the next Commit.
func (j *Journal) Commit() error {
	j.mu.Lock()
	err := j.err
	if j.dirty {
		err = j.flushLocked() // and committed moves on
	}
	need := j.synced < j.committed
	j.mu.Unlock()
	if err != nil || !need {
		return err
	}
	return j.fsync()
}

// Result records a finished row.
func (j *Journal) Result(res Result) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.writeBytes(appendResult(j.buf[:0], &res, j.base)); err != nil {
		return err
	}
	j.unsynced++
	if j.intents[res.Index] {
		delete(j.intents, res.Index)
		j.dirty = true
		return nil
	}
	if j.unsynced >= SyncEvery || time.Since(j.lastFlush) >= SyncInterval {
		// Written now, synced by flushLoop: the writer does not wait.
		if err := j.flushLocked(); err != nil {
			return err
		}
		select {
		case j.kick <- struct{}{}:
		default: // a sync is due already, and covers these
		}
	}
	return nil
}

func (j *Journal) writeLine(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return j.writeBytes(append(b, '\n'))
}

func (j *Journal) writeBytes(b []byte) error {
	if j.err != nil {
		return j.err
	}
	_, err := j.w.Write(b)
	j.buf = b
	return j.failLocked(err, "writing")
}

// syncLocked writes and syncs everything recorded, holding mu: for the
// records that are rare (header, run, canary).
func (j *Journal) syncLocked() error {
	if err := j.flushLocked(); err != nil {
		return err
	}
	// Not under syncMu, which fsync takes before mu: a sync that fsync
	// runs meanwhile is harmless.
	if err := j.failLocked(j.f.Sync(), "syncing"); err != nil {
		return err
	}
	j.synced = j.flushed
	return nil
}

// flushLocked hands the buffered records to the file; a sync after it
// covers them.
func (j *Journal) flushLocked() error {
	if j.err != nil {
		return j.err
	}
	if j.w.Buffered() == 0 && !j.dirty {
		return nil
	}
	if err := j.failLocked(j.w.Flush(), "writing"); err != nil {
		return err
	}
	j.flushed++
	if j.dirty {
		j.committed = j.flushed
	}
	j.unsynced, j.lastFlush, j.dirty = 0, time.Now(), false
	return nil
}

// fsync syncs the file without holding mu, so that records go on being
// written while it runs; it covers every flush made before it started.
func (j *Journal) fsync() error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	upTo, done := j.flushed, j.synced >= j.flushed
	j.mu.Unlock()
	var err error
	if !done {
		err = j.f.Sync()
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err == nil && upTo > j.synced {
		j.synced = upTo
	}
	return j.failLocked(err, "syncing")
}

// failLocked keeps the first error: after it the journal writes nothing.
func (j *Journal) failLocked(err error, doing string) error {
	if err != nil && j.err == nil {
		j.err = fmt.Errorf("%s the journal: %w", doing, err)
	}
	return j.err
}

// Close syncs and closes the journal, returning the first error it met.
func (j *Journal) Close() error {
	close(j.stop)
	<-j.stopped
	j.mu.Lock()
	defer j.mu.Unlock()
	err := j.syncLocked()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	return err
}
