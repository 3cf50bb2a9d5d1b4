// Package memory is an in-process store.Store. It keeps everything in maps
// and slices guarded by mutexes and is not durable: its contents are lost when the
// process exits or the Store is closed. Use it for tests, examples and
// workflows that need no recovery; use store/sqlite to survive a restart.
//
// It is also a store.Leaser and a store.Waker, so that several engines in
// one process can share a Store as engines in many processes share a
// PostgreSQL database; its clock for leases is time.Now.
package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/internal/record"
)

// Store is an in-memory store.Store. Create one with New; the zero value is
// not usable. A Store is safe for concurrent use: writes to different tasks
// do not contend, as each task has its own lock, and neither writes nor
// reads of a task wait for the creation of others. It copies every record
// on the way in and on the way out, so callers never share memory with it.
//
// The tasks are found by ID in a concurrent map, without the store's lock:
// an Apply or a read takes only the locks of the tasks it names. The lock,
// mu, serializes what changes the set of tasks (a creation, a purge,
// Close) and guards the creation order and the idempotency keys. A purged
// task's entry is marked gone under its own lock before it leaves the map,
// so that a caller that found it just before sees it as unknown.
type Store struct {
	closed atomic.Bool
	tasks  sync.Map // task ID → *entry
	mu     sync.Mutex
	order  []*entry           // in creation order; replaced, never changed in place, but for appends
	keys   map[idemKey]string // → task ID
	dead   deadLetters
	out    outbox
	wake   chan struct{} // Wake's channel: buffer 1, sent to without blocking
}

// idemKey is an idempotency key in its scope: keys dedupe among the tasks
// of one Namespace and Name.
type idemKey struct{ namespace, name, key string }

// entry is one stored task with its steps (sorted by Position, then Name)
// and audit trail, guarded by its own lock.
type entry struct {
	mu          sync.Mutex
	task        store.Task
	steps       []store.Step
	index       map[string]int // step name → index in steps
	transitions transitions
	lease       leaseState // task.Owner is the holder
	gone        bool       // purged or discarded: no longer the store's
}

// transitions is an append-only list kept in chunks, so that a task with
// many transitions never copies them all to grow.
type transitions [][]store.Transition

const chunkLen = 256

func (ts *transitions) add(t store.Transition) {
	n := len(*ts)
	if n == 0 || len((*ts)[n-1]) == chunkLen {
		*ts = append(*ts, make([]store.Transition, 0, 8))
		n++
	}
	(*ts)[n-1] = append((*ts)[n-1], t)
}

// all returns a copy of every transition, sharing no memory with ts.
func (ts transitions) all() []store.Transition {
	out := slices.Concat(ts...)
	for i := range out {
		out[i].Error = record.CloneFailure(out[i].Error)
	}
	return out
}

// deadLetters is the dead-letter list, in insertion order. Apply holds only
// the store's read lock, so the list has a lock of its own, taken after the
// entries' locks; Close, holding the store's lock, needs no other.
type deadLetters struct {
	mu     sync.Mutex
	list   []store.DeadLetter
	byTask map[string][]int // task ID → indices into list
	ids    map[string]bool  // the IDs in list
}

// hasDeadLetterOps reports whether a change of cs adds or resolves entries.
func hasDeadLetterOps(cs []store.Change) bool {
	return slices.ContainsFunc(cs, func(c store.Change) bool { return c.DeadLetter != nil || c.ResolveDeadLetters })
}

// check returns the conflict of the first change of cs whose entry's ID is
// taken, by a stored entry or by an earlier change of cs.
func (d *deadLetters) check(cs []store.Change) error {
	var batch map[string]bool
	for i, c := range cs {
		if c.DeadLetter == nil {
			continue
		}
		id := c.DeadLetter.ID
		if d.ids[id] || batch[id] {
			return record.Conflict(i, c, "dead-letter ID %q is taken", id)
		}
		if batch == nil {
			batch = make(map[string]bool)
		}
		batch[id] = true
	}
	return nil
}

