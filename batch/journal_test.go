package batch

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var testHeader = JournalHeader{
	InputSHA256:  "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	Targets:      []string{"eu", "us"},
	ConfigSHA256: "c0ffee",
	DryRun:       true,
	Shard:        "2/4",
	CreatedAt:    time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
}

// journalResult returns a fully populated result for row i.
func journalResult(i int, o Outcome) Result {
	op := newOp(i, "eu", fmt.Sprintf("user-%d", i), Disable)
	return Result{Index: op.Index, Line: op.Line, Target: op.Target, User: op.User, Action: op.Action,
		Outcome: o, Detail: "detail " + op.User, HTTPStatus: 409, Attempts: 3, Retries: 2,
		ErrorCode: CodeConflict, Message: "User already have a member role.",
		Duration: 1500 * time.Millisecond, FinishedAt: time.Date(2030, 1, 2, 3, 4, 5, 600_000, time.UTC)} // the journal keeps µs
}

func newTestJournal(t testing.TB) (*Journal, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), JournalName)
	j, err := CreateJournal(path, testHeader)
	if err != nil {
		t.Fatalf("CreateJournal: %v", err)
	}
	return j, path
}

func closeJournal(t testing.TB, j *Journal) {
	t.Helper()
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func mustRead(t *testing.T, path string) *JournalState {
	t.Helper()
	st, err := ReadJournal(path)
	if err != nil {
		t.Fatalf("ReadJournal: %v", err)
	}
	return st
}

// checkSettled compares the rows a journal says are settled with want,
// over every row up to limit.
func checkSettled(t *testing.T, st *JournalState, limit int, want ...int) {
	t.Helper()
	settled := map[int]bool{}
	for _, i := range want {
		settled[i] = true
	}
	for i := 0; i <= limit; i++ {
		if st.Settled(i) != settled[i] {
			t.Errorf("Settled(%d) = %v, want %v", i, st.Settled(i), settled[i])
		}
	}
}

func appendBytes(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestJournalCreateRefusesAnExistingFile(t *testing.T) {
	j, path := newTestJournal(t)
	closeJournal(t, j)

	_, err := CreateJournal(path, JournalHeader{InputSHA256: "other"})

	if err == nil {
		t.Fatal("CreateJournal overwrote an existing journal")
	}
	if !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "--resume") {
		t.Errorf("error %q should say the journal exists and how to continue it", err)
	}
	if st := mustRead(t, path); st.Header.InputSHA256 != testHeader.InputSHA256 {
		t.Errorf("the existing journal was changed: header %+v", st.Header)
	}
}

func TestJournalRoundTrip(t *testing.T) {
	j, path := newTestJournal(t)
	if err := j.Started(time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))); err != nil {
		t.Fatal(err)
	}
	toggle := func(i int) Op { return newOp(i, "us", fmt.Sprintf("t%d", i), ToggleStatus) }
	steps := []error{
		j.Intent(toggle(1), 1),
		j.Result(journalResult(0, Applied)),
		j.Intent(toggle(2), 1),
		j.Intent(toggle(2), 2), // retried: still one row in flight
		j.Intent(toggle(3), 1),
		j.Result(journalResult(3, Unknown)),
		j.Result(journalResult(70, Failed)),
	}
	if err := errors.Join(steps...); err != nil {
		t.Fatal(err)
	}
	closeJournal(t, j)

	st := mustRead(t, path)
	if err := st.FillInFlight(inputOf(toggle(0), toggle(1), toggle(2), toggle(3))); err != nil {
		t.Fatal(err)
	}

	wantHeader := testHeader
	wantHeader.Type, wantHeader.Version = "header", journalVersion
	if !reflect.DeepEqual(st.Header, wantHeader) {
		t.Errorf("header %+v\nwant %+v", st.Header, wantHeader)
	}
	if st.Runs != 1 {
		t.Errorf("Runs = %d, want 1", st.Runs)
	}
	checkSettled(t, st, 200, 0, 3, 70)
	want := map[int]Result{}
	for _, i := range []int{1, 2} {
		op := toggle(i)
		want[i] = Result{Index: i, Line: op.Line, Target: op.Target, User: op.User, Action: op.Action}
	}
	if !reflect.DeepEqual(st.InFlight, want) {
		t.Errorf("InFlight = %+v\nwant %+v", st.InFlight, want)
	}
}

