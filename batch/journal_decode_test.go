package batch

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// decodeCases are results as the journal meets them: plain ones, which
// parseResult reads itself, and ones with strings appendField escapes,
// which go to encoding/json.
func decodeCases() []Result {
	at := time.Date(2026, 11, 30, 15, 4, 5, 123456789, time.UTC)
	plain := Result{Index: 7, Line: 9, Target: "shop", User: "user-0000007", Action: Disable, Outcome: Applied,
		Detail: "done", HTTPStatus: 200, Attempts: 2, ErrorCode: "rate_limited", Message: "ok then",
		Duration: 1500 * time.Microsecond, FinishedAt: at, Retries: 1, Writes: 1}
	cases := []Result{plain, {Index: 0, Line: 2, Target: "t", User: "u", Action: Enable, Outcome: Skipped}}
	for _, s := range []string{`quo"te`, `back\slash`, "tab\there", "naïve", "<&>", "\u2028", "\xff"} {
		r := plain
		r.User, r.Message = s, s
		cases = append(cases, r)
	}
	neg := plain
	neg.Index, neg.Duration = 1<<40, -5
	neg.FinishedAt = at.In(time.FixedZone("", -7*3600))
	return append(cases, neg)
}

// TestDecodeResultMatchesJSON: whatever appendResultV1 writes (a journal
// of version 1), decodeResult reads as encoding/json does.
func TestDecodeResultMatchesJSON(t *testing.T) {
	for _, r := range decodeCases() {
		line := appendResultV1(nil, &r)
		var want struct{ Result }
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		got, err := decodeResultV1(line)
		if err != nil {
			t.Fatalf("decodeResult(%s): %v", line, err)
		}
		if !reflect.DeepEqual(got, want.Result) {
			t.Errorf("decodeResult(%s)\n = %+v\nwant %+v", line, got, want.Result)
		}
	}
}

// TestParseResultReadsRecordsWithoutWrites: a journal written before
// results counted their writes still resumes, its rows counted as reads.
func TestParseResultReadsRecordsWithoutWrites(t *testing.T) {
	r := decodeCases()[0]
	line := strings.Replace(string(appendResultV1(nil, &r)), `,"writes":1`, "", 1)
	got, ok := parseResult([]byte(line))
	r.Writes = 0
	if !ok || !reflect.DeepEqual(got, r) {
		t.Errorf("parseResult(%s) = %+v, %v; want %+v", line, got, ok, r)
	}
}

// TestParseResultTakesOnlyItsOwnLayout: a line in another layout, or one
// that is not valid JSON, is left to encoding/json, which decides.
func TestParseResultTakesOnlyItsOwnLayout(t *testing.T) {
	r := decodeCases()[0]
	line := string(appendResultV1(nil, &r))
	for name, bad := range map[string]string{
		"leading zero":   strings.Replace(line, `"i":7`, `"i":07`, 1),
		"no digits":      strings.Replace(line, `"i":7`, `"i":-`, 1),
		"overflow":       strings.Replace(line, `"i":7`, `"i":99999999999999999999`, 1),
		"escape":         strings.Replace(line, `"user":"user-0000007"`, `"user":"user\u002d0000007"`, 1),
		"fields swapped": strings.Replace(line, `"line":9,"target":"shop"`, `"target":"shop","line":9`, 1),
		"bad time":       strings.Replace(line, "2026-11-30T", "2026-13-30T", 1),
		"trailing":       strings.TrimSuffix(line, "\n") + " x\n",
		"torn":           line[:len(line)-10],
	} {
		if _, ok := parseResult([]byte(bad)); ok {
			t.Errorf("%s: parseResult took %s", name, bad)
		}
		var want struct{ Result }
		jerr := json.Unmarshal([]byte(bad), &want)
		got, err := decodeResultV1([]byte(bad))
		if (err == nil) != (jerr == nil) || err == nil && !reflect.DeepEqual(got, want.Result) {
			t.Errorf("%s: decodeResult = %+v, %v; encoding/json: %+v, %v", name, got, err, want.Result, jerr)
		}
	}
}

// TestOutcomeIndexAcrossBlocks: rows far apart, written out of order and
// overwritten (a resume's later outcome wins), are found through the
// index's block cache and the journal window, and rows with no outcome are
// not.
func TestOutcomeIndexAcrossBlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), JournalName)
	j, err := CreateJournal(path, JournalHeader{InputSHA256: "x"})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("m", 200<<10) // near the longest record accepted
	var want = map[int]Result{}
	// Blocks hold 8192 rows and slotBlocks are cached: touch more blocks
	// than that, backwards and forwards.
	var order []int
	for k := 0; k < 3*slotBlocks; k++ {
		order = append(order, (3*slotBlocks-k)*8192+k, k*8192+1)
	}
	for n, i := range append(order, order[3], order[0]) {
		r := Result{Index: i, Line: i + 2, Target: "shop", User: "u", Action: Disable, Outcome: Applied,
			Message: strings.Repeat("x", n), FinishedAt: time.Unix(int64(n), 0).UTC()}
		if n == 5 {
			r.Message = long
		}
		if err := j.Result(r); err != nil {
			t.Fatal(err)
		}
		want[i] = r
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	idx, err := OpenOutcomeIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	for _, i := range append(order, 0, 2, 8191, 3*slotBlocks*8192+99) {
		w, has := want[i]
		got, ok, err := idx.Lookup(opOf(i, w))
		if err != nil {
			t.Fatalf("Lookup(%d): %v", i, err)
		}
		if ok != has || has && !reflect.DeepEqual(got, w) {
			t.Errorf("Lookup(%d) = %v, %+v; want %v, %+v", i, ok, got.Index, has, w.Index)
		}
	}
	if _, _, err := idx.Lookup(Op{Index: -1}); err == nil {
		t.Error("Lookup(-1): no error")
	}
}

