package epixel

import (
	"fmt"
	"strings"

	"github.com/userbatch/userbatch/batch"
)

// The roles, as Epixel spells them. Their order is Customer < Preferred
// Customer < Member.
const (
	RoleMember            = "Member"
	RolePreferredCustomer = "Preferred Customer"
	RoleCustomer          = "Customer"
)

// Epixel's own input columns (README "The operations CSV").
const (
	// ColPlaceGenealogy is api_place_genealogy on an upgrade to Preferred Customer.
	ColPlaceGenealogy = "place_genealogy"
	// ColBlockUser is api_block_user on a downgrade.
	ColBlockUser = "block_user"
)

// Rules are what userbatch knows of Epixel's rows without credentials:
// its columns, the roles each action takes, and how a change is undone.
type Rules struct{}

var (
	_ batch.Columner  = Rules{}
	_ batch.Validator = Rules{}
	_ batch.Inverter  = Rules{}
)

// Columns are place_genealogy and block_user.
func (Rules) Columns() []batch.Column {
	return []batch.Column{
		{Name: ColPlaceGenealogy, Kind: batch.Flag, Required: "upgrade-role to Preferred Customer", Accepted: "true or false"},
		{Name: ColBlockUser, Kind: batch.Flag, Accepted: "true or false (default false): also block the user on a downgrade"},
	}
}

// roles are the roles each role action takes.
var roles = map[batch.Action][]string{
	batch.UpgradeRole:   {RoleMember, RolePreferredCustomer},
	batch.DowngradeRole: {RoleCustomer, RolePreferredCustomer},
}

// Validate checks op's role against the roles its action takes, and spells
// it as Epixel does; an upgrade to Preferred Customer needs place_genealogy.
func (Rules) Validate(op batch.Op, _ map[string]string) (batch.Op, []batch.Problem) {
	allowed, ok := roles[op.Action]
	if !ok {
		return op, nil
	}
	if op.Role == "" {
		return op, []batch.Problem{{Column: batch.ColRole, Msg: "role is empty", Accepted: strings.Join(allowed, " or ")}}
	}
	role, ok := canonicalRole(op.Role, allowed...)
	if !ok {
		return op, []batch.Problem{{Column: batch.ColRole, Value: op.Role,
			Msg: fmt.Sprintf("role %q is not valid for this action", op.Role), Accepted: strings.Join(allowed, " or ")}}
	}
	op.Role = role
	if op.Action == batch.UpgradeRole && role == RolePreferredCustomer && op.Cell(ColPlaceGenealogy) == "" {
		return op, []batch.Problem{{Column: ColPlaceGenealogy,
			Msg: "place_genealogy is required for an upgrade to Preferred Customer", Accepted: "true or false"}}
	}
	return op, nil
}

// The notes of undo rows whose earlier role is not known. Their role cell is
// left empty, which fails validation: the row cannot run until an operator
// chooses, and userbatch never guesses a role.
const (
	noteUpgrade   = "role before the upgrade is not known: set role to Customer or Preferred Customer"
	noteDowngrade = "role before the downgrade is not known: " +
		"set role to Member or Preferred Customer (with place_genealogy)"
)

// Invert reverses an applied role change; a status change is reversed as
// any vendor's is. Role order is Customer < Preferred
// Customer < Member, so an upgrade to Preferred Customer can only have
// started from Customer, and a downgrade to Preferred Customer only from
// Member; the other role changes may have started from either of two
// roles, and their undo leaves the role for an operator to fill in.
func (Rules) Invert(op batch.Op) []batch.Inverse {
	noBlock := []batch.Cell{{Column: ColBlockUser, Value: "false"}}
	switch op.Action {
	case batch.UpgradeRole:
		if op.Role == RolePreferredCustomer {
			return []batch.Inverse{{Action: batch.DowngradeRole, Role: RoleCustomer, Cells: noBlock}}
		}
		return []batch.Inverse{{Action: batch.DowngradeRole, Cells: noBlock, Note: noteUpgrade}}
	case batch.DowngradeRole:
		out := []batch.Inverse{{Action: batch.UpgradeRole, Note: noteDowngrade}}
		if op.Role == RolePreferredCustomer {
			out[0] = batch.Inverse{Action: batch.UpgradeRole, Role: RoleMember}
		}
		if op.Flag(ColBlockUser) {
			out = append(out, batch.Inverse{Action: batch.Enable})
		}
		return out
	}
	return nil
}

// UndoColumns adds place_genealogy to an input with role actions, for the
// operator who answers a note with Preferred Customer. block_user needs no
// adding: undo rows only ever set it false, its default.
func (Rules) UndoColumns(h batch.Header) []string {
	if _, ok := h.Known[batch.ColRole]; ok {
		return []string{ColPlaceGenealogy}
	}
	return nil
}
