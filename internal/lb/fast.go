package lb

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The fast path: HTTPProxy.Serve's own HTTP/1.1 forwarding, one goroutine
// per client connection. It reads each request head from a pooled
// bufio.Reader, picks a backend (Pool.Acquire/Release, as the ReverseProxy
// path), takes an idle keep-alive connection to it (or dials, moving on to
// another backend when the connect fails), writes the rewritten head and the
// body, reads the response head, writes it back and streams the response
// body, then returns the backend connection to its idle pool. A request
// body that is not already buffered is streamed by a second goroutine while
// the response is read. Whatever the fast path does not handle (Upgrade,
// Expect, CONNECT, non-origin targets, other transfer codings, heads
// larger than the buffer, HTTP/2) hands the connection over, at a request
// boundary and with the bytes read so far, to an http.Server running the
// ReverseProxy path (ServeHTTP).

const (
	fastBufSize                  = 16 << 10
	defaultIdleTimeout           = 2 * time.Minute
	defaultReadHeaderTimeout     = 30 * time.Second
	backendIdleTimeout           = 90 * time.Second
	errHeadTooLarge              = constError("head larger than the buffer")
	connIdle                     = 0
	connActive                   = 1
	connClosed                   = 2
	badRequestResponse           = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request"
	requestTimeoutResponse       = "HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" + requestTimeoutBody
	badGatewayHead               = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n"
	serviceUnavailableHeadPrefix = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\nContent-Length: "
)

// Serve accepts connections on ln and proxies their requests, with the
// fast path unless HTTPConfig.DisableFastPath is set, until ctx ends or ln
// fails. When ctx ends it closes ln and idle connections, lets running
// requests finish for up to the drain timeout, then cuts the rest and
// returns.
func (h *HTTPProxy) Serve(ctx context.Context, ln net.Listener) error {
	s := &fastServer{h: h, conns: map[*fastConn]struct{}{}, fbLn: &handoffListener{
		ch: make(chan net.Conn), done: make(chan struct{}), addr: ln.Addr()}}
	s.fb = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: h.cfg.ReadHeaderTimeout,
		IdleTimeout:       h.cfg.IdleTimeout,
		ErrorLog:          log.New(&proxyLogWriter{log: h.log}, "", 0),
	}
	fbDone := make(chan struct{})
	go func() { defer close(fbDone); s.fb.Serve(s.fbLn) }()
	limit := newConnLimit(h.cfg.MaxConns)
	serveErr := acceptLoop(ctx, ln, limit, h.log, h.cfg.Service, func(c net.Conn, release func()) {
		fc := h.newFastConn(s, c, release)
		s.mu.Lock()
		s.conns[fc] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(fc.serve)
	})
	ln.Close()
	s.shutdown()
	<-fbDone
	return serveErr
}

// fastServer is one Serve call: its connections and its fallback server.
type fastServer struct {
	h       *HTTPProxy
	fb      *http.Server
	fbLn    *handoffListener
	closing atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[*fastConn]struct{}
}

// shutdown closes idle connections, waits for running requests (fast and
// fallback) up to the drain timeout and then cuts what is left.
func (s *fastServer) shutdown() {
	s.closing.Store(true)
	s.mu.Lock()
	for fc := range s.conns {
		if fc.state.CompareAndSwap(connIdle, connClosed) {
			fc.c.Close()
		}
	}
	s.mu.Unlock()
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if d := s.h.cfg.DrainTimeout; d > 0 {
		ctx, cancel = context.WithTimeout(ctx, d)
	}
	defer cancel()
	fbErr := make(chan error, 1)
	go func() { fbErr <- s.fb.Shutdown(ctx) }()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		n := len(s.conns)
		for fc := range s.conns {
			fc.c.Close()
			if up := fc.up.Load(); up != nil {
				up.c.Close()
			}
		}
		s.mu.Unlock()
		if n > 0 {
			s.h.log.Warn("lb: drain timeout expired at shutdown, closing live connections", "service", s.h.cfg.Service, "connections", n)
		}
		<-done
	}
	if err := <-fbErr; err != nil {
		s.fb.Close()
	}
}

