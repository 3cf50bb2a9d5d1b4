// Package memory is an in-process store.Store. It keeps everything in maps
// guarded by one mutex and is not durable: its contents are lost when the
// process exits or the Store is closed. Use it for tests, examples and
// workflows that need no recovery; use store/sqlite to survive a restart.
package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gotasker/tasker/store"
	"github.com/gotasker/tasker/store/internal/record"
)

// Store is an in-memory store.Store. Create one with New; the zero value is
// not usable. A Store is safe for concurrent use. It copies every record on
// the way in and on the way out, so callers never share memory with it.
type Store struct {
	mu     sync.RWMutex
	closed bool
	tasks  map[string]*entry // by task ID
	order  []*entry          // in creation order
	keys   map[string]string // idempotency key → task ID
}

// entry is one stored task with its steps (sorted by Position, then Name)
// and audit trail.
type entry struct {
	task        store.Task
	steps       []store.Step
	index       map[string]int // step name → index in steps
	transitions []store.Transition
}

var _ store.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{tasks: make(map[string]*entry), keys: make(map[string]string)}
}

// CreateTask implements store.Store. An empty task.ID is replaced by a random
// UUID.
func (s *Store) CreateTask(ctx context.Context, task store.Task, steps []store.Step) (string, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	t, st, err := record.PrepareTask(task, steps)
	if err != nil {
		return "", false, fmt.Errorf("memory: create task: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", false, store.ErrClosed
	}
	if id, ok := s.keys[t.IdempotencyKey]; ok && t.IdempotencyKey != "" {
		return id, false, nil
	}
	if _, ok := s.tasks[t.ID]; ok {
		return "", false, fmt.Errorf("memory: create task: task %q already exists: %w", t.ID, store.ErrConflict)
	}
	e := newEntry(t, st)
	s.tasks[t.ID] = e
	s.order = append(s.order, e)
	if t.IdempotencyKey != "" {
		s.keys[t.IdempotencyKey] = t.ID
	}
	return t.ID, true, nil
}

func newEntry(t store.Task, steps []store.Step) *entry {
	slices.SortStableFunc(steps, func(a, b store.Step) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.Name, b.Name))
	})
	e := &entry{task: t, steps: steps, index: make(map[string]int, len(steps))}
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
	cs, err := record.PrepareChanges(changes, time.Now())
	if err != nil {
		return fmt.Errorf("memory: apply: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	b := batch{s: s, tasks: map[string]store.Task{}, steps: map[stepKey]store.Step{}}
	for i, c := range cs {
		if err := b.add(i, c); err != nil {
			return fmt.Errorf("memory: apply: %w", err)
		}
	}
	b.commit()
	return nil
}

type stepKey struct{ task, step string }

// batch stages the effects of a batch of changes so that nothing is written
// unless every change matches.
type batch struct {
	s           *Store
	tasks       map[string]store.Task
	steps       map[stepKey]store.Step
	transitions []store.Transition
}

// add checks change i against the staged state and stages its effect.
func (b *batch) add(i int, c store.Change) error {
	e, ok := b.s.tasks[c.TaskID]
	if !ok {
		return record.Conflict(i, c, "unknown task")
	}
	if c.Step == "" {
		t, ok := b.tasks[c.TaskID]
		if !ok {
			t = e.task
		}
		if t.State != c.From {
			return record.Conflict(i, c, "task is %q, want %q", t.State, c.From)
		}
		t.State, t.UpdatedAt = c.To, c.At
		b.tasks[c.TaskID] = t
	} else {
		if err := b.addStep(i, c, e); err != nil {
			return err
		}
	}
	b.transitions = append(b.transitions, record.Transition(c))
	return nil
}

func (b *batch) addStep(i int, c store.Change, e *entry) error {
	k := stepKey{c.TaskID, c.Step}
	st, ok := b.steps[k]
	if !ok {
		idx, found := e.index[c.Step]
		if !found {
			return record.Conflict(i, c, "unknown step")
		}
		st = e.steps[idx]
	}
	if st.State != c.From || st.Attempts != c.FromAttempt {
		return record.Conflict(i, c, "step is %q attempt %d, want %q attempt %d",
			st.State, st.Attempts, c.From, c.FromAttempt)
	}
	st.State, st.Attempts = c.To, c.Attempt
	st.Result, st.Error, st.NextAttemptAt = c.Result, c.Error, c.NextAttemptAt
	st.UpdatedAt = c.At
	b.steps[k] = st
	return nil
}

// commit writes the staged effects into the store.
func (b *batch) commit() {
	for id, t := range b.tasks {
		b.s.tasks[id].task = t
	}
	for k, st := range b.steps {
		e := b.s.tasks[k.task]
		e.steps[e.index[k.step]] = st
	}
	for _, tr := range b.transitions {
		e := b.s.tasks[tr.TaskID]
		e.transitions = append(e.transitions, tr)
	}
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
	err := s.read(ctx, taskID, func(e *entry) { out = slices.Clone(e.transitions) })
	return out, err
}

// read calls fn with the task id under the read lock.
func (s *Store) read(ctx context.Context, id string, fn func(*entry)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	e, ok := s.tasks[id]
	if !ok {
		return fmt.Errorf("memory: task %q: %w", id, store.ErrNotFound)
	}
	fn(e)
	return nil
}

// ListTasks implements store.Store.
func (s *Store) ListTasks(ctx context.Context, f store.Filter) ([]store.Task, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, store.ErrClosed
	}
	var out []store.Task
	for _, e := range s.order {
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
		if matches(e.task, f) {
			out = append(out, record.CloneTask(e.task))
		}
	}
	return out, nil
}

func matches(t store.Task, f store.Filter) bool {
	return (f.Namespace == "" || t.Namespace == f.Namespace) &&
		(f.Name == "" || t.Name == f.Name) &&
		(len(f.States) == 0 || slices.Contains(f.States, t.State))
}

// Close discards the store's contents. Later calls return store.ErrClosed;
// Close itself is idempotent and always returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.tasks, s.order, s.keys = nil, nil, nil
	return nil
}
