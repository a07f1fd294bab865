package testcluster

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy in front of etcd for one machine. Paused, it
// forwards nothing in either direction and new connections wait: a network
// partition between that machine and etcd, without connection errors.
type Proxy struct {
	l      net.Listener
	target string

	mu     sync.Mutex
	paused bool
	resume chan struct{} // closed on Resume
	conns  map[net.Conn]struct{}
	closed bool
}

// NewProxy listens on a free local port and forwards to target.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p := &Proxy{l: l, target: target, resume: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.resume)
	go p.serve()
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Pause stops all traffic.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.paused {
		p.paused = true
		p.resume = make(chan struct{})
	}
}

// Resume lets traffic flow again (what was held is delivered).
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		p.paused = false
		close(p.resume)
	}
}

// gate returns a channel that is closed while traffic may flow.
func (p *Proxy) gate() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resume
}

// Close stops the proxy and its connections.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	if p.paused {
		p.paused = false
		close(p.resume)
	}
	p.mu.Unlock()
	p.l.Close()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) serve() {
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		go func() {
			<-p.gate()
			if !p.track(in) {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				p.untrack(in)
				return
			}
			if !p.track(out) {
				p.untrack(in)
				return
			}
			done := make(chan struct{}, 2)
			go func() { p.pipe(out, in); done <- struct{}{} }()
			go func() { p.pipe(in, out); done <- struct{}{} }()
			<-done
			p.untrack(in)
			p.untrack(out)
		}()
	}
}

// pipe copies src to dst chunk by chunk, holding each chunk while paused.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			<-p.gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}
