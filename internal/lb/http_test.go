package lb

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHTTPRoundRobin(t *testing.T) {
	h := newHarness(t, BalanceRoundRobin)
	for _, n := range []string{"a", "b", "c"} {
		h.register("m1:"+n+".service:80", hostPort(httpBackend(t, n, nil).URL))
	}
	h.waitBackends("m1:a.service:80", "m1:b.service:80", "m1:c.service:80")
	_, front := h.httpFront(t)
	var seq []string
	for range 9 {
		code, body := get(t, http.DefaultClient, front)
		if code != 200 {
			t.Fatalf("status %d: %s", code, body)
		}
		seq = append(seq, body)
	}
	count := map[string]int{}
	for i, s := range seq {
		count[s]++
		if i >= 3 && seq[i-3] != s {
			t.Fatalf("not a rotation: %v", seq)
		}
	}
	if count["a"] != 3 || count["b"] != 3 || count["c"] != 3 {
		t.Fatalf("counts = %v (sequence %v)", count, seq)
	}
}

func TestHTTPLeastConnPrefersIdle(t *testing.T) {
	h := newHarness(t, BalanceLeastConn)
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	busy := httpBackend(t, "busy", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		fmt.Fprint(w, "busy")
	})
	idle := httpBackend(t, "idle", nil)
	h.register("busy", hostPort(busy.URL))
	h.register("idle", hostPort(idle.URL))
	h.waitBackends("busy", "idle")
	_, front := h.httpFront(t)

	// Send /slow until one is held by "busy" ("idle" answers at once).
	var wg sync.WaitGroup
	defer func() { close(release); wg.Wait() }()
	for held := false; !held; {
		answered := make(chan struct{})
		wg.Go(func() {
			if resp, err := http.Get(front + "/slow"); err == nil {
				resp.Body.Close()
			}
			close(answered)
		})
		select {
		case <-started:
			held = true
		case <-answered:
		case <-time.After(waitLong):
			t.Fatal("slow request neither held nor answered")
		}
	}
	for range 10 {
		if _, body := get(t, http.DefaultClient, front); body != "idle" {
			t.Fatalf("request went to %q while busy has one in flight", body)
		}
	}
}

func TestHTTPFollowsEtcdChanges(t *testing.T) {
	h := newHarness(t, BalanceRoundRobin)
	_, front := h.httpFront(t)
	a, b, c := httpBackend(t, "a", nil), httpBackend(t, "b", nil), httpBackend(t, "c", nil)
	h.register("a", hostPort(a.URL))
	h.register("b", hostPort(b.URL))
	seenAll := func(want ...string) func() bool {
		return func() bool {
			seen := map[string]bool{}
			for range 3 * len(want) {
				_, body := get(t, http.DefaultClient, front)
				seen[body] = true
			}
			if len(seen) != len(want) {
				return false
			}
			for _, w := range want {
				if !seen[w] {
					return false
				}
			}
			return true
		}
	}
	eventually(t, "a and b in rotation", seenAll("a", "b"))
	h.register("c", hostPort(c.URL))
	eventually(t, "c joins", seenAll("a", "b", "c"))
	h.deregister("a")
	eventually(t, "a leaves", seenAll("b", "c"))
	// An endpoint that is not host:port is ignored.
	h.put(h.prefix+"junk", "not an endpoint")
	h.deregister("b")
	eventually(t, "b leaves, junk ignored", seenAll("c"))
	if n := h.pool.Len(); n != 1 {
		t.Fatalf("pool holds %d backends, want 1: %v", n, h.pool.Backends())
	}
}

func TestHTTPDrainsSlowRequest(t *testing.T) {
	h := newHarness(t, BalanceRoundRobin)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	slow := httpBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
			fmt.Fprint(w, "slow done")
			return
		}
		fmt.Fprint(w, "slow")
	})
	fast := httpBackend(t, "fast", nil)
	h.register("1-slow", hostPort(slow.URL))
	h.waitBackends("1-slow")
	_, front := h.httpFront(t)

	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get(front + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{resp.StatusCode, string(b), err}
	}()
	<-started
	h.register("2-fast", hostPort(fast.URL))
	h.deregister("1-slow")
	h.waitBackends("2-fast")
	for range 10 {
		if _, body := get(t, http.DefaultClient, front); body != "fast" {
			t.Fatalf("new request went to %q after its removal", body)
		}
	}
	st := h.pool.Status()
	if len(st) != 2 || st[1].ID != "1-slow" || !st[1].Draining || st[1].InFlight != 1 {
		t.Fatalf("status while draining = %+v", st)
	}
	close(release)
	r := <-res
	if r.err != nil || r.code != 200 || r.body != "slow done" {
		t.Fatalf("in-flight request during drain: %d %q %v", r.code, r.body, r.err)
	}
	eventually(t, "slow backend drained", func() bool { return len(h.pool.Status()) == 1 })
}

