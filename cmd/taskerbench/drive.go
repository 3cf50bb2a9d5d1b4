package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotasker/tasker"
)

// sample is what one task's run came to.
type sample struct {
	submitted time.Time // just before Submit was called
	done      time.Time // just after Wait returned
	complete  bool      // the task ended complete, not in error
}

// driver submits tasks of one template and waits for them, counting the
// tasks in flight: submitted and not yet returned from Wait.
type driver struct {
	eng            *tasker.Engine
	req            tasker.SubmitRequest
	full           bool         // await with Engine.Wait, not Engine.WaitOutcome
	inflight, peak atomic.Int64 // tasks in flight now, and the most at once
}

// errNoTasks reports a -duration too short for any task to be submitted.
var errNoTasks = errors.New("no task was submitted within -duration")

// drive runs spec's tasks through d's engine in spec's mode: closed loop
// (-inflight), serial (-submitters 0, a closed loop of one) or open loop.
func (d *driver) drive(ctx context.Context, spec runSpec) ([]sample, error) {
	switch {
	case spec.inflight > 0:
		return d.closed(ctx, spec.inflight, spec.tasks, spec.duration)
	case spec.submitters == 0:
		return d.closed(ctx, 1, spec.tasks, 0)
	}
	return d.open(ctx, spec.tasks, spec.submitters)
}

// closed runs n submitters, each submitting its next task once its last
// has returned from Wait, so that at most n tasks are ever in flight: tasks
// tasks in all or, when duration is positive, as many as they start within
// duration (those in flight when it passes run to the end and count).
func (d *driver) closed(ctx context.Context, n, tasks int, duration time.Duration) ([]sample, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var taken atomic.Int64
	deadline := time.Now().Add(duration)
	more := func() bool { return int(taken.Add(1)) <= tasks }
	if duration > 0 {
		more = func() bool { return time.Now().Before(deadline) }
	}
	per := make([][]sample, n)
	var wg sync.WaitGroup
	for i := range per {
		wg.Go(func() {
			per[i] = make([]sample, 0, tasks/n+1)
			for ctx.Err() == nil && more() {
				var s sample
				if err := d.one(ctx, &s); err != nil {
					cancel(err)
					return
				}
				per[i] = append(per[i], s)
			}
		})
	}
	wg.Wait()
	samples := slices.Concat(per...)
	switch {
	case ctx.Err() != nil:
		return nil, context.Cause(ctx)
	case len(samples) == 0:
		return nil, errNoTasks
	}
	return samples, nil
}

// open submits tasks from submitters goroutines as fast as Submit returns,
// each task awaited by a goroutine of its own, and returns the first error.
func (d *driver) open(ctx context.Context, tasks, submitters int) ([]sample, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	samples := make([]sample, tasks)
	var (
		next             atomic.Int64
		subs, awaitsDone sync.WaitGroup
	)
	for range min(submitters, len(samples)) {
		subs.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(samples) {
					return
				}
				s := &samples[i]
				id, err := d.submit(ctx, s)
				if err != nil {
					cancel(err)
					return
				}
				awaitsDone.Go(func() {
					if err := d.await(ctx, id, s); err != nil {
						cancel(err)
					}
				})
			}
		})
	}
	subs.Wait()
	awaitsDone.Wait()
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	return samples, nil
}

// one submits a task and waits for it.
func (d *driver) one(ctx context.Context, s *sample) error {
	id, err := d.submit(ctx, s)
	if err != nil {
		return err
	}
	return d.await(ctx, id, s)
}

// submit submits a task, recording in s when, and counts it in flight
// unless Submit failed.
func (d *driver) submit(ctx context.Context, s *sample) (string, error) {
	n := d.inflight.Add(1)
	for p := d.peak.Load(); n > p && !d.peak.CompareAndSwap(p, n); p = d.peak.Load() {
	}
	s.submitted = time.Now()
	id, err := d.eng.Submit(ctx, d.req)
	if err != nil {
		d.inflight.Add(-1)
		return "", fmt.Errorf("submit: %w", err)
	}
	return id, nil
}

// await waits for task id with Engine.WaitOutcome (or Engine.Wait, which
// also reads the task back from the store, when d.full), records when it
// returned and how the task ended, and counts the task out of flight.
func (d *driver) await(ctx context.Context, id string, s *sample) error {
	wait := d.eng.WaitOutcome
	if d.full {
		wait = d.eng.Wait
	}
	task, err := wait(ctx, id)
	s.done = time.Now()
	d.inflight.Add(-1)
	if err != nil {
		return fmt.Errorf("wait for task %s: %w", id, err)
	}
	s.complete = task.State == tasker.TaskComplete
	return nil
}
