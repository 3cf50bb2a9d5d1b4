package tasker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotasker/tasker/internal/uuid"
	"github.com/gotasker/tasker/store"
	"github.com/xeipuuv/gojsonschema"
	"go.uber.org/zap"
)

// PublishedEvent is a domain event as a Publisher receives it: one of a
// step's publishes_events whose condition its attempt's outcome met.
type PublishedEvent struct {
	// ID is unique per event and the same on every delivery of it (for a
	// durable event, its outbox entry's ID): consumers dedupe on it, since
	// durable delivery is at least once.
	ID        string `json:"id"`
	Name      string `json:"name"`
	TaskID    string `json:"task_id"`
	Step      string `json:"step"`
	Namespace string `json:"namespace"` // the task's template
	Template  string `json:"template"`
	Version   string `json:"version"`
	Attempt   int    `json:"attempt"`
	// Outcome is OutcomeSuccess, OutcomeRetryableFailure or
	// OutcomePermanentFailure.
	Outcome string `json:"outcome"`
	// Payload is what the handler set with StepContext.SetEventPayload;
	// otherwise the step's result on success, and the attempt's Failure
	// on a failure. It is valid against the event's schema.
	Payload      json.RawMessage `json:"payload,omitempty"`
	DeliveryMode string          `json:"delivery_mode"`
	Publisher    string          `json:"publisher,omitempty"` // "" for the engine's Bus
	At           time.Time       `json:"at"`                  // when the outcome happened
}

// The outcomes a PublishedEvent reports.
const (
	OutcomeSuccess          = "success"
	OutcomeRetryableFailure = "retryable_failure"
	OutcomePermanentFailure = "permanent_failure"
)

// Publisher delivers domain events somewhere: a message broker, a webhook,
// a log. Publish is called from the engine's goroutines, possibly at once
// for several events, and should honour ctx: Stop waits for a delivery in
// progress as for a running handler, and cancels ctx once its own context
// ends. An error is logged and counted; a durable event is delivered
// again later, a fast one is not. Publishing never fails the step.
type Publisher interface {
	Publish(ctx context.Context, e PublishedEvent) error
}

// PublisherFunc adapts a function to Publisher.
type PublisherFunc func(ctx context.Context, e PublishedEvent) error

// Publish calls f(ctx, e).
func (f PublisherFunc) Publish(ctx context.Context, e PublishedEvent) error { return f(ctx, e) }

// DomainEventStats counts an engine's domain event deliveries since New.
type DomainEventStats struct {
	Published uint64 // deliveries a publisher accepted
	Failed    uint64 // deliveries a publisher refused (each attempt), or to no publisher of that name
	Rejected  uint64 // events not published: their payload broke the event's schema
}

// RegisterPublisher makes p the publisher of the events whose
// publishes_events entry names name in its publisher field. Events that
// name none go to the engine's Bus (DomainEvents). A name registered twice
// is an error, and so are an empty name and a nil p. A durable event for a
// name not registered (yet) is retried until it is.
func (e *Engine) RegisterPublisher(name string, p Publisher) error {
	return e.sched.domain.register(name, p)
}

// DomainEvents returns the engine's in-process bus, the publisher of every
// event that names no publisher of its own. Stop closes its subscriptions.
func (e *Engine) DomainEvents() *Bus { return e.sched.domain.bus }

// DomainEventStats returns the counts of the engine's domain event
// deliveries so far.
func (e *Engine) DomainEventStats() DomainEventStats {
	d := e.sched.domain
	return DomainEventStats{Published: d.published.Load(), Failed: d.failed.Load(), Rejected: d.rejected.Load()}
}

// SetEventPayload sets, as v JSON-encoded, the payload of the event name
// that this attempt publishes if its outcome meets the event's condition,
// instead of the step's result. It fails when v cannot be encoded or the
// step does not publish an event of that name. The payload is checked
// against the event's schema when the event is published.
func (c *StepContext) SetEventPayload(name string, v any) error {
	if !c.bound() {
		return errors.New("tasker: set event payload: not in a running attempt")
	}
	if c.spec.eventSpec(name) == nil {
		return fmt.Errorf("tasker: set event payload: step %s publishes no event %q", c.spec.Name, name)
	}
	raw, err := toJSON("event payload", v)
	if err != nil {
		return fmt.Errorf("tasker: set event payload of %s: %w", name, err)
	}
	c.evMu.Lock()
	defer c.evMu.Unlock()
	if c.payloads == nil {
		c.payloads = make(map[string]json.RawMessage)
	}
	c.payloads[name] = raw
	return nil
}

