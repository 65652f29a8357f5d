package deskly

import (
	"fmt"

	"github.com/userbatch/userbatch/batch"
)

// ColHandoverTo names the agent who takes over a disabled agent's open
// tickets.
const ColHandoverTo = "handover_to"

// Rules are what userbatch knows of Deskly's rows without credentials: a
// disable needs a handover to another agent.
type Rules struct{}

var (
	_ batch.Columner  = Rules{}
	_ batch.Validator = Rules{}
)

const handoverAccepted = "the id of another agent, who takes over the open tickets"

// Columns is handover_to.
func (Rules) Columns() []batch.Column {
	return []batch.Column{{Name: ColHandoverTo, Kind: batch.Text, Required: "on disable", Accepted: handoverAccepted}}
}

// Validate needs a handover on a disable, to someone else.
func (Rules) Validate(op batch.Op, _ map[string]string) (batch.Op, []batch.Problem) {
	to := op.Cell(ColHandoverTo)
	switch {
	case op.Action != batch.Disable:
		return op, nil
	case to == "":
		return op, []batch.Problem{{Column: ColHandoverTo, Msg: "handover_to is empty: a disabled agent's tickets need an owner",
			Accepted: handoverAccepted}}
	case to == op.User:
		return op, []batch.Problem{{Column: ColHandoverTo, Value: to, Msg: fmt.Sprintf("handover_to is the agent being disabled (%s)", to),
			Accepted: handoverAccepted}}
	}
	return op, nil
}
