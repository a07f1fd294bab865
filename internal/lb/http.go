package lb

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultConnectTimeout bounds a dial to a backend.
const DefaultConnectTimeout = 2 * time.Second

// HTTPConfig configures an HTTPProxy.
type HTTPConfig struct {
	// Service is the service's name, used in the 503 body and logs.
	Service string
	// Pool supplies the backends.
	Pool *Pool
	// ConnectTimeout bounds each dial to a backend; zero means 2s.
	ConnectTimeout time.Duration
	// MaxIdleConnsPerBackend is the keep-alive pool size per backend; zero
	// means 512.
	MaxIdleConnsPerBackend int
	// Logger receives proxy errors; nil discards them.
	Logger *slog.Logger

	// The settings below apply to Serve only.

	// DisableFastPath makes Serve hand every connection to the
	// ReverseProxy path (ServeHTTP) instead of forwarding HTTP/1.1
	// itself.
	DisableFastPath bool
	// DrainTimeout bounds how long Serve lets running requests finish
	// after its context ends; zero means DefaultDrainTimeout, negative
	// means no bound.
	DrainTimeout time.Duration
	// IdleTimeout closes a client connection idle between requests; zero
	// means 2 minutes.
	IdleTimeout time.Duration
	// ReadHeaderTimeout bounds the reading of a request head; zero means
	// 30s.
	ReadHeaderTimeout time.Duration
	// MaxConns caps concurrent client connections; beyond it Serve stops
	// accepting and new connections wait in the kernel's accept queue
	// (HAProxy's maxconn). Zero or negative: no cap.
	MaxConns int

	// BodyTimeout applies to Serve and to ServeHTTP: a client that sends
	// no byte of its request body for this long gets 408 Request Timeout
	// (when no response was sent yet) and is closed, and the backend
	// connection is closed. It is progress-based: a slow upload that keeps
	// sending is not cut. Zero means DefaultBodyTimeout, negative means no
	// limit.
	BodyTimeout time.Duration
}

// DefaultBodyTimeout is HTTPConfig.BodyTimeout's default (--body-timeout).
const DefaultBodyTimeout = 30 * time.Second

// HTTPProxy balances HTTP requests over a Pool. Serve runs it on a
// listener with its own HTTP/1.1 forwarding (the fast path, fast.go),
// handing what that does not handle to ServeHTTP; ServeHTTP, an
// http.Handler, is the ReverseProxy path: an httputil.ReverseProxy with a
// keep-alive transport per backend. On both paths idle backend connections
// are closed once their backend has drained, a request whose connect fails
// (nothing reached the backend) is retried on another backend, for any
// method, until every backend was tried, and with no backend the answer is
// 503 "no backend available for service "<name>"".
type HTTPProxy struct {
	cfg   HTTPConfig
	log   *slog.Logger
	rp    *httputil.ReverseProxy
	bufs  sync.Pool
	trs   sync.Map // addr -> *http.Transport
	quiet atomic.Int64

	// Fast path (fast.go).
	dialer  *net.Dialer
	ups     sync.Map  // addr -> *upPool
	conns   sync.Pool // *fastConn with its buffers
	readers sync.Pool // *bufio.Reader for backend connections
	writers sync.Pool // *bufio.Writer for streamed request bodies
	body503 string
}

type reqStateKey struct{}

// reqState follows one proxied request through Rewrite, RoundTrip and the
// ErrorHandler.
type reqState struct {
	target    *Target
	tried     []string
	cancel    context.CancelCauseFunc
	stopAbort func() bool
	lastErr   error
	rc        *http.ResponseController // sets the client's read deadline
	body      *replayBody              // the client's body, if any
}

