package batch

import (
	"fmt"
	"strings"
)

// OutcomeSource gives a row's recorded result, if it has one.
type OutcomeSource func(Row) (Result, bool, error)

// Of is the OutcomeIndex as OutcomeSource.
func (o *OutcomeIndex) Of(row Row) (Result, bool, error) { return o.Lookup(row.Op) }

// ReplayWith pairs every row of the input with its outcome, in input
// order, and passes each to fn. Rows that fail validation are Invalid; rows
// with no recorded outcome are Skipped with notRun as their detail. Rows
// that include rejects (another shard's, valid or not: an invalid row's op
// holds its target and user as written) are left out. outcomes may be nil.
func ReplayWith(p *Parser, outcomes OutcomeSource, include func(Op) bool, notRun string, fn func(Row, Result) error) error {
	return p.Each(func(row Row) error {
		if include != nil && !include(row.Op) {
			return nil
		}
		res, err := outcomeOf(p.header, row, outcomes, notRun)
		if err != nil {
			return err
		}
		return fn(row, res)
	})
}

func outcomeOf(h Header, row Row, outcomes OutcomeSource, notRun string) (Result, error) {
	base := Result{Index: row.Index, Line: row.Line, Target: row.Op.Target, User: row.Op.User, Action: row.Op.Action}
	if !row.Valid() {
		base.Outcome, base.ErrorCode = Invalid, "invalid"
		base.Detail = "fix the row: it was never sent"
		base.Message = problemText(row.Problems)
		if base.Action == "" {
			base.Action = Action(strings.TrimSpace(h.Field(row.Record, ColAction)))
		}
		return base, nil
	}
	if outcomes != nil {
		res, ok, err := outcomes(row)
		if err != nil || ok {
			return res, err
		}
	}
	base.Outcome, base.Detail = Skipped, notRun
	if row.Op.DuplicateOf > 0 {
		base.Detail = duplicateDetail(row.Op)
	}
	return base, nil
}

// duplicateDetail is the detail of a row that repeats an earlier one.
func duplicateDetail(op Op) string { return fmt.Sprintf("duplicate of line %d", op.DuplicateOf) }

func problemText(ps []Problem) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.Column + ": " + p.Msg
		if p.Accepted != "" {
			parts[i] += " (accepted: " + p.Accepted + ")"
		}
	}
	return strings.Join(parts, "; ")
}
