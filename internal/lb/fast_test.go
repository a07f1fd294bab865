package lb

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fastFront is a pool over the given backend addresses behind
// HTTPProxy.Serve.
func fastFront(t *testing.T, addrs ...string) (*Pool, *HTTPProxy, string) {
	t.Helper()
	pool, err := NewPool(PoolConfig{Service: "web", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var bs []Backend
	for i, a := range addrs {
		bs = append(bs, Backend{ID: fmt.Sprintf("b%d", i), Addr: a})
	}
	pool.Update(bs)
	hp, front := serveFront(t, HTTPConfig{Service: "web", Pool: pool, Logger: testLogger(t)})
	return pool, hp, hostPort(front)
}

// countingBackend is an httptest server that counts the connections it
// accepted.
func countingBackend(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var accepted atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepted.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &accepted
}

// rawClient is a client connection written to and read from by hand.
type rawClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitLong))
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawClient) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatal(err)
	}
}

// response reads one response (to a request with method) and its body.
func (r *rawClient) response(method string) (*http.Response, string) {
	r.t.Helper()
	resp, err := http.ReadResponse(r.br, &http.Request{Method: method})
	if err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

// closed reports whether the proxy closed the connection.
func (r *rawClient) closed() bool {
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := r.br.ReadByte()
	return err == io.EOF
}

func TestFastChunkedBodies(t *testing.T) {
	srv, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		// No Content-Length and several flushes: a chunked response.
		fmt.Fprintf(w, "te=%v len=%d ", r.TransferEncoding, len(b))
		w.(http.Flusher).Flush()
		fmt.Fprintf(w, "trailer=%q body=%s", r.Trailer.Get("X-Sum"), b)
	})
	_, _, front := fastFront(t, hostPort(srv.URL))
	c := dialRaw(t, front)
	c.send("POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
		"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 12\r\n\r\n")
	resp, body := c.response("POST")
	if want := `te=[chunked] len=12 trailer="12" body=hello, world`; resp.StatusCode != 200 || body != want {
		t.Fatalf("got %d %q, want %q", resp.StatusCode, body, want)
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("response not chunked: %v %v", resp.TransferEncoding, resp.Header)
	}
	// Same connection, a chunked body from net/http's client (unknown
	// length), and an HTTP/1.0 client that gets the chunked response
	// de-chunked and close-delimited.
	c.send("POST /again HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	if _, body := c.response("POST"); !strings.HasSuffix(body, "body=abc") {
		t.Fatalf("second request on the connection: %q", body)
	}
	resp2, err := http.Post("http://"+front+"/client", "text/plain", io.MultiReader(strings.NewReader("from"), strings.NewReader(" client")))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if !strings.HasSuffix(string(b), "body=from client") {
		t.Fatalf("net/http client: %q", b)
	}
	c10 := dialRaw(t, front)
	c10.send("POST /old HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi")
	raw, err := io.ReadAll(c10.br)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(raw); strings.Contains(strings.ToLower(s), "transfer-encoding") || !strings.HasSuffix(s, `te=[] len=2 trailer="" body=hi`) {
		t.Fatalf("HTTP/1.0 client got %q", s)
	}
}

// rawBackend runs serve on every connection it accepts.
func rawBackend(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) (string, *atomic.Int64) {
	t.Helper()
	ln := listenLocal(t)
	var accepted atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(waitLong))
				serve(c, bufio.NewReader(c))
			})
		}
	})
	return ln.Addr().String(), &accepted
}

func TestFastCloseDelimitedResponse(t *testing.T) {
	// The backend sends the start of a close-delimited body and writes
	// the rest only once the client has received that start: the proxy
	// streams such a body instead of waiting for its end.
	firstSeen := make(chan struct{})
	addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the ")
		select {
		case <-firstSeen:
		case <-time.After(waitLong):
			t.Error("the client did not get the start of the body before its end was written: the proxy holds close-delimited bodies back")
		}
		io.WriteString(c, "end")
	})
	_, _, front := fastFront(t, addr)
	c := dialRaw(t, front)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	first := make([]byte, len("until the "))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "until the " {
		t.Fatalf("start of the body: %q %v", first, err)
	}
	close(firstSeen)
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if body := string(first) + string(rest); resp.StatusCode != 200 || body != "until the end" || !resp.Close {
		t.Fatalf("got %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	if !c.closed() {
		t.Fatal("client connection not closed after a close-delimited response")
	}
}

