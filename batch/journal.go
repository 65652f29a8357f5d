package batch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// JournalName is the journal's file name in the report directory.
const JournalName = "journal.jsonl"

// JournalHeader is the journal's first record: what the run was over, so
// that --resume can refuse a different input or config.
type JournalHeader struct {
	Type    string `json:"type"` // "header"
	Version int    `json:"version"`
	// InputSHA256 is the hex SHA-256 of the input file's bytes.
	InputSHA256 string `json:"input_sha256"`
	// Targets are the configured target names, sorted.
	Targets []string `json:"targets"`
	// ConfigSHA256 fingerprints what the targets point at (never secrets).
	ConfigSHA256 string `json:"config_sha256"`
	DryRun       bool   `json:"dry_run"`
	// RunID names the run in the ledger, the same across its resumes.
	RunID string `json:"run_id,omitempty"`
	// Held is true for a run a guard held: it sent nothing and is never
	// resumed; a later run in its directory sets its files aside.
	Held      bool      `json:"held,omitempty"`
	Shard     string    `json:"shard,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Invalid is true for a run refused for its invalid rows: it sent
	// nothing and is never resumed; a later run there sets its files aside.
	Invalid bool `json:"invalid,omitempty"`
}

type record struct {
	Type string `json:"type"` // "intent" | "result" | "run" | "canary"
	*Result
	Attempt   int        `json:"attempt,omitempty"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	Canary    []int      `json:"canary,omitempty"` // row indexes
	// Actor is who started the process (a "run" record).
	Actor string `json:"actor,omitempty"`
}

// Journal is the write-ahead record of a run: an intent before each write,
// and an outcome after every row. Intents are made durable by Commit before
// the write is sent (the pipeline commits many at once); outcomes of rows
// with an intent are made durable by the next Commit, and the others are
// synced in batches (every SyncEvery rows or SyncInterval).
type Journal struct {
	mu       sync.Mutex
	f        *os.File
	w        *bufio.Writer
	unsynced int
	lastSync time.Time
	intents  map[int]bool
	dirty    bool   // intents, or results of rows with one, await a sync
	buf      []byte // reused for encoding records
	err      error
	stop     chan struct{}
	stopped  chan struct{}
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
	h.Type, h.Version = "header", 1
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
	j := &Journal{f: f, w: bufio.NewWriterSize(f, 64<<10), intents: map[int]bool{},
		lastSync: time.Now(), stop: make(chan struct{}), stopped: make(chan struct{})}
	go j.flushLoop()
	return j
}

// flushLoop syncs outcomes that have waited SyncInterval, so a quiet run's
// last rows are not left unsynced until Close.
func (j *Journal) flushLoop() {
	defer close(j.stopped)
	t := time.NewTicker(SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-t.C:
			j.mu.Lock()
			if j.unsynced > 0 && time.Since(j.lastSync) >= SyncInterval {
				_ = j.syncLocked()
			}
			j.mu.Unlock()
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
	if err := j.writeBytes(appendIntent(j.buf[:0], &op, attempt)); err != nil {
		return err
	}
	j.intents[op.Index] = true
	j.dirty = true
	return nil
}

// Commit syncs the intents written since the last sync, and the results of
// rows that had one. With nothing of the kind waiting it costs nothing.
func (j *Journal) Commit() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.dirty {
		return j.err
	}
	return j.syncLocked()
}

// Result records a finished row.
func (j *Journal) Result(res Result) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.writeBytes(appendResult(j.buf[:0], &res)); err != nil {
		return err
	}
	j.unsynced++
	if j.intents[res.Index] {
		delete(j.intents, res.Index)
		j.dirty = true
		return nil
	}
	if j.unsynced >= SyncEvery || time.Since(j.lastSync) >= SyncInterval {
		return j.syncLocked()
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
	if _, err := j.w.Write(b); err != nil {
		j.err = fmt.Errorf("writing the journal: %w", err)
	}
	j.buf = b
	return j.err
}

// appendResult encodes a result record as json.Marshal would, by hand: it
// runs once per row on the single writer, where reflection costs show.
func appendResult(b []byte, r *Result) []byte {
	b = appendHead(b, "result", r.Index, r.Line, r.Target, r.User, r.Action)
	b = appendField(b, "outcome", string(r.Outcome))
	b = appendField(b, "detail", r.Detail)
	b = append(b, `,"http_status":`...)
	b = strconv.AppendInt(b, int64(r.HTTPStatus), 10)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(r.Attempts), 10)
	b = appendField(b, "error_code", r.ErrorCode)
	b = appendField(b, "message", r.Message)
	b = append(b, `,"duration_ns":`...)
	b = strconv.AppendInt(b, int64(r.Duration), 10)
	b = append(b, `,"finished_at":"`...)
	b = r.FinishedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","retries":`...)
	b = strconv.AppendInt(b, int64(r.Retries), 10)
	b = append(b, `,"writes":`...)
	b = strconv.AppendInt(b, int64(r.Writes), 10)
	return append(b, "}\n"...)
}