// fastConn is one client connection of the fast path.
type fastConn struct {
	h        *HTTPProxy
	s        *fastServer
	c        net.Conn
	clientIP string
	state    atomic.Int32
	up       atomic.Pointer[upConn] // the backend connection in use, for the shutdown's cut
	done     func()                 // frees the connection's --max-conns slot, once closed

	// A streamed request body's progress deadline (see clientReader).
	bodyTimeout atomic.Int64 // nanoseconds; 0 while no body is streamed
	bodyStop    atomic.Bool  // the body is being stopped: no new deadline

	// Pooled with the fastConn.
	src     *clientReader // br's source: c, with the body deadline
	br      *bufio.Reader
	bw      *bufio.Writer
	req     reqHead
	resp    respHead
	out     []byte
	tried   []string
	bodyErr chan error

	// Raw mode (fastraw.go).
	rx           recv2
	rawFD        int       // c's descriptor while rawOn
	rawOn        bool      // clientReader reads rawFD without blocking (inside serveRaw)
	drained      bool      // the last raw read found the socket's queue empty
	midHead      bool      // a request head is being read (raw mode waits in it)
	headDeadline bool      // the head's read deadline is set
	pendingN     int       // stepOutside's head length
	rdl          time.Time // the read deadline set last, when rdlOK
	rdlOK        bool
}

func (h *HTTPProxy) newFastConn(s *fastServer, c net.Conn, done func()) *fastConn {
	fc := h.conns.Get().(*fastConn)
	fc.s, fc.c, fc.done = s, c, done
	if fc.src == nil {
		fc.src = &clientReader{fc: fc}
	}
	if fc.br == nil {
		fc.br = bufio.NewReaderSize(fc.src, fastBufSize)
	} else {
		fc.br.Reset(fc.src)
	}
	fc.bw.Reset(c)
	fc.state.Store(connActive)
	fc.clientIP = c.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(fc.clientIP); err == nil {
		fc.clientIP = host
	}
	return fc
}

// release returns the connection's buffers to the pool; handedOff means
// the reader now belongs to the fallback server.
func (fc *fastConn) release(handedOff bool) {
	s := fc.s
	s.mu.Lock()
	delete(s.conns, fc)
	s.mu.Unlock()
	if handedOff {
		fc.br = nil
	} else {
		fc.c.Close()
		fc.br.Reset(nil)
		if fc.done != nil {
			fc.done()
		}
	}
	fc.done = nil
	fc.bw.Reset(nil)
	fc.s, fc.c = nil, nil
	clear(fc.req.fields[:cap(fc.req.fields)]) // drop references to the buffer
	clear(fc.resp.fields[:cap(fc.resp.fields)])
	fc.req = reqHead{fieldSet: fieldSet{fields: fc.req.fields[:0]}}
	fc.resp = respHead{fieldSet: fieldSet{fields: fc.resp.fields[:0]}}
	fc.out = fc.out[:0]
	fc.tried = fc.tried[:0]
	fc.rawOn, fc.drained, fc.midHead, fc.headDeadline, fc.rdlOK = false, false, false, false, false
	fc.h.conns.Put(fc)
}

// serve runs the connection's request loop.
func (fc *fastConn) serve() {
	handedOff := false
	defer func() { fc.release(handedOff) }()
	if fc.h.cfg.DisableFastPath {
		handedOff = fc.handOff()
		return
	}
	rc := fc.rawConn()
	for {
		var next int
		if rc != nil {
			next = fc.serveRaw(rc)
		} else {
			next = fc.serveOne(false)
		}
		switch next {
		case stepNext:
		case stepOutside:
			if !fc.forward(fc.pendingN) {
				return
			}
			// The streamed body moved the read deadline, maybe into the
			// past (to stop it); RawConn.Read fails at once on an expired
			// deadline, even with the next request buffered.
			fc.rdlOK = false
			fc.idleDeadline()
		case stepHandOff:
			handedOff = fc.handOff()
			return
		default:
			return
		}
	}
}

// What serveOne did with the connection.
const (
	stepNext    = iota // a request was answered; the connection stays
	stepWait           // raw mode: nothing more to read for now
	stepClose          // the connection ends
	stepHandOff        // the connection goes to the fallback server
	stepOutside        // raw mode: a request whose body is not buffered; fc.pendingN is its head's length
)