func TestFastReusesBackendConnections(t *testing.T) {
	srv, accepted := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})
	_, _, front := fastFront(t, hostPort(srv.URL))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	for i := range 50 {
		var resp *http.Response
		var err error
		if i%2 == 0 {
			resp, err = client.Get("http://" + front + "/")
		} else {
			resp, err = client.Post("http://"+front+"/", "text/plain", strings.NewReader("body"))
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" {
			t.Fatalf("request %d: %q", i, b)
		}
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("backend accepted %d connections for 50 sequential requests, want 1", n)
	}
}

func TestFastNoBodyResponses(t *testing.T) {
	srv, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(204)
		case "/304":
			w.Header().Set("ETag", `"x"`)
			w.WriteHeader(304)
		default:
			w.Header().Set("Content-Length", "11")
			io.WriteString(w, "hello world")
		}
	})
	_, _, front := fastFront(t, hostPort(srv.URL))
	c := dialRaw(t, front)
	for _, step := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"HEAD", "/", 200, ""},
		{"GET", "/204", 204, ""},
		{"GET", "/304", 304, ""},
		{"HEAD", "/", 200, ""},
		{"GET", "/", 200, "hello world"},
	} {
		c.send(step.method + " " + step.path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, body := c.response(step.method)
		if resp.StatusCode != step.code || body != step.body {
			t.Fatalf("%s %s: %d %q", step.method, step.path, resp.StatusCode, body)
		}
		if step.method == "HEAD" && resp.ContentLength != 11 {
			t.Fatalf("HEAD lost the Content-Length: %v", resp.Header)
		}
	}
}

func TestFastLargeBodiesAreStreamed(t *testing.T) {
	const half = 4 << 20
	gotFirstHalf := make(chan struct{})
	sentFirstHalf := make(chan struct{})
	srv, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/download":
			// Half of the body, then wait until the client has it:
			// a proxy holding the whole response would deadlock here.
			w.Header().Set("Content-Length", fmt.Sprint(2*half))
			w.Write(bytes.Repeat([]byte("a"), half))
			w.(http.Flusher).Flush()
			select {
			case <-gotFirstHalf:
			case <-time.After(waitLong):
				return
			}
			w.Write(bytes.Repeat([]byte("b"), half))
		case "/upload":
			if _, err := io.CopyN(io.Discard, r.Body, half); err != nil {
				return
			}
			close(sentFirstHalf)
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x", half+n, h.Sum(nil))
		}
	})
	_, _, front := fastFront(t, hostPort(srv.URL))

	resp, err := http.Get("http://" + front + "/download")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, half)); err != nil {
		t.Fatal(err)
	}
	close(gotFirstHalf)
	rest, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(rest) != half || rest[0] != 'b' {
		t.Fatalf("rest of the download: %d bytes, %v", len(rest), err)
	}

	pr, pw := io.Pipe()
	second := bytes.Repeat([]byte("0123456789abcdef"), half/16)
	go func() {
		pw.Write(bytes.Repeat([]byte("x"), half))
		select {
		case <-sentFirstHalf:
		case <-time.After(waitLong):
			pw.CloseWithError(fmt.Errorf("upload not streamed"))
			return
		}
		pw.Write(second)
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", "http://"+front+"/upload", pr)
	req.ContentLength = 2 * half
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d %x", 2*half, sha256.Sum256(second)); string(b) != want {
		t.Fatalf("upload: %q, want %q", b, want)
	}
}

