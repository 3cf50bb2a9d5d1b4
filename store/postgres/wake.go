package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// The wake listener's reconnection backoff: from minBackoff, doubling to
// maxBackoff, back to minBackoff once it listens again.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// closeTimeout bounds how long the listener's connection takes to say
// goodbye to the server.
const closeTimeout = time.Second

// waker is the Store's Wake channel and the goroutine that feeds it.
type waker struct {
	ch chan struct{} // buffer 1, sent to without blocking; never closed

	mu      sync.Mutex // guards the fields below
	started bool
	stopped bool
	cancel  context.CancelFunc
	done    chan struct{} // closed when the listener has returned
}

func (w *waker) init() { w.ch = make(chan struct{}, 1) }

// signal tells Wake's receiver, without waiting for it.
func (w *waker) signal() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// start runs listen in a goroutine of its own, once, unless stop came
// first.
func (w *waker) start(listen func(context.Context)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || w.stopped {
		return
	}
	w.started = true
	var ctx context.Context
	ctx, w.cancel = context.WithCancel(context.Background())
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		listen(ctx)
	}()
}

// stop ends the listener, if it started, and waits for it.
func (w *waker) stop() {
	w.mu.Lock()
	w.stopped = true
	started := w.started
	w.mu.Unlock()
	if started {
		w.cancel()
		<-w.done
	}
}

// Wake implements store.Waker. Its channel receives a value after each
// notification of the store's schema (a task created free, tasks released,
// by this Store or any other on the schema), and each time the listener
// starts listening, since it may have missed some while it did not. The
// first call starts the listener; a closed Store's channel receives
// nothing more.
func (s *Store) Wake() <-chan struct{} {
	s.wake.start(s.listen)
	return s.wake.ch
}

// listen keeps a connection LISTENing to the store's channel until ctx is
// done, reconnecting with backoff.
func (s *Store) listen(ctx context.Context) {
	backoff := minBackoff
	for {
		q, err := s.ready(ctx)
		if err == nil {
			err = s.listenOnce(ctx, q, &backoff)
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("postgres: wake listener lost, reconnecting", zap.Error(err), zap.Duration("in", backoff))
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// listenOnce connects, listens and signals each notification until the
// connection fails or ctx is done; once it listens it resets backoff.
func (s *Store) listenOnce(ctx context.Context, q *queries, backoff *time.Duration) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		_ = conn.Close(closeCtx) // the connection is done with either way
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{q.channel}.Sanitize()); err != nil {
		return err
	}
	*backoff = minBackoff
	s.log.Debug("postgres: wake listener listening", zap.String("channel", q.channel))
	s.wake.signal()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		s.wake.signal()
	}
}
