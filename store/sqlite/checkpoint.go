package sqlite

import (
	"context"
	"database/sql"
)

// How many WAL frames the writer lets accumulate before it has the
// checkpointer copy them into the database file (checkpointFrames:
// SQLite's own default for wal_autocheckpoint, which the write connection
// turns off), and before it copies the last ones itself so that the WAL
// starts again from its beginning (restartFrames), once at most
// catchUpFrames are left to copy.
const (
	checkpointFrames = 1000
	restartFrames    = 4 * checkpointFrames
	catchUpFrames    = 128
)

// walSizeLimit is the size, in bytes, the WAL file is cut back to when it
// starts again from its beginning (journal_size_limit): restartFrames and
// checkpointFrames frames of the default 4096-byte page, the bound within
// which the writer keeps the WAL.
const walSizeLimit = (restartFrames + checkpointFrames) * (4096 + 24)

// checkpointer copies the WAL into the database file on a connection and
// a goroutine of its own, so that the writer does not.
//
// SQLite checkpoints on the connection that commits, once the WAL holds
// wal_autocheckpoint frames: the writer would stop every thousand frames
// or so to copy the pages and to fsync the WAL and the database file,
// holding up every request queued meanwhile for milliseconds. Instead the
// writer counts the frames it writes and, every checkpointFrames, starts a
// pass of the checkpointer (PRAGMA wal_checkpoint(PASSIVE), which neither
// blocks nor waits for the writer) and goes on committing.
//
// A passive checkpoint copies the frames there were when it began, and a
// WAL starts again from its beginning only once a checkpoint has copied
// every frame in it, which the checkpointer, racing the writer, seldom
// achieves. So once restartFrames have been written since the WAL last
// started, the writer starts passes back to back, each copying what was
// written during the one before, until a pass leaves at most catchUpFrames
// behind; it copies those itself, between two transactions, and SQLite
// starts the WAL again at the next transaction, as after its own
// checkpoints. That copy fsyncs both files like any checkpoint, so the
// writer still stops, but once every restartFrames rather than every
// checkpointFrames, and for a hundred-odd frames rather than a thousand.
// Should the passes not catch up within checkpointFrames more, the writer
// waits for the pass under way and copies what is left, so that the WAL
// stays within restartFrames, checkpointFrames and a transaction's frames.
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
// passes; only the writer goroutine uses it. Its thresholds are
// checkpointFrames, restartFrames and catchUpFrames, but in tests.
type walFrames struct {
	c                       *checkpointer
	every, restart, catchUp int
	sinceRestart            int  // frames written since the WAL was last copied in full
	sincePass               int  // frames written since the last pass of c began
	copying                 bool // a pass of c is under way
}

func newWALFrames(c *checkpointer) walFrames {
	return walFrames{c: c, every: checkpointFrames, restart: restartFrames, catchUp: catchUpFrames}
}

// wrote accounts for n frames just written, starts a pass of the
// checkpointer when one is due, and returns whether the writer should now
// copy the WAL's last frames itself: when it returns true, the caller
// checkpoints and calls copied.
func (f *walFrames) wrote(n int) bool {
	f.sinceRestart += n
	f.sincePass += n
	due := f.sinceRestart >= f.restart
	bound := f.sinceRestart >= f.restart+f.every
	if f.copying && f.passOver(bound) {
		f.copying = false
	}
	switch {
	case f.copying:
	case bound || due && f.sincePass <= f.catchUp:
		return true
	case due || f.sincePass >= f.every:
		f.c.start <- struct{}{} // never blocks: one pass at a time
		f.copying, f.sincePass = true, 0
	}
	return false
}

// passOver reports whether the checkpointer's pass is over, waiting for it
// to be if wait is true.
func (f *walFrames) passOver(wait bool) bool {
	if wait {
		<-f.c.done
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
	f.sinceRestart, f.sincePass = 0, 0
}

// finish waits for the pass under way, if any, so that the checkpointer
// holds no pass when the writer stops.
func (f *walFrames) finish() {
	if f.copying {
		<-f.c.done
		f.copying = false
	}
}
