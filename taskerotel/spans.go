package taskerotel

import (
	"time"

	"go.opentelemetry.io/otel/trace"
)

// openSpan is an open task span. Its fields but prev and next never change
// once it is in a spanTable; those two are the table's, under its lock.
type openSpan struct {
	id, namespace, name string
	span                trace.Span
	opened              time.Time // when this process started it
	seq                 uint64    // its place in the order spans were opened, from 1
	prev, next          *openSpan
}

// spanTable holds the open task spans by task ID, and in the order they
// were opened, oldest first, for the cap to end the oldest and for the
// reconciler to walk them round. The zero value is not usable: see
// newSpanTable. Its user serializes the calls.
type spanTable struct {
	byID       map[string]*openSpan
	head, tail *openSpan
	cursor     *openSpan // the next span a reconciliation pass looks at; nil: the oldest
	seq        uint64    // the seq of the last span added
	// lossSeq is the seq of the last span opened when events were last
	// seen lost: spans up to it may have missed their end, and are due
	// whatever their age.
	lossSeq uint64
}

func newSpanTable() spanTable { return spanTable{byID: make(map[string]*openSpan)} }

func (tb *spanTable) len() int { return len(tb.byID) }

// get returns the open span of task id, or nil.
func (tb *spanTable) get(id string) *openSpan { return tb.byID[id] }

// add adds s, the newest span, numbering it.
func (tb *spanTable) add(s *openSpan) {
	tb.seq++
	s.seq, s.prev, s.next = tb.seq, tb.tail, nil
	if tb.tail != nil {
		tb.tail.next = s
	} else {
		tb.head = s
	}
	tb.tail = s
	tb.byID[s.id] = s
}

// remove removes s, which the table holds.
func (tb *spanTable) remove(s *openSpan) {
	if tb.cursor == s {
		tb.cursor = s.next
	}
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		tb.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		tb.tail = s.prev
	}
	s.prev, s.next = nil, nil
	delete(tb.byID, s.id)
}

// take removes s and reports whether the table held it: false when its end
// was handled already, or another span replaced it.
func (tb *spanTable) take(s *openSpan) bool {
	if tb.byID[s.id] != s {
		return false
	}
	tb.remove(s)
	return true
}

// oldest returns the span opened first, or nil.
func (tb *spanTable) oldest() *openSpan { return tb.head }

// drain removes every span and returns them, oldest first.
func (tb *spanTable) drain() []*openSpan {
	out := make([]*openSpan, 0, len(tb.byID))
	for s := tb.head; s != nil; s = s.next {
		out = append(out, s)
	}
	*tb = spanTable{byID: make(map[string]*openSpan), seq: tb.seq}
	return out
}

// lost notes that events were lost: every span open now is due.
func (tb *spanTable) lost() { tb.lossSeq = tb.seq }

// due returns up to n spans for a reconciliation pass to look at, from the
// cursor on: those opened before before, and any opened before events were
// last seen lost. It moves the cursor past them, or back to the oldest span
// once it reaches the end or a span too young to look at (the spans after
// it are younger still).
func (tb *spanTable) due(n int, before time.Time) []*openSpan {
	var out []*openSpan
	s := tb.cursor
	if s == nil {
		s = tb.head
	}
	for ; s != nil && len(out) < n; s = s.next {
		if s.seq > tb.lossSeq && !s.opened.Before(before) {
			s = nil
			break
		}
		out = append(out, s)
	}
	tb.cursor = s
	return out
}
