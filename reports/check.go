package reports

import (
	"strconv"
	"strings"

	"github.com/userbatch/userbatch/batch"
)

// ColCheckReason is check.csv's column saying why the row is there.
const ColCheckReason = "reason"

// Options changes what a Writer writes. The zero value is the default.
type Options struct {
	// Repeatable reports whether sending (target, a) again does no harm
	// when the first request may have arrived: true for requests that set a
	// state. An unknown row goes to failed.csv when it is repeatable, else
	// to check.csv. Nil treats every action but batch.ToggleStatus as
	// repeatable.
	Repeatable func(target string, a batch.Action) bool
	// Excel starts report.csv, failed.csv, check.csv and undo.csv with a
	// UTF-8 byte order mark, so that Excel reads non-ASCII names right, and
	// separates their cells by the input's delimiter (Header.Delimiter: a
	// ';' input came from a region whose Excel splits on ';').
	// userbatch's parser skips the mark when it reads them back.
	Excel bool
	// Inverters say, by target, how its vendor reverses a change for
	// undo.csv; a target without one gets a status change's opposite.
	Inverters map[string]batch.Inverter
	// Columns are the vendor columns the input may have (batch.VendorColumns).
	Columns []batch.Column
}

func (o Options) repeatable(target string, a batch.Action) bool {
	if o.Repeatable == nil {
		return a != batch.ToggleStatus
	}
	return o.Repeatable(target, a)
}

// CheckReason is a check.csv row's reason: which input line it is (so the
// operator, and `report merge`, can tell), what the vendor said, and why
// the row must not be sent again blindly, or, for an already row, why it
// is not in undo.csv.
func CheckReason(line int, res batch.Result) string {
	var b strings.Builder
	b.WriteString("line ")
	b.WriteString(strconv.Itoa(line))
	b.WriteString(": ")
	if res.Outcome == batch.Already {
		b.WriteString(res.Detail)
		b.WriteString("; the user is in the requested state now, but may have been before the run: it is not in undo.csv, check the user by hand before undoing it")
		return b.String()
	}
	said := res.Detail
	if res.Message != "" {
		if said != "" {
			said += ": "
		}
		said += res.Message
	}
	if said != "" {
		b.WriteString(said)
		b.WriteString("; ")
	}
	b.WriteString(string(res.Action))
	b.WriteString(" may have reached the vendor and is not safe to send twice: check the user by hand")
	return b.String()
}

// CheckLine reads the input line back from a check.csv reason; 0 when it
// has none.
func CheckLine(reason string) int {
	rest, ok := strings.CutPrefix(reason, "line ")
	if !ok {
		return 0
	}
	end := strings.IndexByte(rest, ':')
	if end < 0 {
		return 0
	}
	n, err := strconv.Atoi(rest[:end])
	if err != nil {
		return 0
	}
	return n
}