// apply carries out the dead-letter operations of the prepared change c,
// once its batch has applied: it resolves the task's pending entries, then
// adds c's own.
func (d *deadLetters) apply(c store.Change) {
	if c.ResolveDeadLetters {
		for _, i := range d.byTask[c.TaskID] {
			if e := &d.list[i]; e.Status == store.DeadLetterPending {
				e.Status, e.ResolvedAt, e.ResolvedBy, e.Resolution = store.DeadLetterResolved, c.At, c.By, c.Reason
			}
		}
	}
	if c.DeadLetter != nil {
		d.byTask[c.TaskID] = append(d.byTask[c.TaskID], len(d.list))
		d.list = append(d.list, *c.DeadLetter)
		d.ids[c.DeadLetter.ID] = true
	}
}

// find returns copies of the entries f selects, oldest first.
func (d *deadLetters) find(f store.DeadLetterFilter) []store.DeadLetter {
	var out []store.DeadLetter
	add := func(e store.DeadLetter) bool {
		if f.Status == "" || e.Status == f.Status {
			out = append(out, e)
		}
		return f.Limit <= 0 || len(out) < f.Limit
	}
	if f.TaskID != "" {
		for _, i := range d.byTask[f.TaskID] {
			if !add(d.list[i]) {
				break
			}
		}
		return out
	}
	for _, e := range d.list {
		if !add(e) {
			break
		}
	}
	return out
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.Snapshotter = (*Store)(nil)
)

// New returns an empty Store.
func New() *Store {
	return &Store{keys: make(map[idemKey]string),
		dead: deadLetters{byTask: make(map[string][]int), ids: make(map[string]bool)},
		out:  outbox{ids: make(map[string]bool)}, wake: make(chan struct{}, 1)}
}

// CreateTask implements store.Store. An empty task.ID is replaced by a
// version 7 UUID. The task is free to acquire (see AcquireTasks), and Wake
// signals.
func (s *Store) CreateTask(ctx context.Context, task store.Task, steps []store.Step) (string, bool, error) {
	id, created, err := s.create(ctx, task, steps, "", time.Time{})
	if created {
		s.signal()
	}
	return id, created, err
}

// create stores a task, leased to owner until expires with token 1 when
// owner is not "", and reports whether it did.
func (s *Store) create(ctx context.Context, task store.Task, steps []store.Step, owner string, expires time.Time) (string, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	t, st, err := record.PrepareTask(task, steps)
	if err != nil {
		return "", false, fmt.Errorf("memory: create task: %w", err)
	}
	t.Owner = owner
	e := newEntry(t, st)
	if owner != "" {
		e.lease = leaseState{token: 1, expires: expires}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return "", false, store.ErrClosed
	}
	key := idemKey{t.Namespace, t.Name, t.IdempotencyKey}
	if id, ok := s.keys[key]; ok && t.IdempotencyKey != "" {
		return id, false, nil
	}
	if _, loaded := s.tasks.LoadOrStore(t.ID, e); loaded {
		return "", false, fmt.Errorf("memory: create task: task %q already exists: %w", t.ID, store.ErrConflict)
	}
	s.order = append(s.order, e)
	if t.IdempotencyKey != "" {
		s.keys[key] = t.ID
	}
	return t.ID, true, nil
}

func newEntry(t store.Task, steps []store.Step) *entry {
	slices.SortStableFunc(steps, byPosition)
	e := &entry{task: t, steps: steps, index: make(map[string]int, len(steps))}
	// Room for the usual trail, a claim and an outcome per step and the
	// task's start and end, in one allocation.
	e.transitions = transitions{make([]store.Transition, 0, min(chunkLen, 2*len(steps)+2))}
	for i, st := range steps {
		e.index[st.Name] = i
	}
	return e
}