// appendHead opens a row's record: its type and the row it is about.
func appendHead(b []byte, typ string, index, line int, target, user string, action Action) []byte {
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","i":`...)
	b = strconv.AppendInt(b, int64(index), 10)
	b = append(b, `,"line":`...)
	b = strconv.AppendInt(b, int64(line), 10)
	b = appendField(b, "target", target)
	b = appendField(b, "user", user)
	return appendField(b, "action", string(action))
}

// appendIntent encodes an intent record as json.Marshal encodes
// record{Type: "intent", Result: ..., Attempt: attempt}, up to the escaping
// of strings (appendField's), by hand: the writer encodes one before every
// request.
func appendIntent(b []byte, op *Op, attempt int) []byte {
	b = appendHead(b, "intent", op.Index, op.Line, op.Target, op.User, op.Action)
	b = append(b, `,"outcome":"","attempts":0,"duration_ns":0,"finished_at":"0001-01-01T00:00:00Z"`...)
	if attempt != 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendInt(b, int64(attempt), 10)
	}
	return append(b, "}\n"...)
}

// appendField appends ,"name":"value" with value escaped as JSON.
func appendField(b []byte, name, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			q, _ := json.Marshal(value) // rare: let encoding/json escape it
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, value...)
	return append(b, '"')
}

