package registry

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
)

// fakeProbe stands for the network check: it passes while healthy is true
// and records when it ran (fake time, since the start of the bubble).
type fakeProbe struct {
	start   time.Time
	mu      sync.Mutex
	healthy bool
	at      []time.Duration
}

func (p *fakeProbe) check(ctx context.Context, _ fleet.Service) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.at = append(p.at, time.Since(p.start))
	if !p.healthy {
		return errors.New("sick")
	}
	return nil
}

func (p *fakeProbe) set(healthy bool) {
	p.mu.Lock()
	p.healthy = healthy
	p.mu.Unlock()
}

// times returns the times of the checks so far, and how many.
func (p *fakeProbe) times() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.at)
}

// checkRig runs one endpoint's runCheck against a fakeProbe, inside a
// synctest bubble: no etcd, no network, fake time.
type checkRig struct {
	t      *testing.T
	r      *Registry
	c      *checker
	probe  *fakeProbe
	cancel context.CancelFunc
	done   chan struct{}
}

func newCheckRig(t *testing.T, svc fleet.Service) *checkRig {
	t.Helper()
	p := &fakeProbe{start: time.Now()}
	r := New(Config{MachineID: "m1", PublicIP: "127.0.0.1", Hostname: "h"})
	r.probe = p.check
	c := &checker{svc: svc, since: time.Now()}
	ctx, cancel := context.WithCancel(t.Context())
	rig := &checkRig{t: t, r: r, c: c, probe: p, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(rig.done); r.runCheck(ctx, "u.service", c) }()
	t.Cleanup(rig.stop)
	return rig
}

func (g *checkRig) stop() { g.cancel(); <-g.done }

// at sleeps until d after the start and lets the checker finish what is
// due then.
func (g *checkRig) at(d time.Duration) {
	g.t.Helper()
	if now := time.Since(g.probe.start); d < now {
		g.t.Fatalf("at(%v): already %v", d, now)
	}
	time.Sleep(d - time.Since(g.probe.start))
	synctest.Wait()
}

func (g *checkRig) healthy() (bool, time.Time) {
	g.r.mu.Lock()
	defer g.r.mu.Unlock()
	return g.c.healthy, g.c.since
}

// kicked reports whether the checker woke the publisher since the last
// call.
func (g *checkRig) kicked() bool {
	select {
	case <-g.r.wake:
		return true
	default:
		return false
	}
}

// expect checks the state at the current fake time: healthy or not, the
// exact times of the checks so far, and whether the publisher was woken.
func (g *checkRig) expect(what string, healthy bool, checks []time.Duration, kicked bool) {
	g.t.Helper()
	if h, _ := g.healthy(); h != healthy {
		g.t.Errorf("%s (at %v): healthy = %v, want %v", what, time.Since(g.probe.start), h, healthy)
	}
	if got := g.probe.times(); !slices.Equal(got, checks) {
		g.t.Errorf("%s: checks at %v, want %v", what, got, checks)
	}
	if k := g.kicked(); k != kicked {
		g.t.Errorf("%s: publisher woken = %v, want %v", what, k, kicked)
	}
}

func ms(ns ...int) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n) * time.Millisecond
	}
	return out
}

// The package contract, item 2, in fake time: until its first pass an
// endpoint is checked every 500 ms (pendingCheckInterval) and published at
// the first pass; then every CheckInterval, and it takes CheckThreshold
// consecutive failures to remove it and as many consecutive passes to
// restore it.
func TestCheckCadenceAndThreshold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newCheckRig(t, fleet.Service{Name: "api", Port: 80, CheckHTTP: "/health", CheckInterval: 2 * time.Second, CheckThreshold: 3})

		// Failing from the start: a check at once, then every 500 ms.
		g.at(1999 * time.Millisecond)
		g.expect("failing from the start", false, ms(0, 500, 1000, 1500), false)

		// The first pass publishes at once (one pass is enough before
		// the endpoint was ever healthy).
		g.probe.set(true)
		g.at(2000 * time.Millisecond)
		g.expect("first pass", true, ms(0, 500, 1000, 1500, 2000), true)
		if _, since := g.healthy(); !since.Equal(g.probe.start.Add(2 * time.Second)) {
			t.Errorf("healthy since %v, want the time of the first pass", since.Sub(g.probe.start))
		}

		// Healthy: checked every CheckInterval (2 s), no longer every
		// 500 ms.
		g.at(5999 * time.Millisecond)
		g.expect("healthy", true, ms(0, 500, 1000, 1500, 2000, 4000), false)

		// Failing: two failures (6 s, 8 s) keep it, the third (10 s)
		// removes it, not a moment before.
		g.probe.set(false)
		g.at(9999 * time.Millisecond)
		g.expect("two failures", true, ms(0, 500, 1000, 1500, 2000, 4000, 6000, 8000), false)
		g.at(10 * time.Second)
		g.expect("third failure", false, ms(0, 500, 1000, 1500, 2000, 4000, 6000, 8000, 10000), true)

		// Once it has been healthy, a failing endpoint stays on the
		// 2 s cadence, and needs three passes (12, 14, 16 s) to return.
		g.probe.set(true)
		g.at(15999 * time.Millisecond)
		g.expect("two passes", false, ms(0, 500, 1000, 1500, 2000, 4000, 6000, 8000, 10000, 12000, 14000), false)
		g.at(16 * time.Second)
		g.expect("third pass", true, ms(0, 500, 1000, 1500, 2000, 4000, 6000, 8000, 10000, 12000, 14000, 16000), true)

		// A failure between passes restarts the count.
		g.probe.set(false)
		g.at(18 * time.Second) // failure 1
		g.probe.set(true)
		g.at(20 * time.Second) // pass: the failure count restarts
		g.probe.set(false)
		g.at(22 * time.Second) // failure 1
		g.at(24 * time.Second) // failure 2
		g.expect("interrupted failures", true, ms(0, 500, 1000, 1500, 2000, 4000, 6000, 8000, 10000, 12000, 14000, 16000, 18000, 20000, 22000, 24000), false)
		g.at(26 * time.Second) // failure 3
		if h, _ := g.healthy(); h {
			t.Error("three consecutive failures after the interruption did not remove the endpoint")
		}
	})
}