// Apply implements store.Store. A change with a zero At is stamped with the
// time of the call.
func (s *Store) Apply(ctx context.Context, changes []store.Change) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Small batches, the usual kind, are prepared on the stack.
	var csBuf [4]store.Change
	var entBuf [4]*entry
	cs, err := record.AppendPrepared(csBuf[:0], changes)
	if err != nil {
		return fmt.Errorf("memory: apply: %w", err)
	}
	if s.closed.Load() {
		return store.ErrClosed
	}
	if len(cs) == 0 {
		return nil
	}
	entries, err := s.entriesOf(cs, entBuf[:0])
	if err != nil {
		return s.closedOr(err)
	}
	locked := lockAll(entries)
	defer unlockAll(locked)
	if err := goneOf(cs, entries); err != nil {
		return s.closedOr(err)
	}
	// Dead-letter operations are checked first and carried out last, once
	// the whole batch has applied, so a conflict has none to undo.
	deadOps := hasDeadLetterOps(cs)
	if deadOps {
		s.dead.mu.Lock()
		defer s.dead.mu.Unlock()
		if err := s.dead.check(cs); err != nil {
			return fmt.Errorf("memory: apply: %w", err)
		}
	}
	outOps := hasOutbox(cs)
	if outOps {
		s.out.mu.Lock()
		defer s.out.mu.Unlock()
		if err := s.out.check(cs); err != nil {
			return fmt.Errorf("memory: apply: %w", err)
		}
	}
	if err := applyAll(cs, entries); err != nil {
		return fmt.Errorf("memory: apply: %w", err)
	}
	for i, c := range cs {
		entries[i].transitions.add(record.Transition(c))
		if deadOps {
			s.dead.apply(c)
		}
		if outOps {
			s.out.add(c)
		}
	}
	return nil
}

// entriesOf appends to buf the entry of each change's task.
func (s *Store) entriesOf(cs []store.Change, buf []*entry) ([]*entry, error) {
	for i, c := range cs {
		e := s.entry(c.TaskID)
		if e == nil {
			return nil, fmt.Errorf("memory: apply: %w", record.Conflict(i, c, "unknown task"))
		}
		buf = append(buf, e)
	}
	return buf, nil
}

// goneOf returns the conflict of the first change whose entry was purged
// after entriesOf found it. Called with the entries' locks held.
func goneOf(cs []store.Change, entries []*entry) error {
	for i, e := range entries {
		if e.gone {
			return fmt.Errorf("memory: apply: %w", record.Conflict(i, cs[i], "unknown task"))
		}
	}
	return nil
}

// closedOr returns store.ErrClosed once the store is closed, err before:
// Close empties the store, so a task a call racing it does not find may
// only have been discarded.
func (s *Store) closedOr(err error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return err
}

// entry returns the entry of task id, nil when there is none.
func (s *Store) entry(id string) *entry {
	if v, ok := s.tasks.Load(id); ok {
		return v.(*entry)
	}
	return nil
}

// snapshot returns the entries in creation order, as they are now: later
// creations and purges do not change the slice returned.
func (s *Store) snapshot() []*entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order
}

// lockAll locks the distinct entries, in a fixed order so that batches
// spanning several tasks cannot deadlock, and returns them for unlockAll.
func lockAll(entries []*entry) []*entry {
	distinct := entries[:1]
	if slices.ContainsFunc(entries, func(e *entry) bool { return e != entries[0] }) {
		distinct = slices.Clone(entries)
		slices.SortFunc(distinct, func(a, b *entry) int { return strings.Compare(a.task.ID, b.task.ID) })
		distinct = slices.Compact(distinct)
	}
	for _, e := range distinct {
		e.mu.Lock()
	}
	return distinct
}

func unlockAll(entries []*entry) {
	for _, e := range entries {
		e.mu.Unlock()
	}
}

// undo remembers what a change overwrote, so a batch that fails part-way
// can be rolled back. A step is remembered whole, Checkpoint included: a
// change replaces a stored slice, never writes into it, so the copy is
// enough.
type undo struct {
	e       *entry
	step    int // -1 for the task
	task    taskFields
	st      store.Step
	created bool // the change created the step: undoing removes it
}

