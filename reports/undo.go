package reports

import (
	"strconv"
	"strings"

	"github.com/userbatch/userbatch/batch"
)

// ColUndoNote is undo.csv's column explaining a row that cannot run as it is.
const ColUndoNote = "undo_note"

// The notes of undo rows whose earlier role is not known. Their role cell is
// left empty, which fails validation: the row cannot run until an operator
// chooses, and userbatch never guesses a role.
const (
	noteUpgrade   = "role before the upgrade is not known: set role to Customer or Preferred Customer"
	noteDowngrade = "role before the downgrade is not known: " +
		"set role to Member or Preferred Customer (with place_genealogy)"
	noteNoUndo = "no undo is known for this action"
)

// undoOp is one row of undo.csv: the cells it sets in a copy of the input row.
type undoOp struct {
	action         batch.Action
	role           string
	placeGenealogy string
	blockUser      string
	note           string
}

// undoOps appends to dst the operations that reverse op, which was applied.
//
// Role order is Customer < Preferred Customer < Member, so an upgrade to
// Preferred Customer can only have started from Customer, and a downgrade to
// Preferred Customer only from Member; the other role changes may have started
// from either of two roles, and their undo leaves the role for an operator to
// fill in.
func undoOps(dst []undoOp, op batch.Op) []undoOp {
	switch op.Action {
	case batch.Disable:
		return append(dst, undoOp{action: batch.Enable})
	case batch.Enable:
		return append(dst, undoOp{action: batch.Disable})
	case batch.ToggleStatus:
		return append(dst, undoOp{action: batch.ToggleStatus})
	case batch.UpgradeRole:
		if op.Role == batch.RolePreferredCustomer {
			return append(dst, undoOp{action: batch.DowngradeRole, role: batch.RoleCustomer, blockUser: "false"})
		}
		return append(dst, undoOp{action: batch.DowngradeRole, blockUser: "false", note: noteUpgrade})
	case batch.DowngradeRole:
		if op.Role == batch.RolePreferredCustomer {
			dst = append(dst, undoOp{action: batch.UpgradeRole, role: batch.RoleMember})
		} else {
			dst = append(dst, undoOp{action: batch.UpgradeRole, note: noteDowngrade})
		}
		if op.BlockUser {
			dst = append(dst, undoOp{action: batch.Enable})
		}
		return dst
	}
	// An action this package does not know: an empty action cell fails
	// validation, so the row is listed but cannot run unexamined.
	return append(dst, undoOp{note: noteNoUndo})
}

// undoFile is undo.csv: the input's columns, then the columns an undo row may
// have to set that the input lacks. Rows are in reverse input order, so that
// a user changed twice is changed back in the right order: they wait in a
// spool on disk until finish copies them out last first.
type undoFile struct {
	csv   *csvFile // the header is written at once, the rows by finish
	spool *spool
	out   []string // neutralised copy of the line being spooled, reused
	rows  int      // rows spooled
	names []string // the header
	width int      // len(h.Names): the cells copied from the row
	rec   []string // the line being built, reused
	ops   []undoOp // the undo rows of the row being written, reused

	// Indexes into names of the cells undo rows set; -1 when absent.
	action, role, placeGenealogy, blockUser, note int
}

// newUndoFile lays out undo.csv's columns for an input with header h.
//
// Columns are added only where an undo row needs them. action is always set.
// role needs no adding: a role action is invalid without a role column.
// place_genealogy is added when the input has role actions but not the
// column, for the operator who answers a note with Preferred Customer.
// block_user needs no adding: undo rows only ever set it false, its default.
// undo_note is added unless the input has it (an undo.csv being undone).
func newUndoFile(c *csvFile, sp *spool, h batch.Header) *undoFile {
	sp.comma = c.comma
	u := &undoFile{csv: c, spool: sp, names: append([]string(nil), h.Names...), width: len(h.Names)}
	u.action = u.column(h, batch.ColAction, true)
	_, hasRole := h.Known[batch.ColRole]
	u.role = u.column(h, batch.ColRole, false)
	u.placeGenealogy = u.column(h, batch.ColPlaceGenealogy, hasRole)
	u.blockUser = u.column(h, batch.ColBlockUser, false)
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
	u.ops = undoOps(u.ops[:0], row.Op)
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

// line copies rec (target, user, email and the passthrough columns carry over
// unchanged) and sets the cells op decides.
func (u *undoFile) line(rec []string, op undoOp, line int) []string {
	for i := range u.rec {
		u.rec[i] = ""
		if i < u.width {
			u.rec[i] = field(rec, i)
		}
	}
	u.set(u.action, string(op.action))
	u.set(u.role, op.role)
	u.set(u.placeGenealogy, op.placeGenealogy)
	u.set(u.blockUser, op.blockUser)
	u.set(u.note, UndoNote(line, op.note))
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
