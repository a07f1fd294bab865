package lb

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func targets(n int) []*Target {
	ts := make([]*Target, n)
	for i := range ts {
		ts[i] = NewTarget(Backend{ID: fmt.Sprintf("b%02d", i), Addr: fmt.Sprintf("10.0.0.%d:80", i+1)})
	}
	return ts
}

func TestRoundRobinRotates(t *testing.T) {
	ts := targets(3)
	var rr RoundRobin
	var got string
	for range 7 {
		got += rr.Pick(ts, nil).b.ID + " "
	}
	if want := "b00 b01 b02 b00 b01 b02 b00 "; got != want {
		t.Fatalf("picks = %q, want %q", got, want)
	}
	for range 5 {
		if p := rr.Pick(ts, []string{"b01"}); p.b.ID == "b01" {
			t.Fatal("picked an excluded target")
		}
	}
	if p := rr.Pick(ts, []string{"b00", "b01", "b02"}); p != nil {
		t.Fatalf("all excluded: picked %v", p.b)
	}
	if p := rr.Pick(nil, nil); p != nil {
		t.Fatal("picked from an empty set")
	}
}

func TestLeastConnPrefersIdle(t *testing.T) {
	ts := targets(3)
	ts[0].inflight.Store(2)
	ts[1].inflight.Store(0)
	ts[2].inflight.Store(1)
	var lc LeastConn
	for range 6 {
		if p := lc.Pick(ts, nil); p != ts[1] {
			t.Fatalf("picked %s, want the idle b01", p.b.ID)
		}
	}
	if p := lc.Pick(ts, []string{"b01"}); p != ts[2] {
		t.Fatalf("with b01 excluded picked %s, want b02", p.b.ID)
	}
	// Ties rotate.
	for _, x := range ts {
		x.inflight.Store(0)
	}
	seen := map[string]bool{}
	for range 3 {
		seen[lc.Pick(ts, nil).b.ID] = true
	}
	if len(seen) != 3 {
		t.Fatalf("ties did not rotate: %v", seen)
	}
}

func TestNewPicker(t *testing.T) {
	for _, b := range []string{"roundrobin", "leastconn", ""} {
		if _, err := NewPicker(b); err != nil {
			t.Errorf("NewPicker(%q): %v", b, err)
		}
	}
	if _, err := NewPicker("random"); err == nil {
		t.Error("NewPicker(random) succeeded")
	}
}

