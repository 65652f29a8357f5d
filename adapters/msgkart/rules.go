package msgkart

import (
	"fmt"

	"github.com/userbatch/userbatch/batch"
)

// ColEmail is the caller's email for a row, over the target's email
// setting (README "The operations CSV").
const ColEmail = "email"

// Rules are what userbatch knows of Msgkart's rows without credentials:
// every request names a caller email, the row's or the target's.
type Rules struct{}

var (
	_ batch.Columner  = Rules{}
	_ batch.Validator = Rules{}
)

// Columns is the email column.
func (Rules) Columns() []batch.Column {
	return []batch.Column{{Name: ColEmail, Kind: batch.Email, Required: "when the target has no email setting",
		Accepted: "the caller's email, over the target's email setting", Carry: true}}
}

// Validate needs an email in the row or in the target's settings.
func (Rules) Validate(op batch.Op, settings map[string]string) (batch.Op, []batch.Problem) {
	if op.Cell(ColEmail) != "" || settings["email"] != "" {
		return op, nil
	}
	return op, []batch.Problem{{Column: ColEmail, Msg: fmt.Sprintf("email is empty and target %s has no default email", op.Target),
		Accepted: "the caller's email for this vendor, in the row or as the target's email setting"}}
}