func TestJournalFlushes(t *testing.T) {
	contains := func(path, s string) bool {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(string(b), s)
	}
	j, path := newTestJournal(t)
	defer closeJournal(t, j)

	if !contains(path, `"type":"header"`) {
		t.Error("the header is not on disk once CreateJournal returns")
	}
	if err := j.Intent(newOp(7, "us", "t7", ToggleStatus), 1); err != nil {
		t.Fatal(err)
	}
	if err := j.Commit(); err != nil {
		t.Fatal(err)
	}
	if !contains(path, `{"t":"i","i":7,`) {
		t.Error("an intent is not on disk once Commit returns: the request may be sent unrecorded")
	}
	if err := errors.Join(j.Result(journalResult(7, Unknown)), j.Commit()); err != nil {
		t.Fatal(err)
	}
	if !contains(path, `{"t":"r","i":7,`) {
		t.Error("the result of a row with an intent is not on disk once Commit returns")
	}
	for i := 100; i < 100+SyncEvery; i++ {
		if err := j.Result(journalResult(i, Applied)); err != nil {
			t.Fatal(err)
		}
	}
	if !contains(path, fmt.Sprintf(`{"t":"r","i":%d,`, 100+SyncEvery-1)) {
		t.Errorf("%d results are not on disk: outcomes must be synced every SyncEvery rows", SyncEvery)
	}
}

func TestJournalTornLastLineIsIgnored(t *testing.T) {
	j, path := newTestJournal(t)
	if err := errors.Join(j.Result(journalResult(0, Applied)), j.Result(journalResult(1, Applied))); err != nil {
		t.Fatal(err)
	}
	closeJournal(t, j)
	appendBytes(t, path, `{"type":"result","i":2,"line":4,"tar`)

	st := mustRead(t, path)
	checkSettled(t, st, 10, 0, 1)

	idx, err := OpenOutcomeIndex(path)
	if err != nil {
		t.Fatalf("OpenOutcomeIndex: %v", err)
	}
	defer idx.Close()
	if _, ok, err := idx.Lookup(Op{Index: 2}); ok || err != nil {
		t.Errorf("Lookup(2) = %v, %v: a torn record must not count", ok, err)
	}
}

func TestJournalAppendContinues(t *testing.T) {
	j, path := newTestJournal(t)
	if err := errors.Join(j.Started(clockEpoch), j.Result(journalResult(0, Applied)),
		j.Intent(newOp(1, "us", "t1", ToggleStatus), 1)); err != nil {
		t.Fatal(err)
	}
	closeJournal(t, j)

	j, err := AppendJournal(path)
	if err != nil {
		t.Fatalf("AppendJournal: %v", err)
	}
	if err := errors.Join(j.Started(clockEpoch.Add(time.Hour)), j.Result(journalResult(1, Unknown)),
		j.Result(journalResult(2, Applied)), j.Intent(newOp(3, "us", "t3", ToggleStatus), 1)); err != nil {
		t.Fatal(err)
	}
	closeJournal(t, j)

	st := mustRead(t, path)
	if st.Runs != 2 {
		t.Errorf("Runs = %d, want 2", st.Runs)
	}
	if st.Header.InputSHA256 != testHeader.InputSHA256 {
		t.Errorf("header lost: %+v", st.Header)
	}
	checkSettled(t, st, 10, 0, 1, 2)
	if _, ok := st.InFlight[1]; ok || len(st.InFlight) != 1 {
		t.Errorf("InFlight = %v, want only row 3", st.InFlight)
	}
	if _, ok := st.InFlight[3]; !ok {
		t.Errorf("InFlight = %v, want row 3", st.InFlight)
	}
}

