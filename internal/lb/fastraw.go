package lb

import (
	"io"
	"syscall"
	"time"
)

// Fewer system calls per request on the fast path. net.Conn.Read tries a
// read every time it is called and parks only when that read finds
// nothing (EAGAIN), so reading a response right after writing its request
// costs a read that finds nothing before the one that gets the bytes; on
// this machine (KPTI) a system call costs 1-2 µs, several percent of a
// request. syscall.RawConn.Read clears the connection's readiness flag
// when it is entered, so a request written from inside it, on the
// callback's first call, cannot have its response's readiness edge
// missed: the callback returns false at once (wait), and reads only when
// woken.

// errWouldBlock is what a raw-mode source returns when the socket has
// nothing queued; it never leaves this package's read paths.
const errWouldBlock = constError("lb: read would block")

// rawRead is one non-blocking read(2) on fd for a bufio.Reader's source.
func rawRead(fd int, p []byte) (int, error) {
	for {
		n, err := syscall.Read(fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, errWouldBlock
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// Read is u.br's source: u.c, or a raw read while send waits.
func (u *upConn) Read(p []byte) (int, error) {
	if u.rawOn {
		return rawRead(u.rawFD, p)
	}
	return u.c.Read(p)
}

// send writes req to the backend and waits for the response's first
// bytes, which it reads into u.br with one read. A read error is left for
// the caller's next read to find again (a reset or EOF stays); the error
// returned is the write's.
func (u *upConn) send(req []byte) error {
	if u.rc == nil {
		if sc, ok := u.c.(syscall.Conn); ok {
			u.rc, _ = sc.SyscallConn()
		}
		if u.rc == nil {
			_, err := u.c.Write(req)
			return err
		}
	}
	wrote := false
	var werr error
	err := u.rc.Read(func(fd uintptr) bool {
		if !wrote {
			wrote = true
			_, werr = u.c.Write(req)
			return werr != nil // written: wait for the response
		}
		u.rawFD, u.rawOn = int(fd), true
		_, err := u.br.Peek(1)
		u.rawOn = false
		return err != errWouldBlock // a spurious wake-up waits again
	})
	if werr != nil {
		return werr
	}
	if !wrote {
		return err // closed before anything was written
	}
	return nil
}

// The client side: serveRaw runs the connection's request loop inside one
// RawConn.Read for as long as requests come with their bodies buffered.
// Once a response is written the client's next request cannot be queued
// yet, so instead of the read that would find nothing the loop goes back
// to waiting (returns false), and reads when the netpoller wakes it. Reads
// are recv2, so that the peer's FIN behind a request, which leaves no edge,
// is seen. A request whose body must be streamed (by another goroutine,
// which reads the connection), a hand-off and the connection's end leave
// the RawConn.Read.

// rawConn returns c's RawConn, or nil when raw mode is not available.
func (fc *fastConn) rawConn() syscall.RawConn {
	if !rawRecvSupported {
		return nil
	}
	sc, ok := fc.c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// serveRaw serves requests in raw mode until one must be dealt with
// outside it; it returns serveOne's verdict on that one.
func (fc *fastConn) serveRaw(rc syscall.RawConn) int {
	next := stepClose
	err := rc.Read(func(fd uintptr) bool {
		// Called on entry and after each wake-up: a read is due.
		fc.rawFD, fc.rawOn, fc.drained = int(fd), true, false
		for {
			switch step := fc.serveOne(true); step {
			case stepNext:
				continue
			case stepWait:
				fc.rawOn = false
				return false
			default:
				fc.rawOn = false
				next = step
				return true
			}
		}
	})
	if err != nil {
		return stepClose // closed (the shutdown) or the idle/head deadline
	}
	return next
}

// rawRecv is clientReader.Read in raw mode: one recv2 into p, the second
// entry being p's tail, so that what it reads follows the first entry's
// bytes once moved down.
func (fc *fastConn) rawRecv(p []byte) (int, error) {
	if fc.drained {
		return 0, errWouldBlock
	}
	if len(p) < 2 {
		n, err := rawRead(fc.rawFD, p)
		if err == errWouldBlock {
			fc.drained = true
		}
		return n, err
	}
	k := len(p) - min(len(p)/2, 4096)
	n1, n2, second, err := fc.rx.read(uintptr(fc.rawFD), p[:k], p[k:])
	switch {
	case err == syscall.EAGAIN:
		fc.drained = true
		return 0, errWouldBlock
	case err != nil:
		return 0, err
	case n1 == 0:
		return 0, io.EOF
	}
	if n2 > 0 {
		n1 += copy(p[n1:], p[k:k+n2])
	}
	// Not second: the queue was empty after the first entry. Second with
	// n2 == 0: the FIN follows (the next read returns EOF); with n2 > 0,
	// maybe more: read again before waiting.
	fc.drained = !second
	return n1, nil
}

// idleDeadline sets the read deadline for waiting for the next request:
// IdleTimeout from now, with a slack of IdleTimeout/64 so that, with
// requests following each other, the deadline (a timer update) is moved
// about once per slack instead of once per request.
func (fc *fastConn) idleDeadline() {
	idle := fc.h.cfg.IdleTimeout
	want := time.Now().Add(idle)
	if fc.rdlOK && !fc.rdl.Before(want) && !fc.rdl.After(want.Add(idle/64)) {
		return
	}
	fc.setReadDeadline(want.Add(idle / 64))
}

func (fc *fastConn) setReadDeadline(t time.Time) {
	fc.c.SetReadDeadline(t)
	fc.rdl, fc.rdlOK = t, true
}