func (j *Journal) syncLocked() error {
	if j.err != nil {
		return j.err
	}
	if err := j.w.Flush(); err != nil {
		j.err = fmt.Errorf("writing the journal: %w", err)
		return j.err
	}
	if err := j.f.Sync(); err != nil {
		j.err = fmt.Errorf("syncing the journal: %w", err)
		return j.err
	}
	j.unsynced, j.lastSync, j.dirty = 0, time.Now(), false
	return nil
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

// ErrNoHeader means a journal holds no header record: the run that made it
// died before writing one, which it does before sending anything.
var ErrNoHeader = errors.New("the journal has no header record (the run died before sending anything)")

// JournalState is what a journal says about a run so far.
type JournalState struct {
	Header JournalHeader
	// settled marks the rows with a recorded outcome, by index.
	settled []uint64
	// InFlight holds the intents with no outcome after them: requests that
	// may have been sent when the run died.
	InFlight map[int]Result
	// Runs counts the runs recorded (1 + resumes).
	Runs int
	// FirstStart is when the first process of the run started.
	FirstStart time.Time
	// Canary holds the rows of the run's canary, by index, as the first
	// process that ran one recorded them; nil when none did.
	Canary []int
}

// Settled reports whether row i has an outcome in the journal.
func (s *JournalState) Settled(i int) bool {
	w := i / 64
	return w < len(s.settled) && s.settled[w]&(1<<(uint(i)%64)) != 0
}

func (s *JournalState) settle(i int) {
	w := i / 64
	if w >= len(s.settled) {
		s.settled = append(s.settled, make([]uint64, w-len(s.settled)+1)...)
	}
	s.settled[w] |= 1 << (uint(i) % 64)
}

// ReadJournal reads the journal at path. Memory is one bit per row plus the
// rows in flight. A torn last line (the process died mid-write) is ignored.
func ReadJournal(path string) (*JournalState, error) {
	st := &JournalState{InFlight: map[int]Result{}}
	err := scanJournal(path, func(typ string, line []byte, _ int64) error {
		switch typ {
		case "header":
			return json.Unmarshal(line, &st.Header)
		case "run":
			st.Runs++
			if st.Runs == 1 {
				var rec record
				if err := json.Unmarshal(line, &rec); err == nil && rec.StartedAt != nil {
					st.FirstStart = *rec.StartedAt
				}
			}
		case "canary":
			var rec record
			if err := json.Unmarshal(line, &rec); err != nil {
				return err
			}
			if st.Canary == nil {
				st.Canary = rec.Canary
			}
		case "intent":
			res, ok := parseIntent(line, true)
			if !ok {
				var rec struct{ Result }
				if err := json.Unmarshal(line, &rec); err != nil {
					return err
				}
				res = rec.Result
			}
			st.InFlight[res.Index] = res
		case "result":
			res, err := decodeResult(line)
			if err != nil {
				return err
			}
			delete(st.InFlight, res.Index)
			st.settle(res.Index)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if st.Header.Version == 0 {
		return nil, fmt.Errorf("%s: %w", path, ErrNoHeader)
	}
	return st, nil
}

// scanJournal calls fn for each complete record with its type and offset.
func scanJournal(path string, fn func(typ string, line []byte, off int64) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	var off int64
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("%s line %d: record too long", path, n)
		}
		if errors.Is(err, io.EOF) {
			return nil // a torn last record was never synced: ignore it
		}
		if err != nil {
			return err
		}
		typ, err := recordType(line)
		if err != nil {
			return fmt.Errorf("%s line %d: %v", path, n, err)
		}
		if err := fn(typ, line, off); err != nil {
			return fmt.Errorf("%s line %d: %w", path, n, err)
		}
		off += int64(len(line))
	}
}

// resultPrefix starts every result record appendResult writes.
const resultPrefix = `{"type":"result",`

// recordType returns a record's type. Result records, most of a journal,
// are known by their prefix: every caller decodes them in full (see
// decodeResult), which checks the rest of the line. Intent records are
// checked here, in the layout appendIntent writes; any other record goes to
// encoding/json.
func recordType(line []byte) (string, error) {
	if hasPrefix(line, resultPrefix) {
		return "result", nil
	}
	if _, ok := parseIntent(line, false); ok {
		return "intent", nil
	}
	var head struct {
		Type string `json:"type"`
	}
	err := json.Unmarshal(line, &head)
	return head.Type, err
}

func hasPrefix(b []byte, s string) bool { return len(b) >= len(s) && string(b[:len(s)]) == s }

// decodeResult decodes a result record: by parseWith when it is in the
// form appendResult writes, else by encoding/json.
func decodeResult(line []byte) (Result, error) {
	return decodeResultWith(line, nil)
}

// decodeResultWith is decodeResult making each common value once in seen.
func decodeResultWith(line []byte, seen map[string]string) (Result, error) {
	if res, ok := parseWith(&cursor{b: line, ok: true, keep: true, seen: seen}); ok {
		return res, nil
	}
	var rec struct{ Result }
	err := json.Unmarshal(line, &rec)
	return rec.Result, err
}

// resultIndex is parseWith for the index: it checks the whole layout but
// decodes only the row's index, and neither makes strings nor reads the
// time (json.Unmarshal of the index alone does not either).
func resultIndex(line []byte) (int, bool) {
	res, ok := parseWith(&cursor{b: line, ok: true})
	return res.Index, ok
}

func parseWith(c *cursor) (res Result, ok bool) {
	c.lit(resultPrefix + `"i":`)
	res.Index = int(c.int())
	c.lit(`,"line":`)
	res.Line = int(c.int())
	res.Target = c.common("target")
	res.User = c.field("user")
	res.Action = Action(c.common("action"))
	res.Outcome = Outcome(c.common("outcome"))
	res.Detail = c.common("detail")
	c.lit(`,"http_status":`)
	res.HTTPStatus = int(c.int())
	c.lit(`,"attempts":`)
	res.Attempts = int(c.int())
	res.ErrorCode = c.common("error_code")
	res.Message = c.field("message")
	c.lit(`,"duration_ns":`)
	res.Duration = time.Duration(c.int())
	c.lit(`,"finished_at":`)
	if at := c.raw(); c.ok && c.keep {
		c.ok = res.FinishedAt.UnmarshalText(at) == nil // as Time.UnmarshalJSON does
	}
	c.lit(`,"retries":`)
	res.Retries = int(c.int())
	if hasPrefix(c.b, `,"writes":`) { // journals from before it lack it
		c.lit(`,"writes":`)
		res.Writes = int(c.int())
	}
	c.lit("}")
	if len(c.b) == 1 && c.b[0] == '\n' {
		c.b = c.b[1:]
	}
	return res, c.ok && len(c.b) == 0
}

// intentPrefix starts every intent record appendIntent writes.
const intentPrefix = `{"type":"intent",`

// parseIntent decodes an intent record laid out exactly as appendIntent
// writes it, with no escapes in its strings; ok is false for anything else.
// Without keep it only checks the layout (the record is then valid JSON).
func parseIntent(line []byte, keep bool) (res Result, ok bool) {
	c := cursor{b: line, ok: true, keep: keep}
	c.lit(intentPrefix + `"i":`)
	res.Index = int(c.int())
	c.lit(`,"line":`)
	res.Line = int(c.int())
	res.Target = c.field("target")
	res.User = c.field("user")
	res.Action = Action(c.field("action"))
	c.lit(`,"outcome":"","attempts":0,"duration_ns":0,"finished_at":"0001-01-01T00:00:00Z"`)
	if hasPrefix(c.b, `,"attempt":`) {
		c.lit(`,"attempt":`)
		c.int()
	}
	c.lit("}")
	if len(c.b) == 1 && c.b[0] == '\n' {
		c.b = c.b[1:]
	}
	return res, c.ok && len(c.b) == 0
}

// cursor reads the fixed layout of a result record; ok turns false at the
// first thing out of place, and stays false. Without keep it checks strings
// but makes none.
type cursor struct {
	b    []byte
	ok   bool
	keep bool
	seen map[string]string // common values made already (nil: none kept)
}

func (c *cursor) lit(s string) {
	if c.ok && hasPrefix(c.b, s) {
		c.b = c.b[len(s):]
		return
	}
	c.ok = false
}

// int reads a JSON integer that fits an int64 (no leading zeros).
func (c *cursor) int() int64 {
	if !c.ok {
		return 0
	}
	n := 0
	if n < len(c.b) && c.b[n] == '-' {
		n++
	}
	digits := n
	for n < len(c.b) && c.b[n] >= '0' && c.b[n] <= '9' {
		n++
	}
	if n == digits || c.b[digits] == '0' && n > digits+1 {
		c.ok = false
		return 0
	}
	v, err := strconv.ParseInt(string(c.b[:n]), 10, 64)
	c.ok = err == nil
	c.b = c.b[n:]
	return v
}

// field reads ,"name":"value" where value is printable ASCII with no quote
// or backslash: what appendField writes unescaped.
func (c *cursor) field(name string) string {
	if v := c.value(name); c.ok && c.keep {
		return string(v)
	}
	return ""
}

// common is field for the values that repeat from row to row (targets,
// actions, outcomes, details, error codes): each is made once, up to a
// bound.
func (c *cursor) common(name string) string {
	v := c.value(name)
	if !c.ok || !c.keep {
		return ""
	}
	if c.seen == nil {
		return string(v)
	}
	if s, ok := c.seen[string(v)]; ok {
		return s
	}
	s := string(v)
	if len(c.seen) < maxCommon {
		c.seen[s] = s
	}
	return s
}

// maxCommon bounds the common values an OutcomeIndex keeps.
const maxCommon = 1024

// value reads ,"name":"value" and returns value's bytes.
func (c *cursor) value(name string) []byte {
	if !c.ok || len(c.b) < len(name)+4 || c.b[0] != ',' || c.b[1] != '"' ||
		string(c.b[2:2+len(name)]) != name || string(c.b[2+len(name):4+len(name)]) != `":` {
		c.ok = false
		return nil
	}
	c.b = c.b[4+len(name):]
	return c.raw()
}

// raw reads a string's bytes, quotes excluded, checking they need no
// unescaping.
func (c *cursor) raw() []byte {
	if !c.ok || len(c.b) == 0 || c.b[0] != '"' {
		c.ok = false
		return nil
	}
	for i := 1; i < len(c.b); i++ {
		switch ch := c.b[i]; {
		case ch == '"':
			v := c.b[1:i]
			c.b = c.b[i+1:]
			return v
		case ch < 0x20 || ch == '\\' || ch >= 0x7f:
			c.ok = false
			return nil
		}
	}
	c.ok = false
	return nil
}

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
}

// OpenOutcomeIndex indexes the journal at path. Call Close to remove the index.
func OpenOutcomeIndex(path string) (*OutcomeIndex, error) {
	idx, err := os.CreateTemp("", "userbatch-index-*")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(idx.Name()) // unlinked: gone with the process, whatever happens
	index := newSlots(idx)
	err = scanJournal(path, func(typ string, line []byte, off int64) error {
		if typ != "result" {
			return nil
		}
		if i, ok := resultIndex(line); ok {
			return index.put(i, off)
		}
		var rec struct {
			Index int `json:"i"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return err
		}
		return index.put(rec.Index, off)
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
	return &OutcomeIndex{journal: j, index: index, seen: map[string]string{}}, nil
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

// Lookup returns row i's recorded result, if any.
func (o *OutcomeIndex) Lookup(i int) (Result, bool, error) {
	if i < 0 {
		return Result{}, false, fmt.Errorf("looking up row %d: negative index", i)
	}
	v, err := o.index.get(i)
	if err != nil || v == 0 {
		return Result{}, false, err
	}
	line, err := o.readLineAt(int64(v - 1))
	if err != nil {
		return Result{}, false, err
	}
	res, err := decodeResultWith(line, o.seen)
	if err != nil {
		return Result{}, false, err
	}
	return res, true, nil
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