// serveOne reads a request and forwards it. In raw mode (inside
// serveRaw's RawConn.Read) it stops where it would block, keeping what it
// read (and fc.midHead) for the next call, and leaves requests whose body
// must be streamed to be forwarded outside.
func (fc *fastConn) serveOne(raw bool) int {
	if !fc.midHead {
		fc.state.Store(connIdle)
		if fc.s.closing.Load() {
			return stepClose
		}
		if fc.br.Buffered() == 0 {
			fc.idleDeadline()
			if _, err := fc.br.Peek(1); err != nil {
				if err == errWouldBlock {
					return stepWait
				}
				return stepClose
			}
		}
		if !fc.state.CompareAndSwap(connIdle, connActive) {
			return stepClose // closed by the shutdown
		}
		fc.midHead = true
	}
	n, err := fc.readHead()
	if err == errWouldBlock {
		return stepWait
	}
	fc.midHead, fc.headDeadline = false, false
	if err == errHeadTooLarge {
		return stepHandOff
	}
	if err != nil {
		return stepClose
	}
	head, _ := fc.br.Peek(n)
	switch parseRequestHead(head, &fc.req) {
	case headBad:
		fc.h.log.Debug("lb: malformed request, answering 400", "service", fc.h.cfg.Service, "client", fc.clientIP)
		io.WriteString(fc.c, badRequestResponse)
		return stepClose
	case headFallback:
		return stepHandOff
	}
	if raw && (fc.req.chunked || int64(fc.br.Buffered()-n) < fc.req.contentLength) {
		fc.pendingN = n
		return stepOutside
	}
	if !fc.forward(n) {
		return stepClose
	}
	return stepNext
}

// readHead reads until a whole request head is buffered and returns its
// length. Leading empty lines are skipped. The head's deadline is set once
// per head (fc.headDeadline), also when raw mode waits in between.
func (fc *fastConn) readHead() (int, error) {
	scanned := 0
	for {
		b, _ := fc.br.Peek(fc.br.Buffered())
		k := 0
		for k < len(b) && (b[k] == '\r' || b[k] == '\n') {
			k++
		}
		if k > 0 {
			fc.br.Discard(k)
			b, scanned = b[k:], 0
		}
		if len(b) > 0 {
			if n := findHeadEnd(b, scanned); n >= 0 {
				return n, nil
			}
			if len(b) >= fc.br.Size() {
				return 0, errHeadTooLarge
			}
			scanned = max(len(b)-2, 0)
		}
		if !fc.headDeadline {
			fc.setReadDeadline(time.Now().Add(fc.h.cfg.ReadHeaderTimeout))
			fc.headDeadline = true
		}
		if _, err := fc.br.Peek(len(b) + 1); err != nil {
			return 0, err
		}
	}
}

// handOff passes the connection, with what was read of it, to the
// fallback server.
func (fc *fastConn) handOff() bool {
	fc.setReadDeadline(time.Time{})
	done := fc.done
	fc.done = nil // the fallback server closes the connection: bufferedConn.Close frees the slot
	if done == nil {
		done = func() {}
	}
	return fc.s.fbLn.hand(&bufferedConn{Conn: fc.c, r: fc.br, onClose: done})
}

// forward proxies the request whose head (n bytes) is buffered and parsed
// and reports whether the client connection stays open.
func (fc *fastConn) forward(n int) bool {
	h, req := fc.h, &fc.req
	bodyLen := 0
	buffered := true
	switch {
	case req.chunked:
		buffered = false
	case req.contentLength > 0:
		if int64(fc.br.Buffered()-n) >= req.contentLength {
			bodyLen = int(req.contentLength)
		} else {
			buffered = false
		}
	}
	fc.tried = fc.tried[:0]
	var lastErr error
	var t *Target
	fresh, retried := false, false
	for {
		if t == nil {
			if t = h.cfg.Pool.Acquire(fc.tried); t == nil {
				return fc.noBackend(n, bodyLen, buffered, lastErr)
			}
		}
		up, err := h.getConn(t, !fresh)
		if err != nil {
			h.log.Debug("lb: connect failed, retrying on another backend", "service", h.cfg.Service,
				"backend", t.b.ID, "addr", t.b.Addr, "err", err)
			lastErr = err
			fc.tried = append(fc.tried, t.b.ID)
			h.cfg.Pool.Release(t)
			t, fresh = nil, false
			continue
		}
		keep, stale := fc.exchange(t, up, n, bodyLen, buffered, !retried)
		if stale {
			// A reused connection the backend had closed: nothing
			// was processed; once more on a new connection.
			h.log.Debug("lb: idle backend connection was closed, retrying on a new one", "service", h.cfg.Service,
				"backend", t.b.ID, "addr", t.b.Addr)
			fresh, retried = true, true
			continue
		}
		h.cfg.Pool.Release(t)
		return keep
	}
}

