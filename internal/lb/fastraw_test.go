package lb

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Tests of the raw-mode reads (fastraw.go): a peer's FIN queued
// behind bytes must not be missed, reads split across wake-ups must resume,
// and the deadlines must still cut idle and slow clients.

// A request followed at once by the client's FIN (often in the same
// readiness edge): answered, then the connection is closed.
func TestFastHalfCloseAfterRequest(t *testing.T) {
	srv, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok "+r.URL.Path) })
	_, _, front := fastFront(t, hostPort(srv.URL))
	for i := range 50 {
		c := dialRaw(t, front)
		c.send(fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", i))
		c.c.(*net.TCPConn).CloseWrite()
		if _, body := c.response("GET"); body != fmt.Sprintf("ok /%d", i) {
			t.Fatalf("got %q", body)
		}
		if !c.closed() {
			t.Fatalf("request %d: connection not closed after the client's FIN", i)
		}
		c.c.Close()
	}
}

// A head and a body arriving in pieces, with pauses: each piece is a new
// wake-up in raw mode.
func TestFastRequestInPieces(t *testing.T) {
	srv, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
	})
	_, _, front := fastFront(t, hostPort(srv.URL))
	c := dialRaw(t, front)
	req := "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
	for _, cut := range []int{1, 10, len(req) - 7, len(req) - 5, len(req) - 1} {
		c.send(req[:cut])
		time.Sleep(20 * time.Millisecond)
		c.send(req[cut:])
		if _, body := c.response("POST"); body != "POST /p hello" {
			t.Fatalf("cut %d: got %q", cut, body)
		}
	}
	// Two requests in one write, then one in two.
	c.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHo")
	time.Sleep(20 * time.Millisecond)
	c.send("st: x\r\n\r\n")
	for _, want := range []string{"GET /a ", "GET /b "} {
		if _, body := c.response("GET"); body != want {
			t.Fatalf("got %q, want %q", body, want)
		}
	}
}

// The idle timeout closes a quiet connection (also after requests, whose
// deadline updates are coalesced), and the head timeout is not moved on by
// bytes trickling in.
func TestFastIdleAndHeadTimeouts(t *testing.T) {
	srv, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	pool, err := NewPool(PoolConfig{Service: "web", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	pool.Update([]Backend{{ID: "b0", Addr: hostPort(srv.URL)}})
	_, front := serveFront(t, HTTPConfig{Service: "web", Pool: pool, Logger: testLogger(t),
		IdleTimeout: 300 * time.Millisecond, ReadHeaderTimeout: 400 * time.Millisecond})
	front = hostPort(front)

	c := dialRaw(t, front)
	for range 20 {
		c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, body := c.response("GET"); body != "ok" {
			t.Fatalf("got %q", body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	if !c.closed() {
		t.Fatal("idle connection not closed")
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Fatalf("idle connection closed after %v, want about 300ms", d)
	}

	slow := dialRaw(t, front)
	start = time.Now()
	head := "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 60)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range len(head) {
			if _, err := slow.c.Write([]byte{head[i]}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond) // 80 bytes: 1.6 s in all
		}
	}()
	if !slow.closed() {
		t.Fatal("slow head not cut")
	}
	if d := time.Since(start); d > 1200*time.Millisecond {
		t.Fatalf("slow head cut after %v, want about 400ms", d)
	}
	slow.c.Close()
	<-done
}

// BenchmarkFastRoundTrip is one GET and its response through the fast
// path (loopback, one keep-alive connection, a raw backend answering
// without net/http's cost).
func BenchmarkFastRoundTrip(b *testing.B) {
	ln := listenLocal(b)
	const resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				var pending []byte
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					pending = append(pending, buf[:n]...)
					for {
						i := bytes.Index(pending, []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						pending = pending[i+4:]
						if _, err := io.WriteString(c, resp); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	pool, err := NewPool(PoolConfig{Service: "web"})
	if err != nil {
		b.Fatal(err)
	}
	pool.Update([]Backend{{ID: "b0", Addr: ln.Addr().String()}})
	_, front := serveFront(b, HTTPConfig{Service: "web", Pool: pool})
	c, err := net.Dial("tcp", hostPort(front))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\n\r\n")
	buf := make([]byte, 4096)
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		got := 0
		for !bytes.HasSuffix(buf[:got], []byte("\r\n\r\nok")) {
			n, err := c.Read(buf[got:])
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
	}
}

// reportCPU adds the process's CPU time (user and system, all threads:
// client, proxy and backend alike) per operation to a benchmark's result,
// a figure less disturbed by a busy machine than the wall time per
// operation. Call the function it returns after the loop.
func reportCPU(b *testing.B) func() {
	var start syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &start)
	return func() {
		var end syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &end)
		ns := end.Utime.Nano() + end.Stime.Nano() - start.Utime.Nano() - start.Stime.Nano()
		b.ReportMetric(float64(ns)/float64(b.N), "cpu-ns/op")
	}
}