// TestOutcomeIndexRefusesABadResult: a result record that is not JSON
// fails the index with its line, as before the fast path.
func TestOutcomeIndexRefusesABadResult(t *testing.T) {
	path := filepath.Join(t.TempDir(), JournalName)
	j, err := CreateJournal(path, JournalHeader{InputSHA256: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"type":"result","i":1,"line":` + "\n")
	f.Close()
	if _, err := OpenOutcomeIndex(path); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("OpenOutcomeIndex = %v; want an error naming line 2", err)
	}
	if _, err := ReadJournal(path); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("ReadJournal = %v; want an error naming line 2", err)
	}
}

// TestAppendIntentMatchesJSON: the hand-made intent record reads back as
// the one encoding/json made, which ReadJournal decodes.
func TestAppendIntentMatchesJSON(t *testing.T) {
	for _, r := range decodeCases() {
		op := Op{Index: r.Index, Line: r.Line, Target: r.Target, User: r.User, Action: r.Action}
		for _, attempt := range []int{0, 1, 3} {
			res := &Result{Index: op.Index, Line: op.Line, Target: op.Target, User: op.User, Action: op.Action}
			want, err := json.Marshal(record{Type: "intent", Result: res, Attempt: attempt})
			if err != nil {
				t.Fatal(err)
			}
			got := appendIntentV1(nil, &op, attempt)
			if !(strings.ContainsAny(r.User, "<&>\u2028") || strings.ContainsRune(r.User, utf8.RuneError)) && string(got) != string(want)+"\n" {
				t.Errorf("appendIntent = %s\nwant %s", got, want)
			}
			var a, b record
			if err := json.Unmarshal(got, &a); err != nil {
				t.Fatalf("%s: %v", got, err)
			}
			if err := json.Unmarshal(want, &b); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a, b) {
				t.Errorf("appendIntent reads back as %+v, json.Marshal's as %+v", a.Result, b.Result)
			}
		}
	}
}

// TestResultIndexMatchesJSON: the index takes a record's row index where
// encoding/json reads one (a bad time included, as before), and leaves the
// rest to encoding/json.
func TestResultIndexMatchesJSON(t *testing.T) {
	r := decodeCases()[0]
	line := string(appendResultV1(nil, &r))
	for _, l := range []string{line, strings.Replace(line, "2026-11-30T", "2026-13-30T", 1),
		strings.Replace(line, `"i":7`, `"i":07`, 1), line[:len(line)-10]} {
		var rec struct {
			Index int `json:"i"`
		}
		jerr := json.Unmarshal([]byte(l), &rec)
		if i, ok := resultIndex([]byte(l)); ok && (jerr != nil || i != rec.Index) {
			t.Errorf("resultIndex(%s) = %d; encoding/json: %d, %v", l, i, rec.Index, jerr)
		}
	}
	if i, ok := resultIndex([]byte(line)); !ok || i != 7 {
		t.Errorf("resultIndex = %d, %v; want 7", i, ok)
	}
}

// TestParseIntentMatchesJSON: intents in appendIntent's layout are read as
// encoding/json reads them; lines in any other layout are left to it.
func TestParseIntentMatchesJSON(t *testing.T) {
	for _, r := range decodeCases() {
		op := Op{Index: r.Index, Line: r.Line, Target: r.Target, User: r.User, Action: r.Action}
		for _, attempt := range []int{0, 2} {
			line := appendIntentV1(nil, &op, attempt)
			var want struct{ Result }
			if err := json.Unmarshal(line, &want); err != nil {
				t.Fatal(err)
			}
			got, ok := parseIntent(line, true)
			if plain := !(strings.ContainsAny(r.User, "\"\\\t\u00ef\u2028") || strings.ContainsRune(r.User, utf8.RuneError)); ok != plain {
				t.Errorf("parseIntent(%s): ok %v, want %v", line, ok, plain)
			}
			if ok && !reflect.DeepEqual(got, want.Result) {
				t.Errorf("parseIntent(%s) = %+v; want %+v", line, got, want.Result)
			}
			if typ, err := recordType(line); typ != "intent" || err != nil {
				t.Errorf("recordType(%s) = %q, %v", line, typ, err)
			}
		}
	}
	line := string(appendIntentV1(nil, &Op{Index: 1, Line: 3, Target: "t", User: "u", Action: Enable}, 1))
	for _, bad := range []string{line[:len(line)-5], strings.Replace(line, `"attempt":1`, `"attempt":x`, 1),
		strings.Replace(line, `"attempts":0`, `"attempts":1`, 1)} {
		if _, ok := parseIntent([]byte(bad), false); ok {
			t.Errorf("parseIntent took %s", bad)
		}
	}
}