// exchange sends the request over up and relays the response. stale means
// up was a reused connection found closed before anything was processed
// (only reported when mayRetry and the request can be sent again); up is
// then closed and nothing was consumed.
func (fc *fastConn) exchange(t *Target, up *upConn, n, bodyLen int, buffered, mayRetry bool) (keep, stale bool) {
	h, req := fc.h, &fc.req
	clientKeep := req.keepAlive()
	fc.out = appendRequestHead(fc.out[:0], req, fc.clientIP, t.b.Addr)
	var method, path string
	if !buffered {
		method, path = fc.describe() // the head's bytes are overwritten by the body
	}
	fc.up.Store(up)
	stopAbort := context.AfterFunc(t.abort, func() { up.c.Close() })
	defer fc.up.Store(nil)

	streaming := false
	if buffered {
		if bodyLen > 0 {
			b, _ := fc.br.Peek(n + bodyLen)
			fc.out = append(fc.out, b[n:]...)
		}
		if err := up.send(fc.out); err != nil {
			if mayRetry && up.reused && t.abort.Err() == nil {
				stopAbort()
				up.close()
				return false, true
			}
			method, path = fc.describe()
			fc.br.Discard(n + bodyLen)
			fc.failed(t, up, stopAbort, err, method, path)
			return fc.badGateway(clientKeep), false
		}
	} else {
		// Streamed body: the head goes with it, from another goroutine,
		// while the response is read here. Such a request cannot be sent
		// twice, so a reused connection is checked first.
		if up.reused && !connAlive(up.c) {
			stopAbort()
			up.close()
			return false, true
		}
		fc.br.Discard(n)
		fc.c.SetReadDeadline(time.Time{})
		fc.rdlOK = false
		streaming = true
		fc.bodyStop.Store(false)
		if d := h.cfg.BodyTimeout; d > 0 {
			fc.bodyTimeout.Store(int64(d))
		}
		go fc.sendBody(up, req.chunked, req.contentLength)
	}
	// Everything up to here is replayable; req's slices stay valid while
	// nothing more is read from the client.
	isHead, minor := req.isHead, req.minor
	sent1xx := false
	resp := &fc.resp
	var rn int
	for {
		var err error
		rn, err = readUpHead(up.br)
		if err == nil {
			head, _ := up.br.Peek(rn)
			err = parseResponseHead(head, resp)
		}
		if err != nil {
			if !streaming && mayRetry && up.reused && !sent1xx && up.br.Buffered() == 0 && closedByPeer(err) && t.abort.Err() == nil {
				stopAbort()
				up.close()
				return false, true
			}
			if streaming {
				if berr := fc.stopBody(up); berr != bodyOK {
					// The client's body failed (stalled, malformed,
					// gone): nothing to blame the backend for.
					stopAbort()
					up.close()
					if !sent1xx {
						fc.bodyFailed(berr, method, path)
					}
					return false, false
				}
			} else {
				method, path = fc.describe()
				fc.br.Discard(n + bodyLen)
			}
			fc.failed(t, up, stopAbort, err, method, path)
			if sent1xx {
				return false, false
			}
			return fc.badGateway(clientKeep && !streaming), false
		}
		if resp.status >= 200 {
			break
		}
		if resp.status == 101 {
			// Never asked for: the fast path forwards no Upgrade.
			if streaming {
				fc.stopBody(up)
			} else {
				method, path = fc.describe()
				fc.br.Discard(n + bodyLen)
			}
			fc.failed(t, up, stopAbort, errBadResponse, method, path)
			return fc.badGateway(false), false
		}
		if minor >= 1 { // no 1xx for HTTP/1.0 clients
			fc.writeRespHead(resp, false, false, false)
			if err := fc.bw.Flush(); err != nil {
				if streaming {
					fc.stopBody(up)
				}
				stopAbort()
				up.close()
				return false, false
			}
			sent1xx = true
		}
		up.br.Discard(rn)
	}
	if !streaming {
		fc.br.Discard(n + bodyLen)
	}

	const (
		bodyNone = iota
		bodyLength
		bodyChunked
		bodyEOF
	)
	mode := bodyEOF
	switch {
	case isHead || resp.status == 204 || resp.status == 304:
		mode = bodyNone
	case resp.chunked:
		mode = bodyChunked
	case resp.contentLength >= 0:
		mode = bodyLength
	}
	passChunked := mode == bodyChunked && minor >= 1
	keep = clientKeep && !fc.s.closing.Load() && mode != bodyEOF && (mode != bodyChunked || passChunked)
	fc.writeRespHead(resp, passChunked, !keep, keep && minor == 0)
	upReusable := resp.reusable() && mode != bodyEOF
	contentLength := resp.contentLength
	up.br.Discard(rn)
	var err error
	switch mode {
	case bodyLength:
		err = copyLength(fc.bw, up.br, contentLength)
	case bodyChunked:
		err = copyChunked(fc.bw, up.br, !passChunked)
	case bodyEOF:
		err = copyToEOF(fc.bw, up.br)
	}
	if err == nil {
		if ferr := fc.bw.Flush(); ferr != nil {
			err = writeErr(ferr)
		}
	}
	if streaming {
		select {
		case berr := <-fc.bodyErr:
			if berr != nil {
				keep = false
			}
		default:
			// The backend answered before reading the whole body (or
			// the body's last write is just finishing): stop it.
			upReusable = false
			up.c.Close()
			fc.bodyStop.Store(true)
			fc.c.SetReadDeadline(time.Unix(1, 0))
			if berr := <-fc.bodyErr; berr != nil {
				keep = false
			}
		}
	}
	if err != nil {
		keep, upReusable = false, false
		if !isWriteErr(err) {
			if !streaming {
				method, path = fc.describe() // discarded, not yet overwritten
			}
			fc.failed(t, nil, nil, err, method, path)
		}
	}
	if !stopAbort() {
		upReusable = false // cut by the drain timeout
	}
	if upReusable && up.br.Buffered() == 0 {
		h.putConn(t, up)
	} else {
		up.close()
	}
	return keep, false
}

