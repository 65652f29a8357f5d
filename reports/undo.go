package reports

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/userbatch/userbatch/batch"
)

// ColUndoNote is undo.csv's column explaining a row that cannot run as it is.
const ColUndoNote = "undo_note"

// noteNoUndo is the note of an undo row for a change no one knows how to
// reverse.
const noteNoUndo = "no undo is known for this action"

// undoOps appends to dst the operations that reverse op, which was applied:
// the target's vendor's word (inv), else a status change's opposite.
func undoOps(dst []batch.Inverse, op batch.Op, inv batch.Inverter) []batch.Inverse {
	if inv != nil {
		if out := inv.Invert(op); len(out) > 0 {
			return append(dst, out...)
		}
	}
	switch op.Action {
	case batch.Disable:
		return append(dst, batch.Inverse{Action: batch.Enable})
	case batch.Enable:
		return append(dst, batch.Inverse{Action: batch.Disable})
	case batch.ToggleStatus:
		return append(dst, batch.Inverse{Action: batch.ToggleStatus})
	}
	// An action no one knows how to reverse: an empty action cell fails
	// validation, so the row is listed but cannot run unexamined.
	return append(dst, batch.Inverse{Note: noteNoUndo})
}

// undoFile is undo.csv: the input's columns, then the columns an undo row may
// have to set that the input lacks. Rows are in reverse input order, so that
// a user changed twice is changed back in the right order: they wait in a
// spool on disk until finish copies them out last first.
type undoFile struct {
	csv   *csvFile // the header is written at once, the rows by finish
	spool *spool
	out   []string        // neutralised copy of the line being spooled, reused
	rows  int             // rows spooled
	names []string        // the header
	width int             // len(h.Names): the cells copied from the row
	rec   []string        // the line being built, reused
	ops   []batch.Inverse // the undo rows of the row being written, reused
	// inverters are the targets' vendors' (Options.Inverters).
	inverters map[string]batch.Inverter

	// Indexes into names of the cells undo rows set; -1 when absent.
	action, role, note int
	// cells are the indexes of the vendor columns undo rows set.
	cells map[string]int
}

// newUndoFile lays out undo.csv's columns for an input with header h.
//
// Columns are added only where an undo row needs them. action is always set.
// role needs no adding: a role action is invalid without a role column.
// A vendor column is added when the vendor says an operator may have to
// fill it in (Inverter.UndoColumns). Undo rows copy the cells of the
// columns that Carry (a caller's email) and set the others themselves. undo_note is added unless the input has
// it (an undo.csv being undone).
func newUndoFile(c *csvFile, sp *spool, h batch.Header, opt Options) *undoFile {
	sp.comma = c.comma
	u := &undoFile{csv: c, spool: sp, names: append([]string(nil), h.Names...), width: len(h.Names),
		inverters: opt.Inverters, cells: map[string]int{}}
	u.action = u.column(h, batch.ColAction, true)
	u.role = u.column(h, batch.ColRole, false)
	for _, col := range opt.Columns {
		if i, ok := h.Known[col.Name]; ok && !col.Carry {
			u.cells[col.Name] = i
		}
	}
	for _, target := range slices.Sorted(maps.Keys(opt.Inverters)) {
		for _, col := range opt.Inverters[target].UndoColumns(h) {
			if _, ok := u.cells[col]; !ok {
				u.cells[col] = u.column(h, col, true)
			}
		}
	}
	u.note = -1
	for i, n := range h.Names {
		if strings.EqualFold(strings.TrimSpace(n), ColUndoNote) {
			u.note = i
		}
	}
	if u.note < 0 {
		u.note = len(u.names)
		u.names = append(u.names, ColUndoNote)
	}
	u.rec = make([]string, len(u.names))
	return u
}

// column returns the index of the known column col, appending it to the
// header when the input lacks it and add is true; -1 when it is left out.
func (u *undoFile) column(h batch.Header, col string, add bool) int {
	if i, ok := h.Known[col]; ok {
		return i
	}
	if !add {
		return -1
	}
	u.names = append(u.names, col)
	return len(u.names) - 1
}

func (u *undoFile) writeHeader() error { return u.csv.writeHeader(u.names) }

// write spools the undo rows of row, an applied row.
func (u *undoFile) write(row batch.Row) error {
	u.ops = undoOps(u.ops[:0], row.Op, u.inverters[row.Op.Target])
	if err := u.spool.startGroup(); err != nil {
		return err
	}
	for _, op := range u.ops {
		u.out = u.out[:0]
		for _, cell := range u.line(row.Record, op, row.Line) {
			u.out = append(u.out, Neutralize(cell))
		}
		u.rows++
		if err := u.spool.write(u.out); err != nil {
			return err
		}
	}
	return nil
}

// finish copies the spooled rows into undo.csv, last input row first, and
// flushes, syncs and closes it. The spool is closed in any case.
func (u *undoFile) finish() error {
	defer u.spool.close()
	if err := u.spool.copyReversed(u.csv.buf); err != nil {
		u.csv.f.Close()
		return err
	}
	u.csv.rows += u.rows
	return u.csv.finish()
}

// line copies rec (target, user, the vendor and passthrough columns carry
// over unchanged) and sets the cells op decides.
func (u *undoFile) line(rec []string, op batch.Inverse, line int) []string {
	for i := range u.rec {
		u.rec[i] = ""
		if i < u.width {
			u.rec[i] = field(rec, i)
		}
	}
	u.set(u.action, string(op.Action))
	u.set(u.role, op.Role)
	for _, i := range u.cells {
		u.set(i, "")
	}
	for _, c := range op.Cells {
		if i, ok := u.cells[c.Column]; ok {
			u.set(i, c.Value)
		}
	}
	u.set(u.note, UndoNote(line, op.Note))
	return u.rec
}

// UndoNote is an undo row's note: which input line it reverses (so the
// operator, and `report merge`, can tell), then what to fix, if anything.
func UndoNote(line int, note string) string {
	s := "reverses line " + strconv.Itoa(line)
	if note != "" {
		s += "; " + note
	}
	return s
}

// UndoLine reads the input line back from an undo note; 0 when it has none.
func UndoLine(note string) int {
	rest, ok := strings.CutPrefix(note, "reverses line ")
	if !ok {
		return 0
	}
	end := strings.IndexByte(rest, ';')
	if end < 0 {
		end = len(rest)
	}
	n, _ := strconv.Atoi(rest[:end])
	return n
}

func (u *undoFile) set(i int, v string) {
	if i >= 0 {
		u.rec[i] = v
	}
}