// TestJournalCanaryIsTheFirstRecorded: a resume reads the canary's rows
// as the first process that ran one recorded them, and they leave the
// rows' outcomes and the outcome index alone.
func TestJournalCanaryIsTheFirstRecorded(t *testing.T) {
	j, path := newTestJournal(t)
	if err := errors.Join(j.Started(clockEpoch), j.Canary([]int{0, 3}), j.Result(journalResult(0, Failed))); err != nil {
		t.Fatal(err)
	}
	closeJournal(t, j)
	j, err := AppendJournal(path)
	if err != nil {
		t.Fatalf("AppendJournal: %v", err)
	}
	if err := errors.Join(j.Started(clockEpoch.Add(time.Hour)), j.Canary([]int{5})); err != nil {
		t.Fatal(err)
	}
	closeJournal(t, j)
	st := mustRead(t, path)
	if !slices.Equal(st.Canary, []int{0, 3}) {
		t.Errorf("Canary = %v, want [0 3]", st.Canary)
	}
	checkSettled(t, st, 10, 0)
	idx, err := OpenOutcomeIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	if res, ok, err := idx.Lookup(Op{Index: 0}); err != nil || !ok || res.Outcome != Failed {
		t.Errorf("Lookup(0) = %v, %v, %v", res.Outcome, ok, err)
	}
}

// TestJournalAppendAfterTornLine: the run that died mid-write left a torn
// last line; the resumed run's records must not be glued onto it.
func TestJournalAppendAfterTornLine(t *testing.T) {
	j, path := newTestJournal(t)
	if err := j.Result(journalResult(0, Applied)); err != nil {
		t.Fatal(err)
	}
	closeJournal(t, j)
	appendBytes(t, path, `{"type":"result","i":1,"li`)

	j, err := AppendJournal(path)
	if err != nil {
		t.Fatalf("AppendJournal: %v", err)
	}
	if err := errors.Join(j.Started(clockEpoch), j.Result(journalResult(2, Applied))); err != nil {
		t.Fatal(err)
	}
	closeJournal(t, j)

	st, err := ReadJournal(path)
	if err != nil {
		t.Fatalf("ReadJournal after a resume over a torn line: %v", err)
	}
	checkSettled(t, st, 10, 0, 2)
	if st.Runs != 1 {
		t.Errorf("Runs = %d, want 1 (the resume's Started)", st.Runs)
	}
}

func TestJournalWithoutHeader(t *testing.T) {
	for name, content := range map[string]string{
		"empty":            "",
		"torn header":      `{"type":"header","vers`,
		"records, no head": `{"type":"result","i":0}` + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), JournalName)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadJournal(path); !errors.Is(err, ErrNoHeader) {
				t.Errorf("ReadJournal = %v, want ErrNoHeader", err)
			}

			j, err := RestartJournal(path, testHeader)
			if err != nil {
				t.Fatalf("RestartJournal: %v", err)
			}
			closeJournal(t, j)
			st := mustRead(t, path)
			if st.Header.InputSHA256 != testHeader.InputSHA256 || st.Runs != 0 {
				t.Errorf("after RestartJournal: header %+v runs %d", st.Header, st.Runs)
			}
			checkSettled(t, st, 5)
		})
	}
}

func TestJournalCorruptLineIsAnError(t *testing.T) {
	j, path := newTestJournal(t)
	closeJournal(t, j)
	appendBytes(t, path, "not json\n")
	if _, err := ReadJournal(path); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("ReadJournal = %v, want an error naming line 2", err)
	}
}

