package ledger

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// HistoryFormats are the formats NewHistoryWriter takes, the first the default.
var HistoryFormats = []string{"table", "csv", "json"}

// HistoryColumns is the CSV header, and the keys of each JSON object.
var HistoryColumns = []string{"at", "run_id", "actor", "target", "user", "action", "role",
	"effective_at", "outcome", "state", "input_sha256", "line"}

// HistoryWriter writes entries for `userbatch history`, one Write per entry,
// so it can be handed to Ledger.History as its fn. Close flushes and returns
// the first error met.
//
// Formats: "table" aligns columns for a terminal (it holds every row until
// Close, to measure them); "csv" has the HistoryColumns header, times in RFC
// 3339 UTC, and cells starting with = + - @ prefixed with ' so spreadsheets
// do not run them; "json" is JSON Lines: one object per entry and line, with
// the HistoryColumns keys (empty strings for no effective_at or outcome).
type HistoryWriter struct {
	write func(Entry) error
	close func() error
}

// NewHistoryWriter returns a writer of format (one of HistoryFormats) to w.
func NewHistoryWriter(w io.Writer, format string) (*HistoryWriter, error) {
	switch format {
	case "table":
		return newTableWriter(w), nil
	case "csv":
		return newCSVWriter(w)
	case "json":
		return newJSONWriter(w), nil
	}
	return nil, fmt.Errorf("unknown history format %q (accepted: %s)", format, strings.Join(HistoryFormats, ", "))
}

// Write writes one entry.
func (h *HistoryWriter) Write(e Entry) error { return h.write(e) }

// Close flushes what is buffered; the writer must not be used after.
func (h *HistoryWriter) Close() error { return h.close() }

// cells is e in HistoryColumns order, as text.
func cells(e Entry) []string {
	return []string{e.At.UTC().Format(time.RFC3339Nano), e.RunID, e.Actor, e.Target, e.User, string(e.Action), e.Role,
		formatEffective(e.EffectiveAt), string(e.Outcome), string(e.State), e.InputSHA256, strconv.Itoa(e.Line)}
}

func newCSVWriter(w io.Writer) (*HistoryWriter, error) {
	cw := csv.NewWriter(w)
	if err := cw.Write(HistoryColumns); err != nil {
		return nil, err
	}
	write := func(e Entry) error {
		c := cells(e)
		for i := range c {
			c[i] = neutralize(c[i])
		}
		return cw.Write(c)
	}
	closer := func() error {
		cw.Flush()
		return cw.Error()
	}
	return &HistoryWriter{write: write, close: closer}, nil
}

// neutralize prefixes with ' a cell a spreadsheet would run as a formula,
// as reports.Neutralize does for the report's CSV files (this package does
// not import reports: reports may come to show the ledger).
func neutralize(cell string) string {
	if cell != "" && strings.IndexByte("=+-@\t\r", cell[0]) >= 0 {
		return "'" + cell
	}
	return cell
}

// jsonEntry is one line of the json format.
type jsonEntry struct {
	At          time.Time `json:"at"`
	RunID       string    `json:"run_id"`
	Actor       string    `json:"actor"`
	Target      string    `json:"target"`
	User        string    `json:"user"`
	Action      string    `json:"action"`
	Role        string    `json:"role"`
	EffectiveAt string    `json:"effective_at"`
	Outcome     string    `json:"outcome"`
	State       string    `json:"state"`
	InputSHA256 string    `json:"input_sha256"`
	Line        int       `json:"line"`
}

func newJSONWriter(w io.Writer) *HistoryWriter {
	enc := json.NewEncoder(w)
	write := func(e Entry) error {
		return enc.Encode(jsonEntry{e.At.UTC(), e.RunID, e.Actor, e.Target, e.User, string(e.Action), e.Role,
			formatEffective(e.EffectiveAt), string(e.Outcome), string(e.State), e.InputSHA256, e.Line})
	}
	return &HistoryWriter{write: write, close: func() error { return nil }}
}

// tableSHA is how much of the input's SHA-256 the table shows: enough to
// tell inputs apart; csv and json give it whole.
const tableSHA = 12

func newTableWriter(w io.Writer) *HistoryWriter {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "AT\tRUN\tACTOR\tTARGET\tUSER\tACTION\tROLE\tEFFECTIVE_AT\tOUTCOME\tSTATE\tINPUT\tLINE\n"
	var err error
	_, err = io.WriteString(tw, header)
	write := func(e Entry) error {
		if err != nil {
			return err
		}
		sha := e.InputSHA256
		if len(sha) > tableSHA {
			sha = sha[:tableSHA]
		}
		row := []string{e.At.UTC().Format(time.RFC3339), e.RunID, e.Actor, e.Target, e.User, string(e.Action), e.Role,
			formatEffective(e.EffectiveAt), string(e.Outcome), string(e.State), sha, strconv.Itoa(e.Line)}
		for i := range row {
			row[i] = tableCell(row[i])
		}
		_, err = io.WriteString(tw, strings.Join(row, "\t")+"\n")
		return err
	}
	closer := func() error {
		if err != nil {
			return err
		}
		return tw.Flush()
	}
	return &HistoryWriter{write: write, close: closer}
}

// hidden reports runes that move or hide what a terminal shows.
func hidden(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }

// tableCell keeps a cell on its line and column: "-" for empty, and a value
// holding control or format characters (a tab, a newline, a terminal
// escape, a bidi override) quoted.
func tableCell(s string) string {
	if s == "" {
		return "-"
	}
	if strings.IndexFunc(s, hidden) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