// sendBody writes the request head (fc.out) and streams the body from the
// client to up; the result goes to fc.bodyErr.
func (fc *fastConn) sendBody(up *upConn, chunked bool, n int64) {
	bw := fc.h.writers.Get().(*bufio.Writer)
	bw.Reset(up.c)
	_, err := bw.Write(fc.out)
	if err == nil {
		if chunked {
			err = copyChunked(bw, fc.br, false)
		} else {
			err = copyLength(bw, fc.br, n)
		}
	}
	if err == nil {
		err = bw.Flush()
	} else {
		// The exchange cannot complete: unblock the response read.
		up.c.Close()
	}
	bw.Reset(nil)
	fc.h.writers.Put(bw)
	fc.bodyTimeout.Store(0)
	fc.bodyErr <- err
}

// stopBody ends a streamed body early (the request failed) and reports
// how the client's side of it had failed (bodyOK: it had not, or the
// backend's side failed; otherwise the client, not the backend, is to
// blame).
func (fc *fastConn) stopBody(up *upConn) int {
	up.c.Close()
	fc.bodyStop.Store(true)
	fc.c.SetReadDeadline(time.Unix(1, 0))
	err := <-fc.bodyErr
	switch {
	case errors.Is(err, errBodyStalled):
		return bodyStalled
	case errors.Is(err, errBadChunk):
		return bodyMalformed
	case err == nil || isWriteErr(err) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded):
		return bodyOK // the backend's side failed, or our own stop
	}
	return classifyBodyErr(err)
}

// errBodyStalled is a streamed request body's read that hit the body
// timeout (not a deadline set to stop the body).
const errBodyStalled = constError("no request body data within the body timeout")

// bodyFailed answers a request whose streamed body failed on the client's
// side (nothing was sent to the client yet): 408 when it stalled, 400 when
// it was malformed; the connection is closed either way.
func (fc *fastConn) bodyFailed(how int, method, path string) {
	h := fc.h
	switch how {
	case bodyStalled:
		h.log.Debug("lb: client stalled sending the request body, closing", "service", h.cfg.Service,
			"client", fc.clientIP, "method", method, "path", path, "body_timeout", h.cfg.BodyTimeout)
		fc.bw.WriteString(requestTimeoutResponse)
	case bodyMalformed:
		h.log.Debug("lb: malformed request body, answering 400", "service", h.cfg.Service,
			"client", fc.clientIP, "method", method, "path", path)
		fc.bw.WriteString(badRequestResponse)
	default:
		fc.badGateway(false) // the client went away: nobody reads this
		return
	}
	fc.bw.Flush()
}