// eventPayloads returns what SetEventPayload set, or nil.
func (c *StepContext) eventPayloads() map[string]json.RawMessage {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	return c.payloads
}

// eventSpec is one of a step's publishes_events, ready to publish: its
// schema (its own, or the domain event's) compiled.
type eventSpec struct {
	decl   EventDeclaration
	schema *gojsonschema.Schema // nil: any payload
}

// eventSpec returns the step's event named name, or nil.
func (s *StepSpec) eventSpec(name string) *eventSpec {
	for i := range s.events {
		if s.events[i].decl.Name == name {
			return &s.events[i]
		}
	}
	return nil
}

// prepareEvents compiles the schemas of every step's publishes_events.
// They compiled at load, so an error cannot happen; a schema that failed
// all the same checks nothing.
func (t *Template) prepareEvents() {
	schemas := make(map[string]json.RawMessage, len(t.DomainEvents))
	for _, de := range t.DomainEvents {
		schemas[de.Name] = de.Schema
	}
	for _, s := range t.Steps {
		for _, d := range s.PublishesEvents {
			raw := d.Schema
			if raw == nil {
				raw = schemas[d.Name]
			}
			ev := eventSpec{decl: d}
			if raw != nil {
				ev.schema, _ = gojsonschema.NewSchema(gojsonschema.NewBytesLoader(raw))
			}
			s.events = append(s.events, ev)
		}
	}
}

// matches reports whether condition cond is met by outcome.
func matches(cond, outcome string) bool {
	switch cond {
	case "always":
		return true
	case "failure":
		return outcome != OutcomeSuccess
	}
	return cond == outcome
}

// eventOutcome names the outcome that step change ch records, or "" for one
// that publishes nothing (a cancellation).
func eventOutcome(ch store.Change) string {
	switch StepState(ch.To) {
	case StepComplete:
		return OutcomeSuccess
	case StepWaitingForRetry:
		return OutcomeRetryableFailure
	case StepFailed:
		return OutcomePermanentFailure
	}
	return ""
}

// eventBatch is what an outcome publishes, for the scheduler once its
// change is durable: the fast deliveries, and whether the change carried
// outbox entries; the events whose payload broke their schema, to log.
type eventBatch struct {
	fast     []PublishedEvent
	durable  bool
	rejected []rejection
}

// rejection is an event not published: its payload broke its schema.
type rejection struct {
	event      PublishedEvent
	violations []Violation
}

// publishes returns the events that outcome change ch of step spec
// publishes, the durable ones as outbox entries (for ch's write), or nil
// when none. outbox says whether the store keeps an outbox; without one,
// durable events are delivered as fast ones.
func publishes(spec *StepSpec, meta taskMeta, ch store.Change, payloads map[string]json.RawMessage, outbox bool) ([]store.OutboxEntry, *eventBatch) {
	outcome := eventOutcome(ch)
	var entries []store.OutboxEntry
	var b *eventBatch
	for i := range spec.events {
		ev := &spec.events[i]
		if outcome == "" || !matches(ev.decl.Condition, outcome) {
			continue
		}
		if b == nil {
			b = &eventBatch{}
		}
		pe := newPublished(ev.decl, meta, ch, outcome, payloads)
		if vs := schemaViolations(ev.schema, pe.Payload); len(vs) > 0 {
			b.rejected = append(b.rejected, rejection{pe, vs})
			continue
		}
		mode := ev.decl.DeliveryMode
		if mode != "fast" && outbox {
			data, _ := json.Marshal(pe) // plain fields: cannot fail
			entries = append(entries, store.OutboxEntry{ID: pe.ID, Data: data})
			b.durable = true
		}
		switch {
		case mode == "fast" || !outbox:
			b.fast = append(b.fast, pe)
		case mode == "broadcast" && pe.Publisher != "":
			bus := pe
			bus.Publisher = ""
			b.fast = append(b.fast, bus) // in-process at once; durably to its publisher
		}
	}
	return entries, b
}

