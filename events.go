package tasker

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotasker/tasker/store"
)

// EventKind says what an Event reports.
type EventKind string

// The kinds of events. Task events have an empty Event.Step.
const (
	EventTaskSubmitted EventKind = "task_submitted" // Submit stored a new task (not one its idempotency key found)
	EventTaskStarted   EventKind = "task_started"   // the task moved from pending to in_progress
	EventTaskResumed   EventKind = "task_resumed"   // Retry or Resolve put a task in error back in progress
	EventTaskCompleted EventKind = "task_completed" // every step completed or was resolved
	EventTaskFailed    EventKind = "task_failed"    // the task ended in error
	EventTaskCancelled EventKind = "task_cancelled" // the task was cancelled
	// EventDeadLettered follows the EventTaskFailed of a task whose end
	// added a dead-letter entry; Reason is the entry's (DeadLetterStaleness
	// or DeadLetterRetriesExhausted) and Message its message.
	EventDeadLettered EventKind = "dead_lettered"

	EventStepCreated   EventKind = "step_created"   // a decision or a batchable step created the step, pending
	EventStepStarted   EventKind = "step_started"   // an attempt began (Attempt is its number)
	EventStepCompleted EventKind = "step_completed" // the attempt succeeded
	EventStepRetrying  EventKind = "step_retrying"  // the attempt failed; the next is due at RetryAt
	EventStepFailed    EventKind = "step_failed"    // the step failed for good (or was cut off with its task)
	EventStepCancelled EventKind = "step_cancelled" // the step was cancelled with its task
	EventStepResolved  EventKind = "step_resolved"  // an operator resolved the failed step (Resolve)
)

// Event is one lifecycle event of a task or of one of its steps, delivered
// to a Subscription once the change it reports is durable in the store.
type Event struct {
	Kind      EventKind
	TaskID    string
	Namespace string // the task's template
	Name      string
	Version   string
	Step      string    // "" for a task event
	Attempt   int       // the step's attempt; 0 for a task event
	At        time.Time // when the change happened, as recorded in the audit trail
	// Duration is, for the end of an attempt (EventStepCompleted,
	// EventStepRetrying, EventStepFailed, EventStepCancelled), how long it
	// ran, from its claim to its outcome; zero for an attempt this engine
	// did not see begin and end (one interrupted by a crash, one waiting
	// for its sub-task when its task was cancelled or cut short). For a
	// task's end (EventTaskCompleted, EventTaskFailed, EventTaskCancelled),
	// the time since the task was submitted. Zero otherwise.
	Duration time.Duration
	// Error is the failure an EventStepRetrying or EventStepFailed reports;
	// nil for the other kinds.
	Error   *Failure
	RetryAt time.Time // for EventStepRetrying, when the next attempt is due
	By      string    // who asked: an operator action's By, a submission's Initiator
	Reason  string    // why, when recorded (an operator's reason, a task cut short)
	Message string    // for EventDeadLettered, the entry's message
	// Lost is how many events this subscription lost, because its buffer
	// was full, just before this one.
	Lost uint64
}

// DefaultEventBuffer is the buffer of a Subscription when Subscribe is given
// none.
const DefaultEventBuffer = 1024

// Subscription receives an engine's events on a buffered channel. The
// engine never waits for a subscriber: an event that finds the buffer full
// is dropped, and counted. The next event delivered says how many were
// lost just before it (Event.Lost), and Lost counts them all.
//
// The events of one step, and a task's own events (submitted, started,
// its end), arrive in the order their changes became durable. The events
// of steps that run at once interleave, and the completion of a step that
// ran alongside others may arrive after its task's end: the engine does not
// yet order those two writes (see ARCHITECTURE.md). Each event is sent by
// the goroutine that made its change durable, right after: a channel send
// per subscriber. With no subscriber, events cost one atomic load per write.
type Subscription struct {
	h *hub
	c chan Event

	mu     sync.Mutex // serializes sends with each other and with Close
	gap    uint64     // events lost since the last one delivered
	closed bool
	lost   atomic.Uint64
}

// Subscribe returns a subscription to every event of the engine from now
// on, with room for buffer events (DefaultEventBuffer when buffer is not
// positive). Close it when done; Stop closes every subscription. A
// subscription taken after Stop is closed already.
func (e *Engine) Subscribe(buffer int) *Subscription {
	if buffer <= 0 {
		buffer = DefaultEventBuffer
	}
	sub := &Subscription{h: &e.sched.events, c: make(chan Event, buffer)}
	e.sched.events.add(sub)
	return sub
}

// C returns the channel the events arrive on. It is closed by Close and
// when the engine stops, once the events already in it are received.
func (s *Subscription) C() <-chan Event { return s.c }

// Lost returns how many events the subscription has lost so far because
// its buffer was full.
func (s *Subscription) Lost() uint64 { return s.lost.Load() }

// Close ends the subscription: no event is sent on C after it, and C is
// closed. Calling Close again is harmless.
func (s *Subscription) Close() {
	s.h.remove(s)
	s.shut()
}

// shut closes C, once.
func (s *Subscription) shut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.c)
	}
}

