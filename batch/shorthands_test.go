package batch

import "io"

// Shorthands only the tests use.

// NewParser is NewParserOptions with the zero ParseOptions.
func NewParser(r io.Reader, targets Targets) (*Parser, error) {
	return NewParserOptions(r, targets, ParseOptions{})
}

// Replay is ReplayWith reading outcomes from an index (nil: none).
func Replay(p *Parser, outcomes *OutcomeIndex, include func(Op) bool, notRun string, fn func(Row, Result) error) error {
	var of OutcomeSource
	if outcomes != nil {
		of = outcomes.Of
	}
	return ReplayWith(p, of, include, notRun, fn)
}

// decodeResultV1 decodes a result record of a version 1 journal.
func decodeResultV1(line []byte) (Result, error) {
	cr, _, err := decodeResult(line, nil)
	return cr.Result, err
}

// opOf is row i as the input holds it when res is its result (a zero res:
// the row's index alone).
func opOf(i int, res Result) Op {
	return Op{Index: i, Line: res.Line, Target: res.Target, User: res.User, Action: res.Action}
}

// parseResult decodes a result record laid out exactly as appendResultV1
// writes it, with no escapes in its strings; ok is false for anything else.
func parseResult(line []byte) (Result, bool) {
	return parseWith(&cursor{b: line, ok: true, keep: true})
}

// inputOf is an input holding ops as valid rows, for FillInFlight.
func inputOf(ops ...Op) func() (Row, error) {
	return func() (Row, error) {
		if len(ops) == 0 {
			return Row{}, io.EOF
		}
		op := ops[0]
		ops = ops[1:]
		return Row{Index: op.Index, Line: op.Line, Op: op}, nil
	}
}
