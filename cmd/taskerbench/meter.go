package main

import (
	"time"

	"github.com/gotasker/tasker/store"
)

// commitCounter is the accessor requests_per_commit reads: the transactions
// a store's writer has committed since it opened and the write requests
// (CreateTask and Apply calls) they held. store/sqlite counts both in its
// writer but does not export them yet, so the field is left out until
// *sqlite.Store has this method.
type commitCounter interface {
	CommitStats() (commits, requests int64)
}

// cost is what a run cost besides its samples' times.
type cost struct {
	mallocs, peakHeap uint64
	wall              time.Duration // the drive, first submit to last Wait
	cpu               time.Duration // the process's CPU time over wall
	cpuKnown          bool          // whether cpu was measured
	maxInflight       int           // the most tasks in flight at once
	commits, requests int64         // the store's, over wall; 0 when not counted
}

// meter measures a drive's wall time, the process's CPU time and the
// store's commits, from startMeter to stop.
type meter struct {
	st                store.Store
	start             time.Time
	cpu               time.Duration
	cpuKnown          bool
	commits, requests int64
}

// startMeter starts measuring, reading st's counters if it has them.
func startMeter(st store.Store) *meter {
	m := &meter{st: st}
	m.commits, m.requests = commitStats(st)
	m.cpu, m.cpuKnown = processCPU()
	m.start = time.Now()
	return m
}

// stop returns what the process and the store did since startMeter.
func (m *meter) stop() cost {
	wall := time.Since(m.start)
	cpu, ok := processCPU()
	commits, requests := commitStats(m.st)
	return cost{wall: wall, cpu: cpu - m.cpu, cpuKnown: ok && m.cpuKnown,
		commits: commits - m.commits, requests: requests - m.requests}
}

// commitStats returns st's commit counters, or zeros when it keeps none.
func commitStats(st store.Store) (commits, requests int64) {
	if c, ok := st.(commitCounter); ok {
		return c.CommitStats()
	}
	return 0, 0
}