// NewHTTPProxy returns a proxy over cfg.Pool.
func NewHTTPProxy(cfg HTTPConfig) *HTTPProxy {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.MaxIdleConnsPerBackend <= 0 {
		cfg.MaxIdleConnsPerBackend = 512
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = defaultIdleTimeout
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = defaultReadHeaderTimeout
	}
	if cfg.BodyTimeout == 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	h := &HTTPProxy{cfg: cfg, log: cfg.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.dialer = &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	h.body503 = fmt.Sprintf("no backend available for service %q\n", cfg.Service)
	h.conns.New = func() any {
		return &fastConn{h: h, bw: bufio.NewWriterSize(nil, fastBufSize), bodyErr: make(chan error, 1)}
	}
	h.readers.New = func() any { return bufio.NewReaderSize(nil, fastBufSize) }
	h.writers.New = func() any { return bufio.NewWriterSize(nil, fastBufSize) }
	h.bufs.New = func() any { b := make([]byte, 32<<10); return &b }
	h.rp = &httputil.ReverseProxy{
		Rewrite:      h.rewrite,
		Transport:    roundTripFunc(h.roundTrip),
		BufferPool:   (*bufferPool)(&h.bufs),
		ErrorHandler: h.errorHandler,
		ErrorLog:     log.New(&proxyLogWriter{log: h.log}, "", 0),
	}
	cfg.Pool.onDrained(h.closeIdle)
	return h
}

// ServeHTTP proxies one request.
func (h *HTTPProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &reqState{rc: http.NewResponseController(w)}
	ctx, cancel := context.WithCancelCause(r.Context())
	st.cancel = cancel
	// Deferred: the ReverseProxy panics with http.ErrAbortHandler when a
	// backend fails mid-response, and the target must be released anyway.
	defer func() {
		if st.stopAbort != nil {
			st.stopAbort()
		}
		cancel(nil)
		if st.target != nil {
			h.cfg.Pool.Release(st.target)
		}
	}()
	h.rp.ServeHTTP(w, r.WithContext(context.WithValue(ctx, reqStateKey{}, st)))
}

func (h *HTTPProxy) rewrite(pr *httputil.ProxyRequest) {
	st, _ := pr.In.Context().Value(reqStateKey{}).(*reqState)
	pr.Out.URL.Scheme = "http"
	if st != nil {
		st.target = h.cfg.Pool.Acquire(nil)
		if st.target != nil {
			pr.Out.URL.Host = st.target.b.Addr
		}
	}
	// Keep the client's chain, as proxies do, and append the client.
	if prior := pr.In.Header["X-Forwarded-For"]; len(prior) > 0 {
		pr.Out.Header["X-Forwarded-For"] = append([]string(nil), prior...)
	}
	pr.SetXForwarded()
}

// roundTrip sends the request to the picked backend, moving on to another
// one while connects fail.
func (h *HTTPProxy) roundTrip(req *http.Request) (*http.Response, error) {
	st, _ := req.Context().Value(reqStateKey{}).(*reqState)
	if st == nil || st.target == nil {
		return nil, errNoBackend
	}
	var body *replayBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &replayBody{rc: req.Body}
		if h.cfg.BodyTimeout > 0 && st.rc != nil {
			body.timeout, body.setDeadline = h.cfg.BodyTimeout, st.rc.SetReadDeadline
		}
		st.body = body
		req.Body = body
	}
	for {
		t := st.target
		req.URL.Host = t.b.Addr
		st.stopAbort = context.AfterFunc(t.abort, func() { st.cancel(errDrainTimeout) })
		resp, err := h.transport(t.b.Addr).RoundTrip(req)
		if err == nil {
			return resp, nil
		}
		var de *dialError
		if !errors.As(err, &de) || (body != nil && body.used.Load()) || req.Context().Err() != nil {
			return nil, err
		}
		st.stopAbort()
		st.stopAbort = nil
		st.lastErr = err
		st.tried = append(st.tried, t.b.ID)
		h.cfg.Pool.Release(t)
		st.target = h.cfg.Pool.Acquire(st.tried)
		if st.target == nil {
			return nil, errNoBackend
		}
		h.log.Debug("lb: connect failed, retrying on another backend", "service", h.cfg.Service,
			"backend", t.b.ID, "addr", t.b.Addr, "next", st.target.b.Addr, "err", de.err)
	}
}

func (h *HTTPProxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	st, _ := r.Context().Value(reqStateKey{}).(*reqState)
	if errors.Is(err, errNoBackend) {
		attrs := []any{"service", h.cfg.Service, "method", r.Method, "path", r.URL.Path}
		if st != nil && len(st.tried) > 0 {
			attrs = append(attrs, "refused_by", len(st.tried), "last_err", st.lastErr)
		}
		h.warnRateLimited("lb: no backend available", attrs...)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "no backend available for service %q\n", h.cfg.Service)
		return
	}
	if st != nil && st.body != nil && context.Cause(r.Context()) != errDrainTimeout {
		switch st.body.failure() {
		case bodyStalled:
			h.log.Debug("lb: client stalled sending the request body, closing", "service", h.cfg.Service,
				"method", r.Method, "path", r.URL.Path, "body_timeout", h.cfg.BodyTimeout)
			w.Header().Set("Connection", "close")
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusRequestTimeout)
			io.WriteString(w, requestTimeoutBody)
			return
		case bodyMalformed:
			h.log.Debug("lb: malformed request body, answering 400", "service", h.cfg.Service,
				"method", r.Method, "path", r.URL.Path, "err", err)
			w.Header().Set("Connection", "close")
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, badRequestBody)
			return
		}
	}
	backend := ""
	if st != nil && st.target != nil {
		backend = st.target.b.Addr
	}
	switch cause := context.Cause(r.Context()); {
	case errors.Is(cause, errDrainTimeout):
		h.log.Warn("lb: request cut by the drain timeout", "service", h.cfg.Service, "backend", backend,
			"method", r.Method, "path", r.URL.Path)
	case r.Context().Err() != nil:
		// The client went away: nothing to report, nobody to answer.
	default:
		h.log.Warn("lb: backend request failed", "service", h.cfg.Service, "backend", backend,
			"method", r.Method, "path", r.URL.Path, "err", err)
	}
	w.WriteHeader(http.StatusBadGateway)
}

