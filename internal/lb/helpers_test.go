package lb

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

const waitLong = 15 * time.Second

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// eventually polls cond until it holds or the (generous) deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// httpBackend is a named HTTP backend answering its name.
func httpBackend(t testing.TB, name string, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h != nil {
			h(w, r)
			return
		}
		io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func hostPort(rawURL string) string { return strings.TrimPrefix(rawURL, "http://") }

// refusedAddr returns a 127.0.0.1 address nobody listens on.
func refusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type etcdKV struct {
	t   testing.TB
	cli *clientv3.Client
}

func (e etcdKV) put(key, val string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.cli.Put(ctx, key, val); err != nil {
		e.t.Fatalf("put %s: %v", key, err)
	}
}

func (e etcdKV) del(key string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.cli.Delete(ctx, key); err != nil {
		e.t.Fatalf("delete %s: %v", key, err)
	}
}

// harness is a pool fed by a watcher on a real embedded etcd.
type harness struct {
	etcdKV
	pool    *Pool
	watcher *Watcher
	prefix  string
}

func newHarness(t *testing.T, balance string) *harness {
	t.Helper()
	cli := etcdtest.New(t)
	log := testLogger(t)
	pool, err := NewPool(PoolConfig{Service: "web", Balance: balance, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{etcdKV: etcdKV{t, cli}, pool: pool, prefix: "/services/web/"}
	h.watcher = NewWatcher(WatcherConfig{Client: etcdkv.New(cli), Prefix: h.prefix, Update: pool.Update, Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.watcher.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-h.watcher.Ready()
	return h
}

// register registers addr as backend id of the "web" service.
func (h *harness) register(id, addr string) { h.put(h.prefix+id, addr) }

func (h *harness) deregister(id string) { h.del(h.prefix + id) }

// waitBackends waits until the pool's rotation is exactly ids.
func (h *harness) waitBackends(ids ...string) {
	h.t.Helper()
	want := strings.Join(ids, ",")
	eventually(h.t, "rotation "+want, func() bool {
		var got []string
		for _, b := range h.pool.Backends() {
			got = append(got, b.ID)
		}
		return strings.Join(got, ",") == want
	})
}

// waitDrained waits until backend id is neither in the pool's rotation
// nor draining.
func (h *harness) waitDrained(id string) {
	h.t.Helper()
	eventually(h.t, id+" out of rotation and drained", func() bool {
		for _, s := range h.pool.Status() {
			if s.ID == id {
				return false
			}
		}
		return true
	})
}

// httpFront serves an HTTPProxy over the harness's pool the way fleetd lb
// does: HTTPProxy.Serve, the fast path with the ReverseProxy path as its
// fallback. With LB_TEST_REVERSEPROXY=1 it serves the ReverseProxy path
// alone, through net/http (http.Handler), as before the fast path.
func (h *harness) httpFront(t *testing.T) (*HTTPProxy, string) {
	cfg := HTTPConfig{Service: "web", Pool: h.pool, Logger: testLogger(t)}
	if os.Getenv("LB_TEST_REVERSEPROXY") == "1" {
		hp := NewHTTPProxy(cfg)
		srv := httptest.NewServer(hp)
		t.Cleanup(srv.Close)
		return hp, srv.URL
	}
	return serveFront(t, cfg)
}

// serveFront runs HTTPProxy.Serve on a local listener until the test ends.
func serveFront(t testing.TB, cfg HTTPConfig) (*HTTPProxy, string) {
	t.Helper()
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 5 * time.Second
	}
	hp := NewHTTPProxy(cfg)
	ln := listenLocal(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hp.Serve(ctx, ln); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return hp, "http://" + ln.Addr().String()
}

func get(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// tcpBackend is a TCP server that greets with "<name>\n" and then echoes
// lines; at EOF from the client it writes "bye <name>\n" and closes.
func tcpBackend(t testing.TB, name string) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				fmt.Fprintf(c, "%s\n", name)
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						break
					}
					io.WriteString(c, line)
				}
				fmt.Fprintf(c, "bye %s\n", name)
			})
		}
	})
	var once sync.Once
	stop = func() { once.Do(func() { ln.Close() }) }
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

func listenLocal(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func netDialTimeout(addr string) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, 2*time.Second)
}