// newPublished returns the event decl publishes for outcome change ch.
func newPublished(decl EventDeclaration, meta taskMeta, ch store.Change, outcome string, payloads map[string]json.RawMessage) PublishedEvent {
	payload := payloads[decl.Name]
	switch {
	case payload != nil:
	case outcome == OutcomeSuccess:
		payload = ch.Result
		if payload == nil {
			payload = json.RawMessage("null")
		}
	default:
		f := failureView(ch.Error)
		if f != nil {
			f.Stack = "" // the handler's stack stays in the audit trail
		}
		payload, _ = json.Marshal(f)
	}
	return PublishedEvent{
		ID: uuid.NewV7(ch.At), Name: decl.Name, TaskID: ch.TaskID, Step: ch.Step,
		Namespace: meta.namespace, Template: meta.name, Version: meta.version,
		Attempt: ch.Attempt, Outcome: outcome, Payload: payload,
		DeliveryMode: decl.DeliveryMode, Publisher: decl.Publisher, At: ch.At,
	}
}

// domainEvents delivers an engine's domain events: the fast ones at once,
// the durable ones from the store's outbox by one dispatcher goroutine,
// owned by the scheduler, woken after a write that added entries and
// retrying failed deliveries with backoff.
type domainEvents struct {
	log  *zap.Logger
	bus  *Bus
	ob   store.Outboxer // nil when the store keeps no outbox
	wake chan struct{}  // one pending wake-up for the dispatcher

	retryMin, retryMax time.Duration

	mu   sync.RWMutex
	pubs map[string]Publisher

	published, failed, rejected atomic.Uint64
}

// The delays between passes of the dispatcher over an outbox holding
// entries it could not deliver.
const (
	outboxRetryMin = 10 * time.Millisecond
	outboxRetryMax = 5 * time.Second
	outboxPage     = 256
)

func newDomainEvents(st store.Store, log *zap.Logger) *domainEvents {
	d := &domainEvents{log: log, bus: &Bus{}, wake: make(chan struct{}, 1),
		retryMin: outboxRetryMin, retryMax: outboxRetryMax, pubs: make(map[string]Publisher)}
	d.ob, _ = st.(store.Outboxer)
	return d
}

