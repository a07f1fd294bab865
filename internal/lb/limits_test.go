package lb

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// limitsFront runs HTTPProxy.Serve over one backend with cfg's limits, on
// the fast path or (fallback) the ReverseProxy path only.
func limitsFront(t *testing.T, backend string, fallback bool, cfg HTTPConfig) string {
	t.Helper()
	pool, err := NewPool(PoolConfig{Service: "web", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	pool.Update([]Backend{{ID: "b0", Addr: backend}})
	cfg.Service, cfg.Pool, cfg.Logger, cfg.DisableFastPath = "web", pool, testLogger(t), fallback
	_, front := serveFront(t, cfg)
	return hostPort(front)
}

// trackedBackend is an HTTP backend reading whole bodies, counting the
// connections it accepted and the ones that are closed, and requests for
// /smuggled.
func trackedBackend(t *testing.T) (addr string, opened, closed *atomic.Int64) {
	addr, opened, closed, _ = trackedBackendSmuggled(t)
	return addr, opened, closed
}

func trackedBackendSmuggled(t *testing.T) (addr string, opened, closed, smuggled *atomic.Int64) {
	t.Helper()
	opened, closed, smuggled = new(atomic.Int64), new(atomic.Int64), new(atomic.Int64)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/smuggled" {
			smuggled.Add(1)
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		fmt.Fprintf(w, "got %d", len(b))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			closed.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return hostPort(srv.URL), opened, closed, smuggled
}

func paths(t *testing.T, f func(t *testing.T, fallback bool)) {
	for _, fallback := range []bool{false, true} {
		name := "fast"
		if fallback {
			name = "reverseproxy"
		}
		t.Run(name, func(t *testing.T) { f(t, fallback) })
	}
}

// A client that stops sending its request body is answered 408 and closed
// after the body timeout, and the backend connection it held is closed.
func TestBodyTimeoutClosesStalledUpload(t *testing.T) {
	paths(t, func(t *testing.T, fallback bool) {
		for _, tc := range []struct{ name, req string }{
			{"content-length", "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nfirst bytes"},
			{"chunked", "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				backend, opened, closed := trackedBackend(t)
				front := limitsFront(t, backend, fallback, HTTPConfig{BodyTimeout: 200 * time.Millisecond})
				c := dialRaw(t, front)
				c.send(tc.req)
				// The request reached the backend, then the client stalls.
				eventually(t, "backend connection", func() bool { return opened.Load() == 1 })
				resp, body := c.response("POST")
				if resp.StatusCode != http.StatusRequestTimeout {
					t.Fatalf("status %d %q, want 408", resp.StatusCode, body)
				}
				if !c.closed() {
					t.Fatal("client connection kept after the body timeout")
				}
				eventually(t, "backend connection closed", func() bool { return closed.Load() == 1 })
			})
		}
	})
}

// The body deadline is progress-based: an upload that keeps sending, slowly,
// for longer than the body timeout in total, is not cut.
func TestBodyTimeoutAllowsSlowProgress(t *testing.T) {
	paths(t, func(t *testing.T, fallback bool) {
		backend, _, _ := trackedBackend(t)
		front := limitsFront(t, backend, fallback, HTTPConfig{BodyTimeout: 500 * time.Millisecond})
		c := dialRaw(t, front)
		const n = 16
		c.send(fmt.Sprintf("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", n))
		for range n {
			time.Sleep(50 * time.Millisecond) // 0.8 s in all: more than the timeout
			c.send("x")
		}
		resp, body := c.response("POST")
		if resp.StatusCode != 200 || body != fmt.Sprintf("got %d", n) {
			t.Fatalf("status %d %q, want 200 \"got %d\"", resp.StatusCode, body, n)
		}
		// Keep-alive goes on.
		c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "got 0" {
			t.Fatalf("next request: %d %q", resp.StatusCode, body)
		}
	})
}

// A malformed chunked request body is answered 400 and the connection is
// closed, on both paths, and nothing after it is read as a request.
func TestMalformedChunkedBody400(t *testing.T) {
	paths(t, func(t *testing.T, fallback bool) {
		for _, body := range []string{
			"3\r\nabcZZZ\r\n0\r\n\r\n",       // data longer than the size
			"zz\r\nabc\r\n0\r\n\r\n",         // not a hex size
			"3\r\nabc\r\n0\r\nX-T x\r\n\r\n", // bad trailer line
			"3\nabc\n0\n\n",                  // bare LFs
		} {
			backend, _, _, smuggled := trackedBackendSmuggled(t)
			front := limitsFront(t, backend, fallback, HTTPConfig{})
			c := dialRaw(t, front)
			c.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body +
				"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, rb := c.response("POST")
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%q: status %d %q, want 400", body, resp.StatusCode, rb)
			}
			if !c.closed() {
				t.Errorf("%q: connection kept after a malformed chunked body", body)
			}
			if smuggled.Load() != 0 {
				t.Errorf("%q: the bytes after the body were read as a request", body)
			}
		}
	})
}

// With MaxConns connections open, the next one is not accepted (it waits
// in the kernel's accept queue) until one of them closes; then it is
// served.
func TestMaxConnsQueuesExtraConnections(t *testing.T) {
	paths(t, func(t *testing.T, fallback bool) {
		backend, _, _ := trackedBackend(t)
		front := limitsFront(t, backend, fallback, HTTPConfig{MaxConns: 2})
		var held []*rawClient
		for range 2 {
			c := dialRaw(t, front)
			c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if resp, _ := c.response("GET"); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			held = append(held, c)
		}
		// The TCP handshake completes (the kernel queues the connection),
		// but nothing reads the request while two are open.
		third := dialRaw(t, front)
		third.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		third.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := third.br.ReadByte(); err == nil {
			t.Fatal("a third connection was served with --max-conns 2")
		}
		third.c.SetReadDeadline(time.Now().Add(waitLong))
		held[0].c.Close()
		if resp, body := third.response("GET"); resp.StatusCode != 200 || body != "got 0" {
			t.Fatalf("queued connection: %d %q", resp.StatusCode, body)
		}
	})
}

func TestMaxConnsTCP(t *testing.T) {
	addr, _ := tcpBackend(t, "a")
	pool, err := NewPool(PoolConfig{Service: "web", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	pool.Update([]Backend{{ID: "a", Addr: addr}})
	tp := NewTCPProxy(TCPConfig{Service: "web", Pool: pool, Logger: testLogger(t), DrainTimeout: time.Second, MaxConns: 1})
	ln := listenLocal(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tp.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	front := ln.Addr().String()

	first := dialFront(t, front)
	if got := first.line(t); got != "a" {
		t.Fatalf("greeting %q", got)
	}
	second := dialFront(t, front)
	second.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := second.r.ReadByte(); err == nil {
		t.Fatal("a second connection was proxied with MaxConns 1")
	}
	first.c.Close()
	if got := second.line(t); !strings.HasSuffix(got, "a") {
		t.Fatalf("queued connection's greeting %q", got)
	}
}