// clientReader is the source of a client connection's bufio.Reader. While
// a request body is streamed (bodyTimeout set) every read first moves the
// read deadline bodyTimeout ahead: a client that sends nothing for that
// long fails the read, whatever the body's total duration.
type clientReader struct{ fc *fastConn }

func (r *clientReader) Read(p []byte) (int, error) {
	fc := r.fc
	if fc.rawOn {
		return fc.rawRecv(p)
	}
	if d := fc.bodyTimeout.Load(); d > 0 {
		fc.c.SetReadDeadline(time.Now().Add(time.Duration(d)))
		if fc.bodyStop.Load() {
			// stopBody's past deadline may have been overwritten.
			return 0, os.ErrDeadlineExceeded
		}
	}
	n, err := fc.c.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && fc.bodyTimeout.Load() > 0 && !fc.bodyStop.Load() {
		// Checked before sendBody reacts to the error (closing the
		// backend connection, which leads to stopBody).
		err = errBodyStalled
	}
	return n, err
}

// failed logs a failed backend exchange, as the ReverseProxy path does,
// and closes up (when given).
func (fc *fastConn) failed(t *Target, up *upConn, stopAbort func() bool, err error, method, path string) {
	if stopAbort != nil {
		stopAbort()
	}
	if up != nil {
		up.close()
	}
	h := fc.h
	if t.abort.Err() != nil {
		h.log.Warn("lb: request cut by the drain timeout", "service", h.cfg.Service, "backend", t.b.Addr,
			"method", method, "path", path)
		return
	}
	h.log.Warn("lb: backend request failed", "service", h.cfg.Service, "backend", t.b.Addr,
		"method", method, "path", path, "err", err)
}

// describe returns the request's method and path for log lines.
func (fc *fastConn) describe() (method, path string) {
	target := fc.req.target
	for i, c := range target {
		if c == '?' {
			target = target[:i]
			break
		}
	}
	return string(fc.req.method), string(target)
}

// writeRespHead writes a response head to the client buffer.
func (fc *fastConn) writeRespHead(resp *respHead, passChunked, connClose, connKeepAlive bool) {
	bw := fc.bw
	bw.WriteString("HTTP/1.1 ")
	bw.Write(resp.statusText)
	bw.WriteString("\r\n")
	rules := resp.dropRules(passChunked)
	for _, f := range resp.fields {
		if resp.drop(f.name, rules) {
			continue
		}
		bw.Write(f.name)
		bw.WriteString(": ")
		bw.Write(f.value)
		bw.WriteString("\r\n")
	}
	if passChunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if connClose {
		bw.WriteString("Connection: close\r\n")
	} else if connKeepAlive {
		bw.WriteString("Connection: keep-alive\r\n")
	}
	bw.WriteString("\r\n")
}

// badGateway answers 502 (no response byte was sent yet).
func (fc *fastConn) badGateway(keep bool) bool {
	keep = keep && !fc.s.closing.Load()
	fc.bw.WriteString(badGatewayHead)
	fc.writeConnEnd(keep)
	return fc.bw.Flush() == nil && keep
}

func (fc *fastConn) writeConnEnd(keep bool) {
	switch {
	case !keep:
		fc.bw.WriteString("Connection: close\r\n\r\n")
	case fc.req.minor == 0:
		fc.bw.WriteString("Connection: keep-alive\r\n\r\n")
	default:
		fc.bw.WriteString("\r\n")
	}
}

// noBackend answers 503 with the ReverseProxy path's body.
func (fc *fastConn) noBackend(n, bodyLen int, buffered bool, lastErr error) bool {
	h := fc.h
	method, path := fc.describe()
	attrs := []any{"service", h.cfg.Service, "method", method, "path", path}
	if len(fc.tried) > 0 {
		attrs = append(attrs, "refused_by", len(fc.tried), "last_err", lastErr)
	}
	h.warnRateLimited("lb: no backend available", attrs...)
	keep := fc.req.keepAlive() && buffered && !fc.s.closing.Load()
	if buffered {
		fc.br.Discard(n + bodyLen)
	}
	bw := fc.bw
	bw.WriteString(serviceUnavailableHeadPrefix)
	var num [20]byte
	bw.Write(strconv.AppendInt(num[:0], int64(len(h.body503)), 10))
	bw.WriteString("\r\n")
	fc.writeConnEnd(keep)
	bw.WriteString(h.body503)
	return bw.Flush() == nil && keep
}