// taskFields are the fields of a task that a change writes.
type taskFields struct {
	state             string
	updated, deadline time.Time
}

// create adds the step change c creates, in Position order, and returns
// how to undo it.
func (e *entry) create(c store.Change) undo {
	s := store.Step{TaskID: c.TaskID, Name: c.Step, Position: c.Position, State: c.To, Attempts: c.Attempt,
		Result: c.Result, Error: c.Error, NextAttemptAt: c.NextAttemptAt, UpdatedAt: c.At,
		Checkpoint: c.Checkpoint}
	k, _ := slices.BinarySearchFunc(e.steps, s, byPosition)
	e.steps = slices.Insert(e.steps, k, s)
	e.reindex()
	return undo{e: e, step: k, created: true}
}

// reindex rebuilds the name index of e's steps.
func (e *entry) reindex() {
	for i, st := range e.steps {
		e.index[st.Name] = i
	}
}

// byPosition orders steps by Position, then Name.
func byPosition(a, b store.Step) int {
	return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.Name, b.Name))
}

// applyAll applies the changes in order, each checked against the state the
// ones before it left; if one does not match, it restores what the others
// overwrote and returns the conflict.
func applyAll(cs []store.Change, entries []*entry) error {
	var logBuf [4]undo // the usual batches' undo log, on the stack
	log := logBuf[:0]
	for i, c := range cs {
		u, err := applyOne(i, c, entries[i])
		if err != nil {
			for _, u := range slices.Backward(log) {
				u.restore()
			}
			return err
		}
		if len(cs) > 1 {
			log = append(log, u)
		}
	}
	return nil
}

// applyOne checks change i against e and applies it, returning what it
// overwrote.
func applyOne(i int, c store.Change, e *entry) (undo, error) {
	if c.Lease != 0 && c.Lease != e.lease.token {
		return undo{}, record.LeaseLost(i, c, e.lease.token)
	}
	if c.Step == "" {
		if e.task.State != c.From {
			return undo{}, record.Conflict(i, c, "task is %q, want %q", e.task.State, c.From)
		}
		u := undo{e: e, step: -1, task: taskFields{e.task.State, e.task.UpdatedAt, e.task.Deadline}}
		e.task.State, e.task.UpdatedAt = c.To, c.At
		if !c.Deadline.IsZero() {
			e.task.Deadline = c.Deadline
		}
		return u, nil
	}
	idx, ok := e.index[c.Step]
	switch {
	case c.From == "" && ok:
		return undo{}, record.Conflict(i, c, "step already exists")
	case c.From == "":
		return e.create(c), nil
	case !ok:
		return undo{}, record.Conflict(i, c, "unknown step")
	}
	st := &e.steps[idx]
	if st.State != c.From || st.Attempts != c.FromAttempt {
		return undo{}, record.Conflict(i, c, "step is %q attempt %d, want %q attempt %d",
			st.State, st.Attempts, c.From, c.FromAttempt)
	}
	u := undo{e: e, step: idx, st: *st}
	st.State, st.Attempts = c.To, c.Attempt
	st.Result, st.Error, st.NextAttemptAt = c.Result, c.Error, c.NextAttemptAt
	st.UpdatedAt = c.At
	if c.Checkpoint != nil {
		st.Checkpoint = c.Checkpoint
	}
	return u, nil
}

func (u undo) restore() {
	if u.created {
		delete(u.e.index, u.e.steps[u.step].Name)
		u.e.steps = slices.Delete(u.e.steps, u.step, u.step+1)
		u.e.reindex()
		return
	}
	if u.step < 0 {
		u.e.task.State, u.e.task.UpdatedAt, u.e.task.Deadline = u.task.state, u.task.updated, u.task.deadline
		return
	}
	u.e.steps[u.step] = u.st
}

// Task implements store.Store.
func (s *Store) Task(ctx context.Context, id string) (store.Task, error) {
	var t store.Task
	err := s.read(ctx, id, func(e *entry) { t = record.CloneTask(e.task) })
	return t, err
}

