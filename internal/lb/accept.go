package lb

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxConns is fleetd lb's default cap on concurrent client
// connections (--max-conns).
const DefaultMaxConns = 10000

// connLimit caps concurrent client connections, as HAProxy's maxconn does:
// while the cap is reached nothing is accepted, so new connections wait in
// the kernel's accept queue (the listen backlog) until one ends. The zero
// value (nil channel) means no cap.
type connLimit struct {
	slots  chan struct{}
	warned atomic.Int64 // unix nanos of the last "cap reached" warning
}

func newConnLimit(n int) *connLimit {
	if n <= 0 {
		return &connLimit{}
	}
	return &connLimit{slots: make(chan struct{}, n)}
}

// acquire takes a slot, waiting while every slot is taken; false means ctx
// ended first.
func (l *connLimit) acquire(ctx context.Context, log *slog.Logger, service string) bool {
	if l.slots == nil {
		return true
	}
	select {
	case l.slots <- struct{}{}:
		return true
	default:
	}
	now := time.Now().UnixNano()
	if last := l.warned.Load(); now-last >= int64(10*time.Second) && l.warned.CompareAndSwap(last, now) {
		log.Warn("lb: --max-conns reached; new connections wait in the accept queue", "service", service,
			"max_conns", cap(l.slots))
	}
	select {
	case l.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// releaser returns a function that gives the slot back once, however often
// it is called.
func (l *connLimit) releaser() func() {
	if l.slots == nil {
		return func() {}
	}
	var once sync.Once
	return func() { once.Do(func() { <-l.slots }) }
}

// acceptLoop accepts connections on ln and hands each to handle, with the
// function that frees its slot in limit (to be called once the connection
// is closed), until ctx ends (ln is closed then, and acceptLoop returns nil)
// or ln fails for good (the error is returned). Temporary accept errors
// back off up to a second. While limit is full it does not accept.
func acceptLoop(ctx context.Context, ln net.Listener, limit *connLimit, log *slog.Logger, service string, handle func(net.Conn, func())) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	delay := 5 * time.Millisecond
	for {
		if !limit.acquire(ctx, log, service) {
			return nil
		}
		release := limit.releaser()
		c, err := ln.Accept()
		if err != nil {
			release()
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(delay)
				delay = min(2*delay, time.Second)
				continue
			}
			return err
		}
		delay = 5 * time.Millisecond
		handle(c, release)
	}
}