func TestJournalOutcomeIndex(t *testing.T) {
	const rows = 400
	j, path := newTestJournal(t)
	want := map[int]Result{}
	order := rand.Perm(rows)
	for n, i := range order {
		if i%5 == 4 {
			continue // rows with no outcome
		}
		res := journalResult(i, Outcomes[i%len(Outcomes)])
		res.Message = strings.Repeat("m", i*7) // some records span several read chunks
		want[i] = res
		if n%3 == 0 {
			if err := j.Intent(newOp(i, res.Target, res.User, ToggleStatus), 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := j.Result(res); err != nil {
			t.Fatal(err)
		}
	}
	// A row recorded again by a later run: the last record is its outcome.
	again := journalResult(10, Applied)
	again.Detail = "second run"
	want[10] = again
	if err := errors.Join(j.Started(clockEpoch), j.Result(again)); err != nil {
		t.Fatal(err)
	}
	closeJournal(t, j)

	idx, err := OpenOutcomeIndex(path)
	if err != nil {
		t.Fatalf("OpenOutcomeIndex: %v", err)
	}
	defer func() {
		if err := idx.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	for _, i := range append(rand.Perm(rows), rows, rows+1000) {
		w, wantOK := want[i]
		got, ok, err := idx.Lookup(opOf(i, w))
		if err != nil {
			t.Fatalf("Lookup(%d): %v", i, err)
		}
		if ok != wantOK {
			t.Errorf("Lookup(%d) found = %v, want %v", i, ok, wantOK)
			continue
		}
		if ok && !reflect.DeepEqual(got, w) {
			t.Errorf("Lookup(%d) = %+v\nwant %+v", i, got, w)
		}
	}
}

func TestReplay(t *testing.T) {
	const input = "target,user,action,note\n" +
		"a,u0,disable,n0\n" + // 0: recorded applied
		"a,,disable,n1\n" + // 1: invalid, empty user
		"b,u2,enable,n2\n" + // 2: another shard's
		"a,u3,enable,n3\n" + // 3: never run
		"a,u4,explode,n4\n" + // 4: invalid, unknown action
		"a,u5,block,n5\n" + // 5: recorded failed
		"b,,explode,n6\n" // 6: invalid, and another shard's: left out like valid ones
	j, path := newTestJournal(t)
	r0, r5 := journalResult(0, Applied), journalResult(5, Failed)
	r0.Target, r0.User = "a", "u0" // as the pipeline records the input's rows
	r5.Target, r5.User = "a", "u5" // "block" reads as disable
	if err := errors.Join(j.Result(r0), j.Result(r5)); err != nil {
		t.Fatal(err)
	}
	closeJournal(t, j)
	idx, err := OpenOutcomeIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	onlyA := func(op Op) bool { return op.Target == "a" }
	const notRun = "the run stopped before this row"

	replay := func(t *testing.T, outcomes *OutcomeIndex) (map[int]Result, []int) {
		t.Helper()
		p, err := NewParser(strings.NewReader(input), nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int]Result{}
		var seen []int
		err = Replay(p, outcomes, onlyA, notRun, func(row Row, res Result) error {
			if row.Index != res.Index {
				t.Errorf("row %d paired with result %d", row.Index, res.Index)
			}
			if note := row.Record[3]; note != fmt.Sprintf("n%d", row.Index) {
				t.Errorf("row %d: passthrough cell %q", row.Index, note)
			}
			got[res.Index] = res
			seen = append(seen, res.Index)
			return nil
		})
		if err != nil {
			t.Fatalf("Replay: %v", err)
		}
		return got, seen
	}

	t.Run("with outcomes", func(t *testing.T) {
		got, seen := replay(t, idx)
		if want := []int{0, 1, 3, 4, 5}; !reflect.DeepEqual(seen, want) {
			t.Errorf("rows replayed %v, want %v in input order", seen, want)
		}
		if !reflect.DeepEqual(got[0], r0) || !reflect.DeepEqual(got[5], r5) {
			t.Errorf("recorded rows: %+v and %+v, want the journal's results", got[0], got[5])
		}
		inv := got[1]
		if inv.Outcome != Invalid || inv.ErrorCode != "invalid" || inv.Line != 3 || inv.Action != Disable ||
			inv.Target != "a" || !strings.Contains(inv.Message, "user: user is empty") || !strings.Contains(inv.Detail, "never sent") {
			t.Errorf("invalid row: %+v", inv)
		}
		if got[4].Outcome != Invalid || got[4].Action != "explode" {
			t.Errorf("row with an unknown action: %+v, want invalid with the action as written", got[4])
		}
		want3 := Result{Index: 3, Line: 5, Target: "a", User: "u3", Action: Enable, Outcome: Skipped, Detail: notRun}
		if !reflect.DeepEqual(got[3], want3) {
			t.Errorf("row never run: %+v\nwant %+v", got[3], want3)
		}
	})

	t.Run("without outcomes", func(t *testing.T) {
		got, _ := replay(t, nil)
		for _, i := range []int{0, 3, 5} {
			if got[i].Outcome != Skipped || got[i].Detail != notRun {
				t.Errorf("row %d: %s %q, want skipped with the not-run detail", i, got[i].Outcome, got[i].Detail)
			}
		}
	})

	t.Run("callback error stops it", func(t *testing.T) {
		p, err := NewParser(strings.NewReader(input), nil)
		if err != nil {
			t.Fatal(err)
		}
		errWrite := errors.New("report full")
		calls := 0
		err = Replay(p, idx, nil, notRun, func(Row, Result) error {
			calls++
			return errWrite
		})
		if !errors.Is(err, errWrite) || calls != 1 {
			t.Errorf("Replay = %v after %d calls, want the callback's error after 1", err, calls)
		}
	})
}

// resultSynced records res and syncs at once: what Result would cost
// without batching.
func resultSynced(j *Journal, res Result) error {
	if err := j.Result(res); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.syncLocked()
}

// BenchmarkJournal compares recording outcomes with batched syncs (Result)
// against syncing every record, and against Intent, which always syncs.
func BenchmarkJournal(b *testing.B) {
	res := journalResult(0, Applied)
	op := newOp(0, "eu", "user-0", ToggleStatus)
	cases := []struct {
		name   string
		record func(j *Journal, i int) error
	}{
		{"Result/batched", func(j *Journal, i int) error { res.Index = i; return j.Result(res) }},
		{"Result/sync-every", func(j *Journal, i int) error { res.Index = i; return resultSynced(j, res) }},
		{"Intent", func(j *Journal, i int) error { op.Index = i; return j.Intent(op, 1) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			j, _ := newTestJournal(b)
			defer closeJournal(b, j)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := c.record(j, i); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestAppendResultMatchesJSON: the hand-written encoder reads back exactly
// as encoding/json's, escapes included.
func TestAppendResultMatchesJSON(t *testing.T) {
	for _, r := range []Result{
		{Index: 3, Line: 5, Target: "shop", User: "u1", Action: Disable, Outcome: Applied, HTTPStatus: 200, Attempts: 1,
			Duration: 1500 * time.Microsecond, FinishedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)},
		{Index: 0, Line: 2, Target: "t\"q", User: "ü\\x\n<&>", Action: ToggleStatus, Outcome: Unknown,
			ErrorCode: "network", Message: "connection \x01 dropped", Detail: "check\tby hand", Retries: 2},
	} {
		line := appendResultV1(nil, &r)
		var got struct{ Result }
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if !reflect.DeepEqual(got.Result, r) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got.Result, r)
		}
		var typ struct{ Type string }
		_ = json.Unmarshal(line, &typ)
		if typ.Type != "result" || line[len(line)-1] != '\n' {
			t.Errorf("record %q", line)
		}
	}
}
