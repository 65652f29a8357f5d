package declarative

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/userbatch/userbatch/batch"
)

// Columns are the vendor columns a spec may read, beside user, action and
// role. Their names and kinds are those of the vendors the builtin specs
// describe, so that a file reads the same through a spec.
var Columns = []batch.Column{
	{Name: "place_genealogy", Kind: batch.Flag, Accepted: "true or false"},
	{Name: "block_user", Kind: batch.Flag, Accepted: "true or false"},
	{Name: "email", Kind: batch.Email, Accepted: "an email address such as ops@example.com", Carry: true},
}

// columnNames are the columns a spec may read, role first.
func columnNames() []string {
	names := []string{batch.ColRole}
	for _, c := range Columns {
		names = append(names, c.Name)
	}
	return names
}

// Column is a row's cell for a column a spec reads, as the pipeline parsed
// it ("true"/"false" for a flag, unset meaning false; "" when unknown).
func Column(op batch.Op, name string) string {
	if name == batch.ColRole {
		return op.Role
	}
	v := op.Cell(name)
	if v == "" && slices.ContainsFunc(Columns, func(c batch.Column) bool { return c.Name == name && c.Kind == batch.Flag }) {
		return "false"
	}
	return v
}

func knownColumn(name string) bool { return slices.Contains(columnNames(), name) }

// wire is cell s as the vendor takes it: the target's fallback key when the
// cell is empty, an enum value in the spec's spelling, a flag spelled as
// the spec says.
func (c *columnSpec) wire(s string, config map[string]string) string {
	if s == "" && c.Fallback != "" {
		s = config[c.Fallback]
	}
	switch {
	case c.Type == "bool" && s == "true" && c.True != "":
		return c.True
	case c.Type == "bool" && s == "false" && c.False != "":
		return c.False
	}
	for _, e := range c.Enum {
		if strings.EqualFold(e, s) {
			return e
		}
	}
	return s
}

// holds reports whether every column in cond holds the value named, in any
// case ("true"/"false" for a flag).
func holds(cond map[string]string, op *batch.Op) bool {
	for col, want := range cond {
		if !strings.EqualFold(Column(*op, col), want) {
			return false
		}
	}
	return true
}

// problems checks op's cells against the columns its action declares, as
// `validate` does for every column: required, enum, email.
func (c *columnSpec) problems(op batch.Op, config map[string]string, target string) []batch.Problem {
	s := Column(op, c.Name)
	if s == "" && c.Fallback != "" {
		s = config[c.Fallback]
	}
	var out []batch.Problem
	add := func(msg, accepted string) {
		out = append(out, batch.Problem{Line: op.Line, Column: c.Name, Value: Column(op, c.Name), Msg: msg, Accepted: accepted})
	}
	switch {
	case s == "" && c.Required && holds(c.When, &op):
		msg := c.Name + " is empty"
		if c.Fallback != "" {
			msg = fmt.Sprintf("%s is empty and target %s has no %s", c.Name, target, c.Fallback)
		}
		add(msg, c.accepted())
	case s != "" && len(c.Enum) > 0 && !inFold(c.Enum, s):
		add(fmt.Sprintf("%s %q is not valid for %s", c.Name, s, op.Action), c.accepted())
	case s != "" && c.Type == "email" && !strings.Contains(s, "@"):
		add(c.Name+" has no @", c.accepted())
	}
	return out
}

func (c *columnSpec) accepted() string {
	switch {
	case len(c.Enum) > 0:
		return strings.Join(c.Enum, " or ")
	case c.Type == "bool":
		return "true or false"
	case c.Type == "email" && c.Fallback != "":
		return "an email address, in the row or as the target's " + c.Fallback + " setting"
	case c.Type == "email":
		return "an email address such as ops@example.com"
	}
	return "a value"
}

func inFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// Columns are the vendor columns the spec reads, for the parser.
func (s *Spec) Columns() []batch.Column {
	var out []batch.Column
	for _, c := range Columns {
		if s.reads(c.Name) {
			out = append(out, c)
		}
	}
	return out
}

// reads reports whether any of the spec's columns is name.
func (s *Spec) reads(name string) bool {
	has := func(cs []columnSpec) bool {
		return slices.ContainsFunc(cs, func(c columnSpec) bool { return c.Name == name })
	}
	if has(s.file.Columns) {
		return true
	}
	for _, a := range s.file.Actions {
		if has(a.Columns) {
			return true
		}
	}
	return false
}

// Validate checks op's cells against the columns op's action declares;
// settings are the target's keys (a column's fallback).
func (s *Spec) Validate(op batch.Op, settings map[string]string) (batch.Op, []batch.Problem) {
	return op, s.ColumnProblems(op, settings, op.Target)
}

// Invert lists the undo rows for op, applied, as the spec's invert says;
// none when it says nothing of op's action.
func (s *Spec) Invert(op batch.Op) []batch.Inverse {
	var out []batch.Inverse
	for _, inv := range s.file.Invert[actionName(op.Action)] {
		if (len(inv.When) > 0 && !holds(inv.When, &op)) || (len(inv.Unless) > 0 && holds(inv.Unless, &op)) {
			continue
		}
		out = append(out, inv.inverse())
	}
	return out
}

// inverse is the undo row an invert entry sets: role apart, the other
// cells by column.
func (inv *inverse) inverse() batch.Inverse {
	out := batch.Inverse{Action: batch.Action(inv.Action), Note: inv.Note}
	for _, col := range slices.Sorted(maps.Keys(inv.Set)) {
		if col == batch.ColRole {
			out.Role = inv.Set[col]
			continue
		}
		out.Cells = append(out.Cells, batch.Cell{Column: col, Value: inv.Set[col]})
	}
	return out
}

// UndoColumns are the columns an operator may have to fill in an undo row
// the spec leaves a note on: those its action reads that the entry does
// not set, for an input whose rows that entry may reverse (it has the
// columns the reversed action requires).
func (s *Spec) UndoColumns(h batch.Header) []string {
	var out []string
	for _, from := range batch.Actions {
		if !s.hasRequired(h, actionName(from)) {
			continue
		}
		for _, inv := range s.file.Invert[actionName(from)] {
			act, ok := s.file.Actions[inv.Action]
			if inv.Note == "" || !ok {
				continue
			}
			for _, name := range slices.Sorted(maps.Keys(s.columnsOf(act))) {
				_, set := inv.Set[name]
				_, has := h.Known[name]
				if !set && !has && name != batch.ColRole && !slices.Contains(out, name) {
					out = append(out, name)
				}
			}
		}
	}
	return out
}

// hasRequired reports whether h has every column action a requires.
func (s *Spec) hasRequired(h batch.Header, a actionName) bool {
	act, ok := s.file.Actions[a]
	if !ok {
		return false
	}
	for name, c := range s.columnsOf(act) {
		if _, has := h.Known[name]; c.Required && !has {
			return false
		}
	}
	return true
}