// send delivers ev unless the buffer is full; it never blocks.
func (s *Subscription) send(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	ev.Lost = s.gap
	select {
	case s.c <- ev:
		s.gap = 0
	default:
		s.gap++
		s.lost.Add(1)
	}
}

// hub holds an engine's subscriptions and turns the changes the scheduler
// has made durable into events for them. With no subscriber, subs is nil:
// the writers' check, on, is one atomic load.
type hub struct {
	mu      sync.Mutex // serializes add, remove and closeAll
	subs    atomic.Pointer[[]*Subscription]
	stopped bool
}

// on reports whether anyone subscribed.
func (h *hub) on() bool { return h.subs.Load() != nil }

func (h *hub) add(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		s.shut()
		return
	}
	var subs []*Subscription
	if p := h.subs.Load(); p != nil {
		subs = append(subs, *p...)
	}
	subs = append(subs, s)
	h.subs.Store(&subs)
}

func (h *hub) remove(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.subs.Load()
	if p == nil {
		return
	}
	var subs []*Subscription
	for _, x := range *p {
		if x != s {
			subs = append(subs, x)
		}
	}
	if len(subs) == 0 {
		h.subs.Store(nil)
	} else {
		h.subs.Store(&subs)
	}
}

// closeAll closes every subscription, and those taken later, as the
// engine stops.
func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	if p := h.subs.Swap(nil); p != nil {
		for _, s := range *p {
			s.shut()
		}
	}
}

func (h *hub) publish(ev Event) {
	if p := h.subs.Load(); p != nil {
		for _, s := range *p {
			s.send(ev)
		}
	}
}

// taskMeta is what an event says of its task besides the change: the
// template, and when the task was submitted.
type taskMeta struct {
	namespace, name, version string
	created                  time.Time
}

func runMeta(r *run) taskMeta {
	return taskMeta{r.tmpl.Namespace, r.tmpl.Name, r.tmpl.Version, r.created}
}

func recordMeta(t store.Task) taskMeta {
	return taskMeta{t.Namespace, t.Name, t.Version, t.CreatedAt}
}

// submitted publishes the submission of task, just stored.
func (h *hub) submitted(t store.Task) {
	if !h.on() {
		return
	}
	m := recordMeta(t)
	h.publish(Event{Kind: EventTaskSubmitted, TaskID: t.ID, Namespace: m.namespace, Name: m.name, Version: m.version,
		At: t.CreatedAt, By: t.Initiator, Reason: t.Reason})
}

// wrote publishes the events of changes to a task of m, just made durable.
// started, when set, is when the attempt whose outcome changes holds was
// claimed.
func (h *hub) wrote(m taskMeta, changes []store.Change, started time.Time) {
	if !h.on() {
		return
	}
	for _, ch := range changes {
		if ev, ok := eventOf(m, ch, started); ok {
			h.publish(ev)
		}
		if ch.Step == "" && ch.DeadLetter != nil {
			h.publish(Event{Kind: EventDeadLettered, TaskID: ch.TaskID, Namespace: m.namespace, Name: m.name,
				Version: m.version, At: ch.At, By: ch.By, Reason: ch.DeadLetter.Reason, Message: ch.DeadLetter.Message})
		}
	}
}

// eventOf returns the event that change ch of a task of m reports, or
// false when it reports none (a checkpoint, the reset of a step Retry runs
// again).
func eventOf(m taskMeta, ch store.Change, started time.Time) (Event, bool) {
	ev := Event{TaskID: ch.TaskID, Namespace: m.namespace, Name: m.name, Version: m.version, Step: ch.Step,
		At: ch.At, By: ch.By, Reason: ch.Reason}
	if ch.Step == "" {
		ev.Kind = taskEventKind(TaskState(ch.From), TaskState(ch.To))
		if TaskState(ch.To).Ended() {
			ev.Duration = ch.At.Sub(m.created)
		}
		return ev, ev.Kind != ""
	}
	from, to := StepState(ch.From), StepState(ch.To)
	ev.Kind, ev.Attempt = stepEventKind(from, to), ch.Attempt
	if from == StepInProgress && to != StepInProgress && !started.IsZero() {
		ev.Duration = ch.At.Sub(started)
	}
	switch ev.Kind {
	case EventStepRetrying:
		ev.Error, ev.RetryAt = failureView(ch.Error), ch.NextAttemptAt
	case EventStepFailed:
		ev.Error = failureView(ch.Error)
	}
	return ev, ev.Kind != ""
}

func taskEventKind(from, to TaskState) EventKind {
	switch to {
	case TaskInProgress:
		if from == TaskPending {
			return EventTaskStarted
		}
		return EventTaskResumed
	case TaskComplete:
		return EventTaskCompleted
	case TaskFailed:
		return EventTaskFailed
	case TaskCancelled:
		return EventTaskCancelled
	}
	return ""
}

func stepEventKind(from, to StepState) EventKind {
	switch {
	case from == "":
		return EventStepCreated
	case to == StepInProgress && from != StepInProgress:
		return EventStepStarted
	case to == StepComplete:
		return EventStepCompleted
	case to == StepWaitingForRetry:
		return EventStepRetrying
	case to == StepFailed:
		return EventStepFailed
	case to == StepCancelled:
		return EventStepCancelled
	case to == StepResolvedManually:
		return EventStepResolved
	}
	return ""
}
