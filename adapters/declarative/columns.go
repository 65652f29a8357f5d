package declarative

import (
	"fmt"
	"strings"

	"github.com/userbatch/userbatch/batch"
)

// Columns are the input columns a spec may read, beside user and action.
var Columns = []string{batch.ColRole, batch.ColPlaceGenealogy, batch.ColBlockUser, batch.ColEmail}

// Column is a row's cell for a column a spec reads, as the pipeline parsed
// it ("true"/"false" for a flag; "" when unknown). It is the one place that
// knows where those cells live in batch.Op.
func Column(op batch.Op, name string) string {
	switch name {
	case batch.ColRole:
		return op.Role
	case batch.ColPlaceGenealogy:
		return boolText(op.PlaceGenealogy)
	case batch.ColBlockUser:
		return boolText(op.BlockUser)
	case batch.ColEmail:
		return op.Email
	}
	return ""
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func knownColumn(name string) bool {
	for _, c := range Columns {
		if c == name {
			return true
		}
	}
	return false
}

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