func (d *domainEvents) register(name string, p Publisher) error {
	if name == "" || p == nil {
		return errors.New("tasker: RegisterPublisher needs a name and a publisher")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.pubs[name]; ok {
		return fmt.Errorf("tasker: publisher %q already registered", name)
	}
	d.pubs[name] = p
	return nil
}

// checkTemplate warns when t has durable events and the store keeps no
// outbox: they are then delivered as fast ones, lost if the process stops.
func (d *domainEvents) checkTemplate(t *Template) {
	if d.ob != nil {
		return
	}
	for _, s := range t.Steps {
		for _, ev := range s.events {
			if ev.decl.DeliveryMode != "fast" {
				d.log.Warn("tasker: the store keeps no outbox (store.Outboxer): durable events are delivered as fast ones",
					zap.String("template", t.String()), zap.String("step", s.Name), zap.String("event", ev.decl.Name))
				return
			}
		}
	}
}

// deliver publishes e to its publisher, counting the outcome.
func (d *domainEvents) deliver(ctx context.Context, e PublishedEvent) error {
	var p Publisher = d.bus
	if e.Publisher != "" {
		d.mu.RLock()
		p = d.pubs[e.Publisher]
		d.mu.RUnlock()
	}
	err := errNoPublisher
	if p != nil {
		err = p.Publish(ctx, e)
	}
	if err != nil {
		d.failed.Add(1)
		d.log.Warn("tasker: domain event not delivered", zap.String("event", e.Name), zap.String("id", e.ID),
			zap.String("publisher", e.Publisher), zap.String("task", e.TaskID), zap.String("step", e.Step),
			zap.String("delivery_mode", e.DeliveryMode), zap.Error(err))
		return err
	}
	d.published.Add(1)
	return nil
}

// written carries out b, an outcome's events, once its change is durable:
// it logs the rejected ones, delivers the fast ones and wakes the
// dispatcher for the durable ones.
func (d *domainEvents) written(ctx context.Context, b *eventBatch) {
	for _, r := range b.rejected {
		d.rejected.Add(1)
		d.log.Warn("tasker: domain event not published: its payload breaks its schema", zap.String("event", r.event.Name),
			zap.String("task", r.event.TaskID), zap.String("step", r.event.Step), zap.Any("violations", r.violations))
	}
	for _, e := range b.fast {
		_ = d.deliver(ctx, e) // logged and counted; a fast event is not retried
	}
	if b.durable {
		select {
		case d.wake <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// dispatch delivers the outbox's entries until stop is closed: at once
// (what a previous process left), after each wake-up, and again with
// backoff while some could not be delivered.
func (d *domainEvents) dispatch(ctx context.Context, stop <-chan struct{}) {
	delay := d.retryMin
	for {
		var t *time.Timer
		var retry <-chan time.Time
		if d.drain(ctx, stop) {
			delay = d.retryMin
		} else {
			t = time.NewTimer(delay)
			retry, delay = t.C, min(2*delay, d.retryMax)
		}
		select {
		case <-stop:
		case <-d.wake:
		case <-retry:
		}
		if t != nil {
			t.Stop()
		}
		if stopped(stop) {
			return
		}
	}
}

// drain makes one pass over the outbox, page by page, delivering every
// entry and acknowledging those delivered; it reports whether all were.
// An entry not delivered stays pending: the next page starts after the
// last of those, the ones before it being acknowledged. The pass ends
// early, what it delivered acknowledged, once stop is closed.
func (d *domainEvents) drain(ctx context.Context, stop <-chan struct{}) bool {
	ok, after := true, ""
	for ctx.Err() == nil {
		page, err := d.ob.PendingOutbox(ctx, after, outboxPage)
		if err != nil {
			d.log.Warn("tasker: reading the outbox failed; retrying", zap.Error(err))
			return false
		}
		var acks []string
		for _, en := range page {
			if stopped(stop) {
				ok = false
				break
			}
			var e PublishedEvent
			if err := json.Unmarshal(en.Data, &e); err != nil {
				d.log.Error("tasker: outbox entry is not an event; dropped", zap.String("id", en.ID), zap.Error(err))
			} else if d.deliver(ctx, e) != nil {
				ok, after = false, en.ID
				continue
			}
			acks = append(acks, en.ID)
		}
		if err := d.ob.AckOutbox(context.WithoutCancel(ctx), acks); err != nil {
			d.log.Warn("tasker: acknowledging outbox entries failed; they will be delivered again", zap.Error(err))
			return false
		}
		if stopped(stop) || len(page) < outboxPage {
			return ok
		}
	}
	return false
}

// stopped reports whether stop is closed.
func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// Bus is the engine's in-process publisher (Engine.DomainEvents): it hands
// every event it is given to each of its subscriptions, never waiting: an
// event that finds a subscription's buffer full is dropped for it, and
// counted (BusSubscription.Dropped).
type Bus struct {
	mu     sync.Mutex
	subs   map[*BusSubscription]struct{}
	closed bool
}

// BusSubscription receives a Bus's events on a buffered channel.
type BusSubscription struct {
	c       chan PublishedEvent
	bus     *Bus
	dropped atomic.Uint64
}

// Subscribe returns a new subscription with room for buffer events
// (DefaultEventBuffer when buffer is not positive). On a closed bus the
// subscription's channel is closed at once.
func (b *Bus) Subscribe(buffer int) *BusSubscription {
	if buffer <= 0 {
		buffer = DefaultEventBuffer
	}
	s := &BusSubscription{c: make(chan PublishedEvent, buffer), bus: b}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.c)
		return s
	}
	if b.subs == nil {
		b.subs = make(map[*BusSubscription]struct{})
	}
	b.subs[s] = struct{}{}
	return s
}

// Publish implements Publisher: it hands e to every subscription. It never
// fails.
func (b *Bus) Publish(_ context.Context, e PublishedEvent) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.c <- e:
		default:
			s.dropped.Add(1)
		}
	}
	return nil
}

// close closes every subscription; later ones are closed at once.
func (b *Bus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		close(s.c)
	}
	b.subs = nil
}

// C returns the channel of events, closed by Close or when the engine
// stops.
func (s *BusSubscription) C() <-chan PublishedEvent { return s.c }

// Dropped returns how many events the subscription lost to a full buffer.
func (s *BusSubscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and closes its channel. It is idempotent.
func (s *BusSubscription) Close() {
	b := s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.c)
	}
}