func TestPoolUpdateAndDrain(t *testing.T) {
	p, err := NewPool(PoolConfig{Service: "web", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var drained []string
	p.onDrained(func(b Backend) { mu.Lock(); drained = append(drained, b.ID); mu.Unlock() })
	drainedIDs := func() string { mu.Lock(); defer mu.Unlock(); return fmt.Sprint(drained) }

	if p.Acquire(nil) != nil {
		t.Fatal("empty pool handed out a target")
	}
	p.Update([]Backend{{"b", "10.0.0.2:80"}, {"a", "10.0.0.1:80"}, {"", "x:1"}, {"a", "dup:1"}})
	if got := fmt.Sprint(p.Backends()); got != "[{a 10.0.0.1:80} {b 10.0.0.2:80}]" {
		t.Fatalf("backends = %s", got)
	}
	ta := p.Acquire(nil)
	tb := p.Acquire(nil)
	if ta.b.ID != "a" || tb.b.ID != "b" {
		t.Fatalf("picked %s, %s", ta.b.ID, tb.b.ID)
	}
	// Remove a while it is in flight; b stays with the same counters.
	p.Update([]Backend{{"b", "10.0.0.2:80"}})
	if !ta.Draining() || tb.Draining() {
		t.Fatal("draining flags wrong")
	}
	for range 4 {
		x := p.Acquire(nil)
		if x != tb {
			t.Fatalf("new work went to %s", x.b.ID)
		}
		p.Release(x)
	}
	st := p.Status()
	if len(st) != 2 || st[1].ID != "a" || !st[1].Draining || st[1].InFlight != 1 {
		t.Fatalf("status = %+v", st)
	}
	if drainedIDs() != "[]" {
		t.Fatalf("drained too early: %s", drainedIDs())
	}
	p.Release(ta)
	if drainedIDs() != "[a]" {
		t.Fatalf("drained = %s, want [a]", drainedIDs())
	}
	if st := p.Status(); len(st) != 1 {
		t.Fatalf("status after drain = %+v", st)
	}
	// A changed address is a new target; the old one drains.
	p.Update([]Backend{{"b", "10.0.0.9:80"}})
	if drainedIDs() != "[a]" {
		t.Fatalf("drained = %s", drainedIDs())
	}
	p.Release(tb)
	if drainedIDs() != "[a b]" {
		t.Fatalf("drained = %s", drainedIDs())
	}
	// An idle backend drains at once.
	p.Update(nil)
	if drainedIDs() != "[a b b]" {
		t.Fatalf("drained = %s", drainedIDs())
	}
	p.Update([]Backend{{"b", "10.0.0.9:80"}})
	if got := p.Acquire(nil); got.b.Addr != "10.0.0.9:80" {
		t.Fatalf("picked %v", got.b)
	}
}

// A removed backend's in-flight work is cut exactly DrainTimeout after its
// removal, with errDrainTimeout as the cause; one that drains before that
// is never cut (its timer is stopped), and a negative timeout never cuts.
// Fake time: the timers are the pool's own.
func TestPoolDrainTimeoutAborts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := NewPool(PoolConfig{DrainTimeout: 50 * time.Millisecond})
		var drained []string
		p.onDrained(func(b Backend) { drained = append(drained, b.ID) })
		p.Update([]Backend{{"a", "10.0.0.1:80"}, {"b", "10.0.0.2:80"}})
		ta, tb := p.Acquire(nil), p.Acquire(nil)
		if ta.b.ID != "a" || tb.b.ID != "b" {
			t.Fatalf("picked %s, %s", ta.b.ID, tb.b.ID)
		}
		p.Update(nil)
		// advance lets d of fake time pass, and the pool's timers run.
		advance := func(d time.Duration) {
			time.Sleep(d)
			synctest.Wait()
		}
		aborted := func(x *Target) bool {
			select {
			case <-x.Aborted():
				return true
			default:
				return false
			}
		}

		advance(50*time.Millisecond - time.Nanosecond)
		if aborted(ta) || aborted(tb) {
			t.Fatal("cut before the drain timeout")
		}
		p.Release(tb) // b drains in time
		if fmt.Sprint(drained) != "[b]" {
			t.Fatalf("drained = %v, want [b]", drained)
		}

		advance(time.Nanosecond)
		if !aborted(ta) {
			t.Fatal("not cut when the drain timeout expired")
		}
		if cause := context.Cause(ta.abort); cause != errDrainTimeout {
			t.Fatalf("cut with cause %v, want %v", cause, errDrainTimeout)
		}
		// Cut is not drained: the holder still gives it back.
		if st := p.Status(); len(st) != 1 || st[0].ID != "a" || st[0].InFlight != 1 {
			t.Fatalf("status after the cut = %+v", st)
		}
		p.Release(ta)
		if fmt.Sprint(drained) != "[b a]" || len(p.Status()) != 0 {
			t.Fatalf("after release: drained %v, status %+v", drained, p.Status())
		}

		advance(time.Hour)
		if aborted(tb) {
			t.Fatal("a backend that drained in time was cut later")
		}

		// No bound: never cut.
		p2, _ := NewPool(PoolConfig{DrainTimeout: -1})
		p2.Update([]Backend{{"c", "10.0.0.3:80"}})
		tc := p2.Acquire(nil)
		p2.Update(nil)
		advance(24 * time.Hour)
		if aborted(tc) {
			t.Fatal("cut although the drain timeout is negative")
		}
		p2.Release(tc)
	})
}

