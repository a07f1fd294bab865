package lb

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// TCPConfig configures a TCPProxy.
type TCPConfig struct {
	// Service is the service's name, used in logs.
	Service string
	// Pool supplies the backends; a connection counts as one in flight.
	Pool *Pool
	// ConnectTimeout bounds each dial to a backend; zero means 2s.
	ConnectTimeout time.Duration
	// DrainTimeout bounds how long Serve waits for live connections after
	// its context ends; zero means DefaultDrainTimeout, negative means
	// forever.
	DrainTimeout time.Duration
	// Logger receives connection errors; nil discards them.
	Logger *slog.Logger
	// MaxConns caps concurrent client connections; beyond it Serve stops
	// accepting and new connections wait in the kernel's accept queue
	// (HAProxy's maxconn). Zero or negative: no cap.
	MaxConns int
}

// TCPProxy balances TCP connections over a Pool: it accepts, picks a
// backend, dials it (moving on to another backend when the connect fails)
// and copies bytes both ways, propagating half-closes. Connections to a
// removed backend run until they end on their own or until the pool's drain
// timeout cuts them.
type TCPProxy struct {
	cfg   TCPConfig
	log   *slog.Logger
	quiet atomic.Int64

	wg       sync.WaitGroup
	mu       sync.Mutex
	sessions map[*tcpSession]struct{}
}

type tcpSession struct {
	client, backend net.Conn
	once            sync.Once
}

func (s *tcpSession) close() {
	s.once.Do(func() {
		s.client.Close()
		s.backend.Close()
	})
}

// NewTCPProxy returns a proxy over cfg.Pool.
func NewTCPProxy(cfg TCPConfig) *TCPProxy {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	p := &TCPProxy{cfg: cfg, log: cfg.Logger, sessions: map[*tcpSession]struct{}{}}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p
}

// Serve accepts connections on ln until ctx ends or ln fails. When ctx
// ends it closes ln, waits up to the drain timeout for live connections to
// finish, closes the rest and returns nil.
func (p *TCPProxy) Serve(ctx context.Context, ln net.Listener) error {
	limit := newConnLimit(p.cfg.MaxConns)
	serveErr := acceptLoop(ctx, ln, limit, p.log, p.cfg.Service, func(c net.Conn, release func()) {
		p.wg.Go(func() {
			defer release() // handle has closed c
			p.handle(ctx, c)
		})
	})
	ln.Close()
	p.shutdown()
	return serveErr
}

// shutdown waits for live sessions up to the drain timeout, then cuts them.
func (p *TCPProxy) shutdown() {
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	var expired <-chan time.Time
	if p.cfg.DrainTimeout > 0 {
		t := time.NewTimer(p.cfg.DrainTimeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-done:
		return
	case <-expired:
	}
	p.mu.Lock()
	n := len(p.sessions)
	for s := range p.sessions {
		s.close()
	}
	p.mu.Unlock()
	p.log.Warn("lb: drain timeout expired at shutdown, closed live connections", "service", p.cfg.Service, "connections", n)
	<-done
}

func (p *TCPProxy) handle(ctx context.Context, client net.Conn) {
	var tried []string
	var backend net.Conn
	var t *Target
	var lastErr error
	dialer := net.Dialer{Timeout: p.cfg.ConnectTimeout}
	dctx := context.WithoutCancel(ctx)
	for {
		t = p.cfg.Pool.Acquire(tried)
		if t == nil {
			client.Close()
			attrs := []any{"service", p.cfg.Service, "client", client.RemoteAddr().String()}
			if len(tried) > 0 {
				attrs = append(attrs, "refused_by", len(tried), "last_err", lastErr)
			}
			p.warnRateLimited("lb: no backend available, closing connection", attrs...)
			return
		}
		c, err := dialer.DialContext(dctx, "tcp", t.b.Addr)
		if err == nil {
			backend = c
			break
		}
		p.log.Debug("lb: connect failed, trying another backend", "service", p.cfg.Service,
			"backend", t.b.ID, "addr", t.b.Addr, "err", err)
		lastErr = err
		tried = append(tried, t.b.ID)
		p.cfg.Pool.Release(t)
	}
	defer p.cfg.Pool.Release(t)

	s := &tcpSession{client: client, backend: backend}
	p.mu.Lock()
	p.sessions[s] = struct{}{}
	p.mu.Unlock()
	stopAbort := context.AfterFunc(t.abort, s.close)
	defer func() {
		stopAbort()
		s.close()
		p.mu.Lock()
		delete(p.sessions, s)
		p.mu.Unlock()
	}()

	var up sync.WaitGroup
	up.Go(func() {
		if err := copyHalf(backend, client); err != nil {
			s.close()
		}
	})
	if err := copyHalf(client, backend); err != nil {
		s.close()
	}
	up.Wait()
}

// copyHalf copies src to dst until src's EOF, then half-closes dst so the
// peer sees the end of the stream while the other direction goes on. With
// two *net.TCPConn, io.Copy uses splice(2) on Linux.
func copyHalf(dst, src net.Conn) error {
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return dst.Close()
}

func (p *TCPProxy) warnRateLimited(msg string, attrs ...any) {
	now := time.Now().UnixNano()
	last := p.quiet.Load()
	if now-last >= int64(time.Second) && p.quiet.CompareAndSwap(last, now) {
		p.log.Warn(msg, attrs...)
		return
	}
	p.log.Debug(msg, attrs...)
}