// readUpHead reads until a whole response head is buffered in br and
// returns its length.
func readUpHead(br *bufio.Reader) (int, error) {
	scanned := 0
	for {
		b, _ := br.Peek(br.Buffered())
		if len(b) > 0 {
			if n := findHeadEnd(b, scanned); n >= 0 {
				return n, nil
			}
			if len(b) >= br.Size() {
				return 0, errBadResponse
			}
			scanned = max(len(b)-2, 0)
		}
		if _, err := br.Peek(len(b) + 1); err != nil {
			return 0, err
		}
	}
}

// closedByPeer reports whether a read error means the backend closed the
// connection.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// upConn is a connection to a backend.
type upConn struct {
	c      net.Conn
	br     *bufio.Reader // while in use; its source is the upConn (Read)
	idleAt time.Time
	reused bool
	rc     syscall.RawConn // c's, once send has needed it
	rawFD  int             // c's descriptor while rawOn
	rawOn  bool            // Read reads rawFD without blocking (inside send)
}

func (u *upConn) close() {
	u.c.Close()
	if u.br != nil {
		u.br.Reset(nil)
		u.br = nil // not pooled: a closed connection may still be read by a racing abort
	}
}

// upPool is a backend address's idle connections, most recently used last.
type upPool struct {
	mu     sync.Mutex
	idle   []*upConn
	closed bool
}

func (p *upPool) get() *upConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		uc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if time.Since(uc.idleAt) < backendIdleTimeout {
			return uc
		}
		uc.c.Close()
	}
	return nil
}

func (p *upPool) put(uc *upConn, max int) {
	p.mu.Lock()
	if p.closed || len(p.idle) >= max {
		p.mu.Unlock()
		uc.c.Close()
		return
	}
	p.idle = append(p.idle, uc)
	// The oldest goes when it has been idle too long.
	var old *upConn
	if first := p.idle[0]; time.Since(first.idleAt) >= backendIdleTimeout {
		old = first
		p.idle = append(p.idle[:0], p.idle[1:]...)
	}
	p.mu.Unlock()
	if old != nil {
		old.c.Close()
	}
}

func (p *upPool) closeAll() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, uc := range idle {
		uc.c.Close()
	}
}

func (h *HTTPProxy) upPool(addr string) *upPool {
	if v, ok := h.ups.Load(addr); ok {
		return v.(*upPool)
	}
	v, _ := h.ups.LoadOrStore(addr, &upPool{})
	return v.(*upPool)
}

// getConn returns an idle connection to t (unless fresh is false) or dials.
func (h *HTTPProxy) getConn(t *Target, idle bool) (*upConn, error) {
	if idle {
		if uc := h.upPool(t.b.Addr).get(); uc != nil {
			uc.reused = true
			uc.br = h.readers.Get().(*bufio.Reader)
			uc.br.Reset(uc)
			return uc, nil
		}
	}
	return h.dial(t)
}

func (h *HTTPProxy) dial(t *Target) (*upConn, error) {
	c, err := h.dialer.Dial("tcp", t.b.Addr)
	if err != nil {
		return nil, err
	}
	uc := &upConn{c: c}
	uc.br = h.readers.Get().(*bufio.Reader)
	uc.br.Reset(uc)
	return uc, nil
}

// putConn returns a connection to t's idle pool, before t is released (so
// that a drain finishing after the release closes it).
func (h *HTTPProxy) putConn(t *Target, uc *upConn) {
	uc.br.Reset(nil)
	h.readers.Put(uc.br)
	uc.br = nil
	uc.idleAt = time.Now()
	h.upPool(t.b.Addr).put(uc, h.cfg.MaxIdleConnsPerBackend)
}

// handoffListener feeds connections to the fallback http.Server.
type handoffListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	addr net.Addr
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// hand passes c on; false means the fallback server is shut down and c
// was closed.
func (l *handoffListener) hand(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		c.Close()
		return false
	}
}

// bufferedConn replays what the fast path had read before the rest of
// the connection.
type bufferedConn struct {
	net.Conn
	r       *bufio.Reader
	onClose func() // frees the --max-conns slot; idempotent
}

func (c *bufferedConn) Close() error {
	err := c.Conn.Close()
	c.onClose()
	return err
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.r != nil {
		if c.r.Buffered() > 0 {
			return c.r.Read(p)
		}
		c.r = nil
	}
	return c.Conn.Read(p)
}
