package ledger

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// groupCommit runs the writes of one SQLite ledger in one goroutine. Writes
// that queue while a commit is under way share the next transaction, so
// concurrent workers pay one fsync between them instead of one each (each
// costs about a millisecond with synchronous=FULL). Every write still returns
// only once it is durable, and alone it is a plain autocommit statement.
type groupCommit struct {
	db    *sql.DB
	queue chan *writeReq // unbuffered: a request in it is a writer waiting
	quit  chan struct{}
	done  chan struct{}
	stop  sync.Once
}

type writeReq struct {
	ctx   context.Context
	query string
	args  []any
	n     int64 // rows changed
	// run, when set, writes instead of query, in a transaction even when
	// it is alone, so that its statements commit together.
	run   func(tx *sql.Tx) error
	err   error
	ready chan struct{}
}

// exec runs r's write in tx.
func (r *writeReq) exec(tx *sql.Tx) error {
	if r.run != nil {
		return r.run(tx)
	}
	var err error
	r.n, err = execCount(tx.Exec(r.query, r.args...))
	return err
}

// maxGroup bounds one transaction, so a long queue still commits steadily.
const maxGroup = 64

var errClosed = errors.New("the ledger is closed")

func newGroupCommit(db *sql.DB) *groupCommit {
	g := &groupCommit{db: db, queue: make(chan *writeReq), quit: make(chan struct{}), done: make(chan struct{})}
	go g.loop()
	return g
}

// write runs query once it is durable, and says how many rows it changed. A
// request whose ctx ends while it waits is not run; once running, it is not
// interrupted, since that would roll back the writes it shares a transaction with.
func (g *groupCommit) write(ctx context.Context, query string, args ...any) (int64, error) {
	r := &writeReq{ctx: ctx, query: query, args: args, ready: make(chan struct{})}
	err := g.send(r)
	return r.n, err
}

// do runs fn in the group's transaction and returns once it is durable.
// fn's error fails the whole group: nothing of it is committed.
func (g *groupCommit) do(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return g.send(&writeReq{ctx: ctx, run: fn, ready: make(chan struct{})})
}

func (g *groupCommit) send(r *writeReq) error {
	select {
	case g.queue <- r:
	case <-g.quit:
		return errClosed
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
	<-r.ready
	return r.err
}

func (g *groupCommit) loop() {
	defer close(g.done)
	for {
		var first *writeReq
		select {
		case first = <-g.queue:
		case <-g.quit:
			return
		}
		group := []*writeReq{first}
	more:
		for len(group) < maxGroup {
			select {
			case r := <-g.queue:
				group = append(group, r)
			default:
				break more
			}
		}
		g.commit(group)
		for _, r := range group {
			close(r.ready)
		}
	}
}

func (g *groupCommit) commit(group []*writeReq) {
	if len(group) == 1 && group[0].run == nil {
		r := group[0]
		if r.err = r.ctx.Err(); r.err == nil {
			r.n, r.err = execCount(g.db.ExecContext(context.Background(), r.query, r.args...))
		}
		return
	}
	tx, err := g.db.BeginTx(context.Background(), nil)
	if err == nil {
		err = g.execAll(tx, group)
	}
	if err == nil {
		err = tx.Commit()
	} else if tx != nil {
		tx.Rollback()
	}
	if err != nil { // nothing of the group was committed
		for _, r := range group {
			r.n, r.err = 0, err
		}
	}
}

// execAll runs the group's statements in tx. A failing statement fails the
// whole group: SQLite may have rolled the transaction back already, and the
// statements after it would then each commit on their own.
func (g *groupCommit) execAll(tx *sql.Tx, group []*writeReq) error {
	for _, r := range group {
		if r.err = r.ctx.Err(); r.err != nil {
			continue
		}
		if err := r.exec(tx); err != nil {
			return err
		}
	}
	return nil
}

// close stops the loop once the write under way, if any, has returned.
// Closing again does nothing.
func (g *groupCommit) close() {
	g.stop.Do(func() { close(g.quit) })
	<-g.done
}

func execCount(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