func TestFastPipelinedRequests(t *testing.T) {
	srv, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
	})
	_, _, front := fastFront(t, hostPort(srv.URL))
	c := dialRaw(t, front)
	c.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody" +
		"PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" +
		"GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	for _, want := range []string{"GET /a ", "POST /b body", "PUT /c ok", "GET /d "} {
		method, _, _ := strings.Cut(want, " ")
		if _, body := c.response(method); body != want {
			t.Fatalf("got %q, want %q", body, want)
		}
	}
	if !c.closed() {
		t.Fatal("connection not closed after Connection: close")
	}
}

func TestFastRetriesClosedIdleConnection(t *testing.T) {
	// A backend that closes every connection right after its first
	// response, without saying so: the proxy's idle connection is dead
	// when the next request takes it.
	backendClosed := make(chan struct{}, 10)
	addr, accepted := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		b, _ := io.ReadAll(req.Body)
		body := req.Method + " " + string(b)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		c.Close()
		backendClosed <- struct{}{}
	})
	_, _, front := fastFront(t, addr)
	c := dialRaw(t, front)
	for i := range 6 {
		method, want := "GET", "GET "
		req := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
		if i%2 == 1 {
			method, want = "POST", fmt.Sprintf("POST n=%d", i)
			req = fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(want)-5, want[5:])
		}
		c.send(req)
		resp, body := c.response(method)
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, body, want)
		}
		// The backend has closed its end (on loopback the FIN reaches
		// the proxy's socket within the close call, in practice): the
		// proxy now holds a dead idle connection for the next request.
		select {
		case <-backendClosed:
		case <-time.After(waitLong):
			t.Fatalf("request %d: the backend did not close its connection", i)
		}
	}
	if n := accepted.Load(); n != 6 {
		t.Fatalf("backend accepted %d connections, want 6 (one per request)", n)
	}
}

func TestFastNoRetryAfterResponseBytes(t *testing.T) {
	// A backend that answers its connection's first request, then sends
	// part of a head for the second and dies: that request may have been
	// processed, so it is not sent again although the connection was a
	// reused one.
	addr, accepted := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		if _, err := http.ReadRequest(br); err == nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-")
		}
	})
	_, _, front := fastFront(t, addr)
	c := dialRaw(t, front)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("first request: %d %q", resp.StatusCode, body)
	}
	c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
	if resp, _ := c.response("POST"); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("backend accepted %d connections, want 1", n)
	}
}

func TestFastMalformedRequests(t *testing.T) {
	srv, accepted := countingBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	_, _, front := fastFront(t, hostPort(srv.URL))
	for _, req := range []string{
		"GET / HTTP/1.1\r\n\r\n", // no Host
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc",
		"GET / HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x y\r\n\r\n",
		"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTQ/1.1\r\nHost: x\r\n\r\n",
		"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
		"no request line at all\r\n\r\n",
	} {
		c := dialRaw(t, front)
		c.send(req)
		resp, _ := c.response("GET")
		if resp.StatusCode != 400 {
			t.Errorf("%q: status %d, want 400", req, resp.StatusCode)
		}
		if !c.closed() {
			t.Errorf("%q: connection not closed after 400", req)
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("a malformed request reached the backend (%d connections)", n)
	}
}

func TestFastBadChunkedBodyIsNotForwarded(t *testing.T) {
	var got atomic.Value
	srv, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		got.Store(fmt.Sprintf("%q %v", b, err))
	})
	_, _, front := fastFront(t, hostPort(srv.URL))
	c := dialRaw(t, front)
	c.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcZZZ\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("no response to a malformed chunked body: %v", err)
	}
	io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed chunked body answered %d, want 400; backend read %v", resp.StatusCode, got.Load())
	}
	if !c.closed() {
		t.Fatal("connection kept after a malformed chunked body")
	}
}

