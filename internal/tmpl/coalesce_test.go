package tmpl

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// coalesceRig runs Daemon.coalesce in a synctest bubble, fed by the test
// instead of etcd watches, with a render that records when it ran.
type coalesceRig struct {
	t       *testing.T
	start   time.Time
	msgs    chan watchMsg
	done    chan error
	mu      sync.Mutex
	rev     int64 // the store's revision: what a render reflects
	fail    bool  // renders cannot read etcd
	renders []time.Duration
}

func newCoalesceRig(t *testing.T, opts Options) *coalesceRig {
	g := &coalesceRig{t: t, start: time.Now(), msgs: make(chan watchMsg), done: make(chan error, 1), rev: 1}
	d := &Daemon{opts: opts}
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		g.done <- d.coalesce(ctx, g.msgs, 1, func() (int64, error) {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.renders = append(g.renders, time.Since(g.start))
			if g.fail {
				return 0, errors.New("etcd unreachable")
			}
			return g.rev, nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-g.done:
		default:
		}
	})
	return g
}

func (g *coalesceRig) sleepUntil(d time.Duration) {
	g.t.Helper()
	if now := time.Since(g.start); d < now {
		g.t.Fatalf("sleepUntil(%v): already %v", d, now)
	}
	time.Sleep(d - time.Since(g.start))
}

// change makes a new revision at d and sends its watch message.
func (g *coalesceRig) change(d time.Duration) {
	g.t.Helper()
	g.sleepUntil(d)
	g.mu.Lock()
	g.rev++
	rev := g.rev
	g.mu.Unlock()
	g.msgs <- watchMsg{rev: rev}
}

// expect checks the render times so far, at d.
func (g *coalesceRig) expect(d time.Duration, want ...time.Duration) {
	g.t.Helper()
	g.sleepUntil(d)
	synctest.Wait()
	g.mu.Lock()
	got := slices.Clone(g.renders)
	g.mu.Unlock()
	if !slices.Equal(got, want) {
		g.t.Errorf("at %v: renders at %v, want %v", d, got, want)
	}
}

const msec = time.Millisecond

// Watch mode's coalescing in fake time: a render once the watch has been
// quiet for WaitMin, no later than WaitMax after a burst's first change,
// and none for changes a render already reflects.
func TestCoalesceWaitMinWaitMax(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newCoalesceRig(t, Options{WaitMin: 50 * msec, WaitMax: 200 * msec})

		// One change: rendered WaitMin after it.
		g.change(10 * msec)
		g.expect(60*msec - 1)
		g.expect(60*msec, 60*msec)

		// A message for a revision the render already reflects: nothing.
		g.sleepUntil(100 * msec)
		g.msgs <- watchMsg{rev: 2}
		g.expect(300*msec, 60*msec)

		// Changes 30 ms apart (never quiet for 50 ms), 300 to 690 ms:
		// the first render comes at WaitMax (500 ms); the next burst
		// starts with the change at 510 ms, so its render is due at
		// 710 ms at the latest: after the last change (690 ms) WaitMax
		// comes before the quiet WaitMin (740 ms).
		for at := 300 * msec; at <= 690*msec; at += 30 * msec {
			g.change(at)
		}
		g.expect(710*msec-1, 60*msec, 500*msec)
		g.expect(710*msec, 60*msec, 500*msec, 710*msec)
		g.expect(10*time.Second, 60*msec, 500*msec, 710*msec)
	})
}

// A render every Interval, changes or not; a failed render (etcd
// unreachable) or a failed watch ends the loop with the error.
func TestCoalesceIntervalAndErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newCoalesceRig(t, Options{WaitMin: 50 * msec, WaitMax: 200 * msec, Interval: time.Second})
		g.expect(3*time.Second-1, time.Second, 2*time.Second)
		g.expect(3*time.Second, time.Second, 2*time.Second, 3*time.Second)

		g.mu.Lock()
		g.fail = true
		g.mu.Unlock()
		g.change(3500 * msec)
		g.expect(3550*msec, time.Second, 2*time.Second, 3*time.Second, 3550*msec)
		select {
		case err := <-g.done:
			if err == nil || !strings.Contains(err.Error(), "re-render") || !strings.Contains(err.Error(), "etcd unreachable") {
				t.Fatalf("after a failed render: %v", err)
			}
		default:
			t.Fatal("coalesce goes on after a render could not read etcd")
		}
	})
	synctest.Test(t, func(t *testing.T) {
		g := newCoalesceRig(t, Options{WaitMin: 50 * msec, WaitMax: 200 * msec})
		g.change(10 * msec)
		broken := errors.New("watch compacted")
		g.msgs <- watchMsg{err: broken}
		if err := <-g.done; !errors.Is(err, broken) {
			t.Fatalf("after a failed watch: %v", err)
		}
		if time.Since(g.start) != 10*msec {
			t.Fatalf("returned at %v, want at once", time.Since(g.start))
		}
		g.expect(time.Second) // the pending change is not rendered here: the caller re-renders in full
	})
}
