package batch

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// asRecorded is r as a version 2 journal gives it back: times and
// durations to the µs, in UTC, and strings as JSON holds them (valid UTF-8).
func asRecorded(r Result) Result {
	r.Detail, r.Message = strings.ToValidUTF8(r.Detail, "\uFFFD"), strings.ToValidUTF8(r.Message, "\uFFFD")
	r.Duration = r.Duration.Truncate(time.Microsecond)
	if !r.FinishedAt.IsZero() {
		r.FinishedAt = r.FinishedAt.UTC().Truncate(time.Microsecond)
	}
	return r
}

// TestCompactResultRoundTrip: what appendResult writes reads back whole,
// by the fast path or, for strings with escapes, by encoding/json, with or
// without a time base.
func TestCompactResultRoundTrip(t *testing.T) {
	started := time.Date(2026, 11, 30, 15, 0, 0, 987654321, time.UTC)
	for _, base := range []time.Time{{}, timeBase(started)} {
		for _, r := range decodeCases() {
			for _, o := range append(Outcomes, "some_new_outcome") {
				r.Outcome = o
				line := appendResult(nil, &r, base)
				cr, compact, err := decodeResult(line, map[string]string{})
				if err != nil || !compact {
					t.Fatalf("decodeResult(%s) = %v, compact %v", line, err, compact)
				}
				got := cr.finish(opOf(r.Index, r), base)
				if want := asRecorded(r); !reflect.DeepEqual(got, want) {
					t.Errorf("decodeResult(%s)\n = %+v\nwant %+v", line, got, want)
				}
				if i, err := resultRowIndex(line); err != nil || i != r.Index {
					t.Errorf("resultRowIndex(%s) = %d, %v", line, i, err)
				}
				if typ, err := recordType(line); typ != "result" || err != nil {
					t.Errorf("recordType(%s) = %q, %v", line, typ, err)
				}
			}
		}
	}
}

// TestCompactRecordsRefuseOtherLayouts: a damaged record is an error, never
// a row read wrong.
func TestCompactRecordsRefuseOtherLayouts(t *testing.T) {
	r := decodeCases()[0]
	line := string(appendResult(nil, &r, time.Time{}))
	for name, bad := range map[string]string{
		"no outcome":  strings.Replace(line, `,"o":"a"`, "", 1),
		"leading 0":   strings.Replace(line, `"i":7`, `"i":07`, 1),
		"torn":        line[:len(line)-10],
		"not a value": strings.Replace(line, `"h":200`, `"h":x`, 1),
	} {
		if _, _, err := decodeResult([]byte(bad), nil); err == nil {
			t.Errorf("%s: decodeResult took %s", name, bad)
		}
		if _, err := resultRowIndex([]byte(bad)); err == nil {
			t.Errorf("%s: resultRowIndex took %s", name, bad)
		}
	}
	// Keys in another order, or unknown to this version, are JSON still.
	moved := `{"o":"a","t":"r","x":1,"i":7}` + "\n"
	if typ, err := recordType([]byte(moved)); typ != "result" || err != nil {
		t.Errorf("recordType(%s) = %q, %v", moved, typ, err)
	}
	if cr, _, err := decodeResult([]byte(moved), nil); err != nil || cr.Index != 7 || cr.Outcome != Applied {
		t.Errorf("decodeResult(%s) = %+v, %v", moved, cr, err)
	}
	if i, ok := parseCompactIntent([]byte(`{"t":"i","i":12,"a":3}` + "\n")); !ok || i != 12 {
		t.Errorf("parseCompactIntent = %d, %v", i, ok)
	}
}

// TestResumeJournalOfVersion1: a journal the previous version wrote (long
// records, with each row's identity) resumes after an upgrade: its settled
// rows stay settled, its writes in flight are settled as before, and the
// report reads old and new records alike.
func TestResumeJournalOfVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), JournalName)
	applied := journalResult(0, Applied)
	toggle, disable := newOp(1, "us", "t1", ToggleStatus), newOp(2, "us", "t2", Disable)
	v1 := `{"type":"header","version":1,"input_sha256":"x","targets":["us"],"config_sha256":"c","dry_run":false,"created_at":"0001-01-01T00:00:00Z"}` + "\n" +
		`{"type":"run","started_at":"2030-01-02T03:04:05.123456789Z"}` + "\n" +
		string(appendIntentV1(nil, &Op{Index: 0, Line: 2, Target: "eu", User: "user-0", Action: Disable}, 1)) +
		string(appendResultV1(nil, &applied)) +
		string(appendIntentV1(nil, &toggle, 1)) +
		string(appendIntentV1(nil, &disable, 1))
	if err := os.WriteFile(path, []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	st := mustRead(t, path)
	if st.Header.Version != 1 || !st.Settled(0) || len(st.InFlight) != 2 || st.InFlight[1].Target != "us" {
		t.Fatalf("version 1 journal read as %+v", st)
	}
	// Its intents carry their rows: nothing to read from the input.
	if err := st.FillInFlight(func() (Row, error) { return Row{}, errors.New("the input was read") }); err != nil {
		t.Fatal(err)
	}
	j, err := AppendJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]*Target{"us": {Name: "us", Adapter: &mockAdapter{IdempotentFunc: toggleOnly}}}
	got, err := Resume(j, st, targets, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	later := Result{Index: 2, Line: 4, Target: "us", User: "t2", Action: Disable, Outcome: Applied, HTTPStatus: 200,
		Attempts: 1, Writes: 1, Duration: time.Millisecond, FinishedAt: time.Date(2030, 1, 2, 4, 0, 0, 0, time.UTC)}
	if err := errors.Join(j.Started(time.Date(2030, 1, 2, 3, 59, 0, 0, time.UTC)), j.Result(later)); err != nil {
		t.Fatal(err)
	}
	closeJournal(t, j)
	if !got.Skip(0) || !got.Skip(1) || got.Skip(2) || !got.Interrupted[2] {
		t.Errorf("Resume: skip %v %v %v, interrupted %v", got.Skip(0), got.Skip(1), got.Skip(2), got.Interrupted)
	}
	idx, err := OpenOutcomeIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	for _, c := range []struct {
		op   Op
		want Outcome
	}{{newOp(0, "eu", "user-0", Disable), Applied}, {toggle, Unknown}, {disable, Applied}} {
		res, ok, err := idx.Lookup(c.op)
		if err != nil || !ok || res.Outcome != c.want || res.Target != c.op.Target || res.User != c.op.User {
			t.Errorf("row %d: %+v %v %v, want %s", c.op.Index, res, ok, err, c.want)
		}
	}
	if res, _, _ := idx.Lookup(disable); !reflect.DeepEqual(res, later) {
		t.Errorf("the new record reads back as %+v\nwant %+v", res, later)
	}
	if res, _, _ := idx.Lookup(newOp(0, "eu", "user-0", Disable)); !reflect.DeepEqual(res, applied) {
		t.Errorf("the old record reads back as %+v\nwant %+v", res, applied)
	}
}

// TestJournalOfALaterVersionIsRefused: a journal this version cannot read
// is said so, not read as empty.
func TestJournalOfALaterVersionIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), JournalName)
	// Its records too may be of a layout this version does not know.
	for _, journal := range []string{`{"type":"header","version":3}` + "\n",
		`{"type":"header","version":3}` + "\n" + `{"t":"r","i":0,"outcome":"applied"}` + "\n"} {
		if err := os.WriteFile(path, []byte(journal), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadJournal(path); err == nil || !strings.Contains(err.Error(), "later userbatch") {
			t.Errorf("ReadJournal = %v, want a refusal naming the version", err)
		}
	}
}