func TestHTTPZeroErrorsThroughRemovalAndShutdown(t *testing.T) {
	h := newHarness(t, BalanceRoundRobin)
	backends := map[string]string{}
	var stops []func()
	for _, n := range []string{"a", "b", "c"} {
		srv := httpBackend(t, n, nil)
		backends[n] = hostPort(srv.URL)
		stops = append(stops, srv.Close)
		h.register(n, backends[n])
	}
	h.waitBackends("a", "b", "c")
	_, front := h.httpFront(t)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var resp *http.Response
				var err error
				if (i+w)%3 == 0 {
					resp, err = client.Post(front, "text/plain", strings.NewReader("payload"))
				} else {
					resp, err = client.Get(front)
				}
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		})
	}
	waitMore := func(n int64) {
		target := ok.Load() + n
		eventually(t, "requests flowing", func() bool { return ok.Load() >= target })
	}
	waitMore(200)
	// What the agent does when a unit stops: remove the key, then stop
	// the process once the balancer is done with it (the deregister
	// delay): out of the rotation and drained, its in-flight requests
	// answered.
	h.deregister("b")
	h.waitDrained("b")
	stops[1]()
	waitMore(200)
	h.deregister("c")
	h.waitDrained("c")
	stops[2]()
	waitMore(200)
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	t.Logf("%d requests, 0 failed", ok.Load())
}

func TestHTTPRetriesRefusedBackend(t *testing.T) {
	h := newHarness(t, BalanceRoundRobin)
	h.register("a-dead", refusedAddr(t))
	h.register("b-live", hostPort(httpBackend(t, "live", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "live %s %s", r.Method, b)
	}).URL))
	h.register("c-dead", refusedAddr(t))
	h.waitBackends("a-dead", "b-live", "c-dead")
	_, front := h.httpFront(t)
	for i := range 12 {
		var resp *http.Response
		var err error
		want := "live GET "
		if i%2 == 0 {
			resp, err = http.Post(front, "text/plain", strings.NewReader("body-"+fmt.Sprint(i)))
			want = fmt.Sprintf("live POST body-%d", i)
		} else {
			resp, err = http.Get(front)
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, b, want)
		}
	}
	// Every backend refusing: 503 with the message.
	h.deregister("b-live")
	h.waitBackends("a-dead", "c-dead")
	code, body := get(t, http.DefaultClient, front)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `no backend available for service "web"`) {
		t.Fatalf("all refusing: %d %q", code, body)
	}
}

func TestHTTPNoBackend503(t *testing.T) {
	h := newHarness(t, BalanceRoundRobin)
	_, front := h.httpFront(t)
	code, body := get(t, http.DefaultClient, front+"/x")
	if code != http.StatusServiceUnavailable || body != "no backend available for service \"web\"\n" {
		t.Fatalf("got %d %q", code, body)
	}
}

func TestHTTPForwardedHeaders(t *testing.T) {
	h := newHarness(t, BalanceRoundRobin)
	h.register("a", hostPort(httpBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s|%s", r.Header.Get("X-Forwarded-For"), r.Host, r.Header.Get("X-Forwarded-Proto"))
	}).URL))
	h.waitBackends("a")
	_, front := h.httpFront(t)
	req, _ := http.NewRequest("GET", front, nil)
	req.Host = "www.example.com"
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "203.0.113.7, 127.0.0.1|www.example.com|http"; string(b) != want {
		t.Fatalf("backend saw %q, want %q", b, want)
	}
}

func TestHTTPDrainTimeoutCutsRequest(t *testing.T) {
	h := newHarness(t, BalanceRoundRobin)
	h.pool.drain = 100 * time.Millisecond
	started := make(chan struct{}, 1)
	h.register("hang", hostPort(httpBackend(t, "hang", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-r.Context().Done()
	}).URL))
	h.waitBackends("hang")
	_, front := h.httpFront(t)
	done := make(chan int, 1)
	go func() {
		resp, err := http.Get(front)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-started
	h.deregister("hang")
	select {
	case code := <-done:
		if code != http.StatusBadGateway {
			t.Fatalf("cut request answered %d, want 502", code)
		}
	case <-time.After(waitLong):
		t.Fatal("drain timeout did not cut the request")
	}
	eventually(t, "drained", func() bool { return len(h.pool.Status()) == 0 })
}

// BenchmarkHTTPProxy measures end-to-end requests through the proxy to one
// local backend (client, proxy and backend share the machine).
func BenchmarkHTTPProxy(b *testing.B) {
	pool, _ := NewPool(PoolConfig{})
	var bs []Backend
	for i := range 3 {
		bs = append(bs, Backend{ID: fmt.Sprint(i), Addr: hostPort(httpBackend(b, "x", nil).URL)})
	}
	pool.Update(bs)
	hp := NewHTTPProxy(HTTPConfig{Service: "bench", Pool: pool})
	srv := &http.Server{Handler: hp}
	ln := listenLocal(b)
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	url := "http://" + ln.Addr().String() + "/"
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

func TestHTTPBackendFailingMidResponseIsReleased(t *testing.T) {
	h := newHarness(t, BalanceLeastConn)
	h.register("a", hostPort(httpBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(200)
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	}).URL))
	h.waitBackends("a")
	_, front := h.httpFront(t)
	resp, err := http.Get(front)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("truncated response read without error")
	}
	eventually(t, "in-flight count back to 0", func() bool {
		st := h.pool.Status()
		return len(st) == 1 && st[0].InFlight == 0
	})
}
