package sqlite

import (
	"context"
	"database/sql"
)

// checkpointFrames is how many WAL frames the writer lets accumulate before
// it has them copied into the database file: SQLite's own default for
// wal_autocheckpoint, which the write connection turns off.
const checkpointFrames = 1000

// checkpointer copies the WAL into the database file on a connection and
// a goroutine of its own, so that the writer does not.
//
// SQLite checkpoints on the connection that commits, once the WAL holds
// wal_autocheckpoint frames: the writer would stop every thousand frames
// or so to copy the pages and to fsync the WAL and the database file,
// holding up every request queued meanwhile for milliseconds. Instead the
// writer counts the frames it writes and, past checkpointFrames, starts a
// pass of the checkpointer (PRAGMA wal_checkpoint(PASSIVE), which neither
// blocks nor waits for the writer) and goes on committing. A passive
// checkpoint copies the frames there were when it began, so once the pass
// is over the writer copies the few it wrote meanwhile itself, between two
// transactions; the WAL then holds nothing the database file lacks, and
// SQLite starts it again from its beginning at the next transaction, as
// after its own checkpoints. Should the pass take so long that the writer
// has written checkpointFrames more, the writer waits for it: the WAL stays
// within a bound, as with SQLite's checkpoints.
//
// Checkpoints change nothing of durability: a commit is durable once its
// frames are in the WAL, whoever copies them later; the copies fsync as
// SQLite's own do (with synchronous=NORMAL, the WAL before the copy and
// the database file after it). Their failures are SQLite's usual reasons
// to skip a checkpoint (a reader on an old snapshot, another process
// checkpointing) and are ignored as SQLite ignores its own: the frames
// stay in the WAL, readable, until a later checkpoint copies them.
type checkpointer struct {
	db    *sql.DB       // one connection, for checkpoints only
	start chan struct{} // the writer starts a pass
	done  chan struct{} // the pass is over; buffered, one pass at a time
	quit  chan struct{}
	ended chan struct{} // closed when run returns
}

// newCheckpointer starts the checkpointer goroutine on db, which must allow
// one connection to the store's file; close stops it and closes db.
func newCheckpointer(db *sql.DB) *checkpointer {
	db.SetMaxOpenConns(1)
	c := &checkpointer{db: db, start: make(chan struct{}, 1), done: make(chan struct{}, 1),
		quit: make(chan struct{}), ended: make(chan struct{})}
	go c.run()
	return c
}

func (c *checkpointer) run() {
	defer close(c.ended)
	for {
		select {
		case <-c.start:
			_, _ = c.db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)") // see checkpointer
			c.done <- struct{}{}
		case <-c.quit:
			return
		}
	}
}

// close stops the checkpointer, after the pass in progress if any, and
// closes its database.
func (c *checkpointer) close() error {
	close(c.quit)
	<-c.ended
	return c.db.Close()
}

// walFrames keeps the writer's account of the WAL and the checkpointer's
// passes; only the writer goroutine uses it.
type walFrames struct {
	c       *checkpointer
	n       int  // frames written since the WAL was last copied in full
	copying bool // a pass of c is under way
}

// wrote accounts for n frames just written and returns whether the writer
// should now copy the WAL's last frames itself, the checkpointer's pass
// being over: when it returns true, the caller checkpoints and calls
// copied.
func (f *walFrames) wrote(n int) bool {
	f.n += n
	if !f.copying {
		if f.n >= checkpointFrames {
			f.c.start <- struct{}{} // never blocks: one pass at a time
			f.copying = true
		}
		return false
	}
	if f.n >= 2*checkpointFrames {
		<-f.c.done // the pass is slow: bound the WAL
		return true
	}
	select {
	case <-f.c.done:
		return true
	default:
		return false
	}
}

// copied records that the writer has copied the WAL's frames.
func (f *walFrames) copied() {
	f.n, f.copying = 0, false
}

// finish waits for the pass under way, if any, so that the checkpointer
// holds no pass when the writer stops.
func (f *walFrames) finish() {
	if f.copying {
		<-f.c.done
		f.copying = false
	}
}