func TestPoolConcurrentUpdateAcquire(t *testing.T) {
	p, _ := NewPool(PoolConfig{Balance: "leastconn"})
	sets := [][]Backend{
		{{"a", "1.1.1.1:1"}, {"b", "1.1.1.2:1"}},
		{{"b", "1.1.1.2:1"}, {"c", "1.1.1.3:1"}},
		{{"a", "1.1.1.1:1"}},
	}
	var drainedCount, seen sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if x := p.Acquire(nil); x != nil {
					seen.Store(x, true)
					if x.Draining() && x.drained.Load() {
						drainedCount.Store(x, true)
					}
					p.Release(x)
				}
			}
		})
	}
	for i := range 2000 {
		p.Update(sets[i%len(sets)])
	}
	close(stop)
	wg.Wait()
	for _, x := range *p.snap.Load() {
		if x.InFlight() != 0 {
			t.Fatalf("%s in flight %d after all released", x.b.ID, x.InFlight())
		}
	}
	drainedCount.Range(func(k, _ any) bool {
		t.Errorf("a drained target was handed out: %v", k.(*Target).b)
		return true
	})
	// Liveness: every removed target finished draining.
	seen.Range(func(k, _ any) bool {
		if x := k.(*Target); x.Draining() && !x.drained.Load() {
			t.Errorf("removed target %v never drained (in flight %d)", x.b, x.InFlight())
		}
		return true
	})
}

func TestParseEndpoint(t *testing.T) {
	good := map[string]string{
		"10.0.0.1:80":         "10.0.0.1:80",
		" 10.0.0.1:8080\n":    "10.0.0.1:8080",
		"web1.example:443":    "web1.example:443",
		"[::1]:80":            "[::1]:80",
		"10.0.0.1:0080":       "10.0.0.1:80",
		"127.0.0.1:65535":     "127.0.0.1:65535",
		"host-with-dash:1":    "host-with-dash:1",
		"under_score.local:9": "under_score.local:9",
	}
	for in, want := range good {
		got, err := ParseEndpoint(in)
		if err != nil || got != want {
			t.Errorf("ParseEndpoint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10.0.0.1", ":80", "10.0.0.1:", "10.0.0.1:0", "10.0.0.1:65536",
		"10.0.0.1:http", "10.0.0.1:-1", "10.0.0.1:+80", "http://10.0.0.1:80", `{"host":"10.0.0.1","port":80}`,
		"::1:80", "[zz::1]:80", "a b:80", "10.0.0.1:80/x"} {
		if got, err := ParseEndpoint(in); err == nil {
			t.Errorf("ParseEndpoint(%q) = %q, want an error", in, got)
		}
	}
}

func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"10.0.0.1:80", "[::1]:443", "host:1", "", ":", "a:b:c", "[::1]", "1.2.3.4:99999", " x:1 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseEndpoint(s)
		if err != nil {
			return
		}
		host, port, err := net.SplitHostPort(got)
		if err != nil || host == "" {
			t.Fatalf("ParseEndpoint(%q) = %q, which does not split: %v", s, got, err)
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			t.Fatalf("ParseEndpoint(%q) = %q: bad port", s, got)
		}
		again, err := ParseEndpoint(got)
		if err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", s, got, again, err)
		}
	})
}

func benchPick(b *testing.B, pk Picker) {
	for _, n := range []int{3, 16, 64} {
		b.Run(fmt.Sprintf("backends=%d", n), func(b *testing.B) {
			ts := targets(n)
			for i, x := range ts {
				x.inflight.Store(int64(i%5 + 1))
			}
			b.ReportAllocs()
			for b.Loop() {
				if pk.Pick(ts, nil) == nil {
					b.Fatal("nil pick")
				}
			}
		})
	}
}

func BenchmarkPickRoundRobin(b *testing.B) { benchPick(b, &RoundRobin{}) }

func BenchmarkPickLeastConn(b *testing.B) { benchPick(b, &LeastConn{}) }

// BenchmarkPoolAcquireRelease is the per-request cost of the pool under
// parallel load.
func BenchmarkPoolAcquireRelease(b *testing.B) {
	for _, balance := range []string{BalanceRoundRobin, BalanceLeastConn} {
		b.Run(balance, func(b *testing.B) {
			p, _ := NewPool(PoolConfig{Balance: balance})
			var bs []Backend
			for _, x := range targets(8) {
				bs = append(bs, x.b)
			}
			p.Update(bs)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p.Release(p.Acquire(nil))
				}
			})
		})
	}
}
