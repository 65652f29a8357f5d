package job

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Prompt asks the person at a terminal to confirm the changes before the
// first write: the question is the terminal's, as the bar is, not a step
// of the run.
type Prompt struct {
	out io.Writer // where the question shows: stderr, above any bar
	in  io.Reader // where the person answers
}

// NewPrompt asks on out and reads the answer from in.
func NewPrompt(out io.Writer, in io.Reader) *Prompt { return &Prompt{out: out, in: in} }

// Question is what the person is asked to confirm.
type Question struct {
	// Total counts the rows that would change.
	Total int
	// Table counts them by target and action; FirstRows lists the first.
	Table, FirstRows string
}

// answer is what the person did at the question.
type answer struct {
	typed   string
	ok      bool // typed the number of changes
	stopped bool // Ctrl-C (or SIGTERM) before Enter
}

// Confirm shows what would change and asks the person to type the number
// of changes; anything else declines. When ctx ends (a signal while they
// think) it stops at once: the line being typed is never waited for.
func (p *Prompt) Confirm(ctx context.Context, q Question) answer {
	fmt.Fprintf(p.out, "About to change %d users:\n%s%s", q.Total, q.Table, q.FirstRows)
	fmt.Fprintf(p.out, "Type %d to send these changes (anything else stops, sending nothing; Ctrl-C stops at once): ", q.Total)
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(p.in).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	select {
	case line := <-lines:
		return answer{typed: line, ok: line == strconv.Itoa(q.Total)}
	case <-ctx.Done():
		return answer{stopped: true}
	}
}
