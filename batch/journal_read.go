package batch

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ErrNoHeader means a journal holds no header record: the run that made it
// died before writing one, which it does before sending anything.
var ErrNoHeader = errors.New("the journal has no header record (the run died before sending anything)")

// JournalState is what a journal says about a run so far.
type JournalState struct {
	Header JournalHeader
	// settled marks the rows with a recorded outcome, by index.
	settled RowSet
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
func (s *JournalState) Settled(i int) bool { return s.settled.Has(i) }

// ReadJournal reads the journal at path. Memory is one bit per row plus the
// rows in flight. A torn last line (the process died mid-write) is ignored.
func ReadJournal(path string) (*JournalState, error) {
	st := &JournalState{InFlight: map[int]Result{}}
	err := scanJournal(path, func(typ string, line []byte, _ int64) error {
		switch typ {
		case "header":
			if err := json.Unmarshal(line, &st.Header); err != nil {
				return err
			}
			if st.Header.Version > journalVersion {
				// Refused before its records, which this version may not read.
				return fmt.Errorf("a journal of version %d, written by a later userbatch than this one (which reads up to version %d): use that version", st.Header.Version, journalVersion)
			}
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
			res, err := decodeIntent(line)
			if err != nil {
				return err
			}
			st.InFlight[res.Index] = res
		case "result":
			i, err := resultRowIndex(line)
			if err != nil {
				return err
			}
			delete(st.InFlight, i)
			st.settled.Put(i, true)
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

// decodeIntent reads an intent of either version. A version 2 intent gives
// the row's index alone (see FillInFlight).
func decodeIntent(line []byte) (Result, error) {
	if i, ok := parseCompactIntent(line); ok {
		return Result{Index: i}, nil
	}
	if res, ok := parseIntent(line, true); ok {
		return res, nil
	}
	if isCompact(line) {
		var rec compactJSON
		if err := json.Unmarshal(line, &rec); err != nil {
			return Result{}, err
		}
		if rec.I == nil {
			return Result{}, errors.New("an intent record with no row index")
		}
		return Result{Index: *rec.I}, nil
	}
	var rec struct{ Result }
	err := json.Unmarshal(line, &rec)
	return rec.Result, err
}

// FillInFlight gives the rows in flight that the journal knows by index
// alone (version 2) their line, target, user and action, read from the
// input the journal was started with (its hash checked by --resume). An
// intent for a row the input does not hold as a valid row is an error:
// the journal is not this input's.
func (s *JournalState) FillInFlight(next func() (Row, error)) error {
	missing := 0
	for _, res := range s.InFlight {
		if res.Target == "" {
			missing++
		}
	}
	for missing > 0 {
		row, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		res, ok := s.InFlight[row.Index]
		if !ok || res.Target != "" || !row.Valid() {
			continue
		}
		op := row.Op
		res.Line, res.Target, res.User, res.Action = op.Line, op.Target, op.User, op.Action
		s.InFlight[row.Index] = res
		missing--
	}
	if missing > 0 {
		return fmt.Errorf("the journal holds %d writes in flight for rows the input does not hold as valid rows: it is not this input's journal", missing)
	}
	return nil
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
