package lb

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

type tcpClient struct {
	c net.Conn
	r *bufio.Reader
}

func dialFront(t *testing.T, addr string) *tcpClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &tcpClient{c, bufio.NewReader(c)}
}

func (c *tcpClient) line(t *testing.T) string {
	t.Helper()
	c.c.SetReadDeadline(time.Now().Add(waitLong))
	s, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, s)
	}
	return strings.TrimSuffix(s, "\n")
}

// greeting connects, reads the backend's name and hangs up.
func greeting(t *testing.T, addr string) string {
	t.Helper()
	c := dialFront(t, addr)
	defer c.c.Close()
	return c.line(t)
}

func (h *harness) tcpFront(t *testing.T) string {
	tp := NewTCPProxy(TCPConfig{Service: "web", Pool: h.pool, Logger: testLogger(t), DrainTimeout: time.Second})
	ln := listenLocal(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tp.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func TestTCPRoundRobinAndDrain(t *testing.T) {
	h := newHarness(t, BalanceRoundRobin)
	for _, n := range []string{"a", "b", "c"} {
		addr, _ := tcpBackend(t, n)
		h.register(n, addr)
	}
	h.waitBackends("a", "b", "c")
	front := h.tcpFront(t)
	var seq []string
	for range 6 {
		seq = append(seq, greeting(t, front))
	}
	if got := strings.Join(seq, ""); got != "abcabc" && got != "bcabca" && got != "cabcab" {
		t.Fatalf("rotation = %v", seq)
	}

	// Hold a connection to a, remove a: the connection keeps working,
	// new connections skip a.
	var live *tcpClient
	for live == nil {
		c := dialFront(t, front)
		if c.line(t) == "a" {
			live = c
		} else {
			c.c.Close()
		}
	}
	h.deregister("a")
	h.waitBackends("b", "c")
	for range 6 {
		if n := greeting(t, front); n == "a" {
			t.Fatal("new connection went to removed backend a")
		}
	}
	io.WriteString(live.c, "still here\n")
	if got := live.line(t); got != "still here" {
		t.Fatalf("echo on draining connection = %q", got)
	}
	st := h.pool.Status()
	if len(st) != 3 || st[2].ID != "a" || !st[2].Draining || st[2].InFlight != 1 {
		t.Fatalf("status = %+v", st)
	}
	// Half-close: the backend sees EOF, answers and closes.
	live.c.(*net.TCPConn).CloseWrite()
	if got := live.line(t); got != "bye a" {
		t.Fatalf("after half-close got %q", got)
	}
	if _, err := live.r.ReadString('\n'); err != io.EOF {
		t.Fatalf("want EOF after the backend closed, got %v", err)
	}
	eventually(t, "a drained", func() bool { return len(h.pool.Status()) == 2 })
}

func TestTCPRetriesRefusedAndNoBackend(t *testing.T) {
	h := newHarness(t, BalanceRoundRobin)
	front := h.tcpFront(t)
	// No backend: the connection is closed.
	c := dialFront(t, front)
	c.c.SetReadDeadline(time.Now().Add(waitLong))
	if _, err := c.r.ReadString('\n'); err == nil {
		t.Fatal("no backend: connection not closed")
	}
	addr, _ := tcpBackend(t, "live")
	h.register("a", refusedAddr(t))
	h.register("b", addr)
	h.register("c", refusedAddr(t))
	h.waitBackends("a", "b", "c")
	for range 6 {
		if n := greeting(t, front); n != "live" {
			t.Fatalf("got %q", n)
		}
	}
}

func TestTCPDrainTimeoutCuts(t *testing.T) {
	h := newHarness(t, BalanceRoundRobin)
	h.pool.drain = 100 * time.Millisecond
	addr, _ := tcpBackend(t, "a")
	h.register("a", addr)
	h.waitBackends("a")
	front := h.tcpFront(t)
	c := dialFront(t, front)
	if n := c.line(t); n != "a" {
		t.Fatal(n)
	}
	h.deregister("a")
	c.c.SetReadDeadline(time.Now().Add(waitLong))
	if _, err := c.r.ReadString('\n'); err != io.EOF {
		t.Fatalf("want the connection cut (EOF), got %v", err)
	}
	eventually(t, "a drained", func() bool { return len(h.pool.Status()) == 0 })
}
