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

// parseResult decodes a result record laid out exactly as appendResult
// writes it, with no escapes in its strings; ok is false for anything else.
func parseResult(line []byte) (Result, bool) {
	return parseWith(&cursor{b: line, ok: true, keep: true})
}