// Steps implements store.Store.
func (s *Store) Steps(ctx context.Context, taskID string) ([]store.Step, error) {
	var out []store.Step
	err := s.read(ctx, taskID, func(e *entry) {
		out = make([]store.Step, len(e.steps))
		for i, st := range e.steps {
			out[i] = record.CloneStep(st)
		}
	})
	return out, err
}

// Transitions implements store.Store.
func (s *Store) Transitions(ctx context.Context, taskID string) ([]store.Transition, error) {
	var out []store.Transition
	err := s.read(ctx, taskID, func(e *entry) { out = e.transitions.all() })
	return out, err
}

// Snapshot implements store.Snapshotter: the task, its steps and its
// transitions under one lock.
func (s *Store) Snapshot(ctx context.Context, id string) (store.Snapshot, error) {
	var snap store.Snapshot
	err := s.read(ctx, id, func(e *entry) {
		snap.Task = record.CloneTask(e.task)
		snap.Steps = make([]store.Step, len(e.steps))
		for i, st := range e.steps {
			snap.Steps[i] = record.CloneStep(st)
		}
		snap.Transitions = e.transitions.all()
	})
	return snap, err
}

// read calls fn with the task id under its lock.
func (s *Store) read(ctx context.Context, id string, fn func(*entry)) error {
	return s.readLocked(ctx, func() error {
		notFound := func() error { return s.closedOr(fmt.Errorf("memory: task %q: %w", id, store.ErrNotFound)) }
		e := s.entry(id)
		if e == nil {
			return notFound()
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.gone {
			return notFound()
		}
		fn(e)
		return nil
	})
}

// readLocked returns fn's error, unless ctx is done or the store closed.
func (s *Store) readLocked(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return store.ErrClosed
	}
	return fn()
}

// ListTasks implements store.Store.
func (s *Store) ListTasks(ctx context.Context, f store.Filter) ([]store.Task, error) {
	var out []store.Task
	err := s.readLocked(ctx, func() error {
		for _, e := range s.after(f.After) {
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
			e.mu.Lock()
			if !e.gone && matches(e.task, f) {
				out = append(out, record.CloneTask(e.task))
			}
			e.mu.Unlock()
		}
		return nil
	})
	return out, err
}

// DeadLetters implements store.Store.
func (s *Store) DeadLetters(ctx context.Context, f store.DeadLetterFilter) ([]store.DeadLetter, error) {
	var out []store.DeadLetter
	err := s.readLocked(ctx, func() error {
		s.dead.mu.Lock()
		defer s.dead.mu.Unlock()
		out = s.dead.find(f)
		return nil
	})
	return out, err
}

// after returns the entries created after the task id, every entry when id
// is "", none when it is unknown.
func (s *Store) after(id string) []*entry {
	order := s.snapshot()
	if id == "" {
		return order
	}
	e := s.entry(id)
	if e == nil {
		return nil
	}
	i := slices.Index(order, e) // -1 when purged meanwhile
	if i < 0 {
		return nil
	}
	return order[i+1:]
}

func matches(t store.Task, f store.Filter) bool {
	return (f.Namespace == "" || t.Namespace == f.Namespace) &&
		(f.Name == "" || t.Name == f.Name) &&
		(len(f.States) == 0 || slices.Contains(f.States, t.State)) &&
		(f.Initiator == "" || t.Initiator == f.Initiator) &&
		(f.SourceSystem == "" || t.SourceSystem == f.SourceSystem) &&
		!slices.ContainsFunc(f.Tags, func(tag string) bool { return !slices.Contains(t.Tags, tag) })
}

// Close discards the store's contents. Later calls return store.ErrClosed;
// Close itself is idempotent and always returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed.Store(true)
	s.tasks.Clear()
	s.order, s.keys = nil, nil
	s.dead.list, s.dead.byTask, s.dead.ids = nil, nil, nil
	s.out.mu.Lock()
	s.out.list, s.out.ids = nil, nil
	s.out.mu.Unlock()
	return nil
}