// warnRateLimited logs at most about once a second; the rest go to Debug.
func (h *HTTPProxy) warnRateLimited(msg string, attrs ...any) {
	now := time.Now().UnixNano()
	last := h.quiet.Load()
	if now-last >= int64(time.Second) && h.quiet.CompareAndSwap(last, now) {
		h.log.Warn(msg, attrs...)
		return
	}
	h.log.Debug(msg, attrs...)
}

// transport returns addr's keep-alive transport.
func (h *HTTPProxy) transport(addr string) *http.Transport {
	if v, ok := h.trs.Load(addr); ok {
		return v.(*http.Transport)
	}
	dialer := &net.Dialer{Timeout: h.cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, a)
			if err != nil {
				return nil, &dialError{err: err}
			}
			return c, nil
		},
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   h.cfg.MaxIdleConnsPerBackend,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	v, loaded := h.trs.LoadOrStore(addr, tr)
	if loaded {
		tr.CloseIdleConnections()
	}
	return v.(*http.Transport)
}

// closeIdle runs when a removed backend has drained: its idle keep-alive
// connections are closed unless another backend in rotation uses the same
// address.
func (h *HTTPProxy) closeIdle(b Backend) {
	if h.cfg.Pool.hasAddr(b.Addr) {
		return
	}
	if v, ok := h.trs.LoadAndDelete(b.Addr); ok {
		v.(*http.Transport).CloseIdleConnections()
	}
	if v, ok := h.ups.LoadAndDelete(b.Addr); ok {
		v.(*upPool).closeAll()
	}
}

const errNoBackend = constError("no backend available")

// dialError marks a failed connect: nothing reached the backend.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// replayBody lets a request body be offered to another backend after a
// failed connect: the transport's Close is ignored (the ReverseProxy closes
// the real body), and used records whether any of it was read. With a
// timeout, each Read first moves the client's read deadline that far
// ahead (a progress-based body deadline); err keeps the first failure of
// the client's side.
type replayBody struct {
	rc          io.ReadCloser
	used        atomic.Bool
	timeout     time.Duration
	setDeadline func(time.Time) error
	deadline    atomic.Int64 // unix nanos, while a Read with a deadline runs
	mu          sync.Mutex
	err         error
}

func (b *replayBody) Read(p []byte) (int, error) {
	b.used.Store(true)
	if b.setDeadline != nil {
		d := time.Now().Add(b.timeout)
		if b.setDeadline(d) == nil {
			b.deadline.Store(d.UnixNano())
		}
	}
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	b.deadline.Store(0)
	return n, err
}

// Failures of the client's side of a request body.
const (
	bodyOK        = iota
	bodyStalled   // no byte for the body timeout
	bodyMalformed // bad framing (a malformed chunked body)
	bodyGone      // the client went away
)

const (
	requestTimeoutBody = "408 Request Timeout: no request body data for too long\n"
	badRequestBody     = "400 Bad Request: malformed request body\n"
)

// failure classifies how reading the client's body failed. A Read still
// blocked past its deadline counts as stalled: the request's context is
// canceled by the failing read before the error reaches Read's caller.
func (b *replayBody) failure() int {
	b.mu.Lock()
	err := b.err
	b.mu.Unlock()
	if err == nil {
		if d := b.deadline.Load(); d != 0 && time.Now().UnixNano() >= d {
			return bodyStalled
		}
		return bodyOK
	}
	return classifyBodyErr(err)
}

// classifyBodyErr tells a stalled client from a malformed body and from a
// client that went away.
func classifyBodyErr(err error) int {
	var ne net.Error
	switch {
	case err == nil:
		return bodyOK
	case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return bodyStalled
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, http.ErrBodyReadAfterClose):
		return bodyGone
	}
	return bodyMalformed
}

func (b *replayBody) Close() error { return nil }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// bufferPool is the ReverseProxy's copy-buffer pool (32 KiB buffers).
type bufferPool sync.Pool

func (p *bufferPool) Get() []byte { return *((*sync.Pool)(p).Get().(*[]byte)) }

func (p *bufferPool) Put(b []byte) {
	if cap(b) >= 32<<10 {
		b = b[:cap(b)]
		(*sync.Pool)(p).Put(&b)
	}
}

// proxyLogWriter routes the ReverseProxy's own log lines to slog, dropping
// the "context canceled" noise of clients that went away.
type proxyLogWriter struct{ log *slog.Logger }

func (w *proxyLogWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	if bytes.Contains(line, []byte("context canceled")) {
		return len(p), nil
	}
	w.log.Warn("lb: proxy: " + string(line))
	return len(p), nil
}