// An interval below 500 ms is used from the start; one below 10 ms is
// raised to 10 ms; a threshold below 1 counts as 1.
func TestCheckShortIntervalsAndThresholdFloor(t *testing.T) {
	for _, tc := range []struct {
		interval, want time.Duration
	}{
		{100 * time.Millisecond, 100 * time.Millisecond},
		{time.Millisecond, 10 * time.Millisecond},
		{0, 10 * time.Millisecond},
	} {
		t.Run(tc.interval.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := newCheckRig(t, fleet.Service{Name: "api", Port: 80, CheckTCP: true, CheckInterval: tc.interval})
				g.at(3*tc.want + tc.want/2)
				g.expect("failing", false, []time.Duration{0, tc.want, 2 * tc.want, 3 * tc.want}, false)
				g.probe.set(true)
				g.at(4 * tc.want)
				g.expect("first pass", true, []time.Duration{0, tc.want, 2 * tc.want, 3 * tc.want, 4 * tc.want}, true)
				g.probe.set(false)
				g.at(5 * tc.want)
				g.expect("one failure removes it (threshold 0 counts as 1)", false, []time.Duration{0, tc.want, 2 * tc.want, 3 * tc.want, 4 * tc.want, 5 * tc.want}, true)
			})
		})
	}
}

// A check still running when the endpoint's checks are stopped changes
// nothing, whatever its outcome, and no check runs after.
func TestCheckStoppedMidCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		started := make(chan struct{})
		release := make(chan struct{})
		r := New(Config{MachineID: "m1", PublicIP: "127.0.0.1", Hostname: "h"})
		calls := 0
		r.probe = func(ctx context.Context, _ fleet.Service) error {
			calls++
			close(started)
			<-release
			return nil // a pass, arriving after the stop
		}
		c := &checker{svc: fleet.Service{Name: "api", Port: 80, CheckTCP: true, CheckInterval: time.Second}}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); r.runCheck(ctx, "u.service", c) }()
		<-started
		cancel()
		close(release)
		<-done
		r.mu.Lock()
		healthy := c.healthy
		r.mu.Unlock()
		if healthy || calls != 1 {
			t.Fatalf("after a stop mid-check: healthy %v, %d checks; want unhealthy, 1", healthy, calls)
		}
		select {
		case <-r.wake:
			t.Fatal("a stopped check woke the publisher")
		default:
		}
	})
}

// deregisterDelay waits exactly DeregisterDelay after removing keys, ends
// with its context, and does not wait when nothing was removed or the
// delay is 0.
func TestDeregisterDelayTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := New(Config{MachineID: "m1", Hostname: "h", DeregisterDelay: time.Second})
		elapsed := func(ctx context.Context, n int) time.Duration {
			start := time.Now()
			r.deregisterDelay(ctx, n)
			return time.Since(start)
		}
		if d := elapsed(t.Context(), 2); d != time.Second {
			t.Errorf("after removing keys: waited %v, want 1s", d)
		}
		if d := elapsed(t.Context(), 0); d != 0 {
			t.Errorf("nothing removed: waited %v, want 0", d)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		if d := elapsed(ctx, 1); d != 300*time.Millisecond {
			t.Errorf("context ending first: waited %v, want 300ms", d)
		}
		r.cfg.DeregisterDelay = 0
		if d := elapsed(t.Context(), 1); d != 0 {
			t.Errorf("no delay configured: waited %v, want 0", d)
		}
	})
}