func TestFastFallbackUpgradeAndExpect(t *testing.T) {
	srv, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "plain %s %s", r.URL.Path, b)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		line, _ := brw.ReadString('\n')
		io.WriteString(c, "echo: "+line)
	})
	_, _, front := fastFront(t, hostPort(srv.URL))

	// A plain request (fast path) pipelined with an upgrade (handed to
	// the ReverseProxy path with the bytes already read).
	c := dialRaw(t, front)
	c.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	if _, body := c.response("GET"); body != "plain /first " {
		t.Fatalf("first: %q", body)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	c.send("ping\n")
	if line, err := c.br.ReadString('\n'); err != nil || line != "echo: ping\n" {
		t.Fatalf("upgraded stream: %q %v", line, err)
	}

	// Expect: 100-continue goes to the ReverseProxy path as well.
	c2 := dialRaw(t, front)
	c2.send("POST /exp HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	resp, err = http.ReadResponse(c2.br, nil)
	if err != nil || resp.StatusCode != 100 {
		t.Fatalf("expect: %v %v", resp, err)
	}
	c2.send("data")
	if _, body := c2.response("POST"); body != "plain /exp data" {
		t.Fatalf("after 100-continue: %q", body)
	}
	// And an oversized head (bigger than the fast path's buffer).
	c3 := dialRaw(t, front)
	c3.send("GET /big HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 40<<10) + "\r\n\r\n")
	if _, body := c3.response("GET"); body != "plain /big " {
		t.Fatalf("big head: %q", body)
	}
}

func TestFastHTTP10AndHopByHopHeaders(t *testing.T) {
	srv, _ := countingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		var hop []string
		for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "X-Secret", "Te", "Upgrade", "X-Forwarded-Host", "X-Forwarded-Proto"} {
			if v := r.Header.Get(k); v != "" {
				hop = append(hop, k+"="+v)
			}
		}
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Connection", "X-Private")
		w.Header().Set("X-Private", "no")
		fmt.Fprintf(w, "proto=%s host=%s xff=%s hop=%v", r.Proto, r.Host, r.Header.Get("X-Forwarded-For"), hop)
	})
	_, _, front := fastFront(t, hostPort(srv.URL))
	c := dialRaw(t, front)
	c.send("GET / HTTP/1.0\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: 300\r\nX-Secret: s\r\nProxy-Connection: x\r\nX-Forwarded-For: 10.1.1.1\r\nTE: trailers\r\n\r\n")
	resp, body := c.response("GET")
	want := fmt.Sprintf("proto=HTTP/1.1 host=%s xff=10.1.1.1, 127.0.0.1 hop=[Te=trailers X-Forwarded-Proto=http]", hostPort(srv.URL))
	if body != want {
		t.Fatalf("backend saw %q\nwant        %q", body, want)
	}
	if resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("X-Private") != "" || resp.Close {
		t.Fatalf("response headers %v, close=%v", resp.Header, resp.Close)
	}
	// HTTP/1.0 keep-alive honoured; then a plain HTTP/1.0 request closes.
	c.send("GET / HTTP/1.0\r\n\r\n")
	if resp, _ := c.response("GET"); resp.StatusCode != 200 {
		t.Fatalf("second HTTP/1.0 request: %d", resp.StatusCode)
	}
	if !c.closed() {
		t.Fatal("HTTP/1.0 connection without keep-alive not closed")
	}
}

func TestFastDrainClosesIdleBackendConnections(t *testing.T) {
	var closed atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	pool, _, front := fastFront(t, hostPort(srv.URL))
	if code, _ := get(t, http.DefaultClient, "http://"+front); code != 200 {
		t.Fatal(code)
	}
	if closed.Load() != 0 {
		t.Fatal("backend connection closed before the drain")
	}
	pool.Update(nil)
	eventually(t, "idle backend connection closed after the drain", func() bool { return closed.Load() == 1 })
	if code, body := get(t, http.DefaultClient, "http://"+front); code != 503 || body != "no backend available for service \"web\"\n" {
		t.Fatalf("after removal: %d %q", code, body)
	}
}

// BenchmarkHTTPFastPath is BenchmarkHTTPProxy through HTTPProxy.Serve.
func BenchmarkHTTPFastPath(b *testing.B) {
	pool, _ := NewPool(PoolConfig{})
	var bs []Backend
	for i := range 3 {
		bs = append(bs, Backend{ID: fmt.Sprint(i), Addr: hostPort(httpBackend(b, "x", nil).URL)})
	}
	pool.Update(bs)
	_, front := serveFront(b, HTTPConfig{Service: "bench", Pool: pool})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(front + "/")
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
