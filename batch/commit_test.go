package batch

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// heldSink is a memSink whose first Commit waits until the writer has
// recorded something meanwhile: it shows whether the writer goes on
// recording while a sync runs.
type heldSink struct {
	memSink
	tr        *trace
	started   chan struct{} // closed when the first Commit starts
	recording chan struct{} // closed at the first record after that
	once      sync.Once
	mu        sync.Mutex
	commits   int
}

func (s *heldSink) Intent(op Op, attempt int) error {
	s.tr.add("intent %d", op.Index)
	s.recorded()
	return s.memSink.Intent(op, attempt)
}

func (s *heldSink) Result(res Result) error {
	s.recorded()
	return s.memSink.Result(res)
}

func (s *heldSink) recorded() {
	s.mu.Lock()
	started := s.commits > 0
	s.mu.Unlock()
	if started {
		s.once.Do(func() { close(s.recording) })
	}
}

func (s *heldSink) Commit() error {
	s.mu.Lock()
	s.commits++
	n := s.commits
	s.mu.Unlock()
	s.tr.add("commit-start")
	if n == 1 {
		close(s.started)
		<-s.recording
	}
	s.tr.add("commit-end")
	return nil
}

// TestRunRecordsWhileACommitSyncs: the writer records while a Commit runs
// (pipelined group commit), and still sends no write before a Commit that
// started after its intent returned.
func TestRunRecordsWhileACommitSyncs(t *testing.T) {
	tr := &trace{}
	sink := &heldSink{tr: tr, started: make(chan struct{}), recording: make(chan struct{})}
	// Target r's rows are read once the first Commit started, found in
	// state and end unsent: their results, recorded while that Commit
	// waits, open it. Target w's rows are written.
	inState := &readerAdapter{mockAdapter: &mockAdapter{}, ReadFunc: func(context.Context, Op, int) (State, error) {
		<-sink.started
		return State{InState: true, Current: "disabled"}, nil
	}}
	r := newRunner(2, map[string]Adapter{"w": &mockAdapter{Trace: tr}, "r": inState})
	r.Plan = func(int) Plan { return Plan{Change: WouldChange, State: "enabled"} }
	var ops []Op
	for i := range 40 {
		ops = append(ops, newOp(i, []string{"w", "r"}[i%2], fmt.Sprintf("u%d", i), Disable))
	}
	done := runAsync(context.Background(), r, sliceSource(ops), sink)
	// With a writer that waits for its syncs, the run would hang here.
	if err := wait(t, done, "Run to return"); err != nil {
		t.Fatal(err)
	}
	pending := map[string]bool{}   // intents recorded, no commit started since
	covered := map[string]bool{}   // intents a running commit covers
	committed := map[string]bool{} // intents a finished commit covered
	running := false
	for _, line := range tr.all() {
		kind, id, _ := strings.Cut(line, " ")
		switch kind {
		case "intent":
			pending[id] = true
		case "commit-start":
			if running {
				t.Fatalf("two commits at once: %q", tr.all())
			}
			running = true
			for id := range pending {
				covered[id] = true
			}
			clear(pending)
		case "commit-end":
			running = false
			for id := range covered {
				committed[id] = true
			}
			clear(covered)
		case "apply":
			id, _, _ = strings.Cut(id, " ")
			if !committed[id] {
				t.Fatalf("apply %s was sent before a commit started after its intent ended: %q", id, tr.all())
			}
		}
	}
	if n := len(sink.Results()); n != len(ops) {
		t.Errorf("%d results, want %d", n, len(ops))
	}
}
