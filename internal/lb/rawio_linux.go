//go:build linux

package lb

import (
	"syscall"
	"unsafe"
)

// rawRecvSupported: recv2 is implemented.
const rawRecvSupported = true

type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
}

// recv2 reads a stream socket with one recvmmsg(2) of two entries: into a
// and then, in the same system call and without blocking, into b. The
// second entry is what a net.Conn Read would learn with a second read:
// whether more bytes are queued (n2 > 0), whether the peer's FIN follows
// the bytes just read (n2 == 0: a read that meets the FIN after bytes
// returns the bytes, and the FIN leaves no readiness edge behind), or
// whether the queue is drained (second false: the second entry found
// EAGAIN). So a caller can go back to waiting for readiness after one
// system call instead of two.
//
// One case it cannot tell from "drained": an error (a reset) queued right
// behind the bytes. The kernel then keeps the error for the next call,
// which only comes with the next readiness edge: the HTTP fast path
// learns of it when its next write to that connection fails. (A TCP relay
// built on recv2 would wait for the other side instead; the TCP proxy
// keeps io.Copy for that reason.)
type recv2 struct {
	iov [2]syscall.Iovec
	hs  [2]mmsghdr
}

// read returns the bytes read into a and b (n1 == 0: EOF) and whether
// the second entry completed. err is syscall.EAGAIN when nothing was
// queued; a and b must not be empty.
func (r *recv2) read(fd uintptr, a, b []byte) (n1, n2 int, second bool, err error) {
	r.iov[0].Base, r.iov[1].Base = &a[0], &b[0]
	r.iov[0].SetLen(len(a))
	r.iov[1].SetLen(len(b))
	for i := range r.hs {
		r.hs[i] = mmsghdr{}
		r.hs[i].hdr.Iov = &r.iov[i]
		r.hs[i].hdr.Iovlen = 1
	}
	for {
		k, _, e := syscall.Syscall6(syscall.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hs[0])), 2, syscall.MSG_DONTWAIT, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, 0, false, e
		}
		n1 = int(r.hs[0].n)
		if k == 2 {
			return n1, int(r.hs[1].n), true, nil
		}
		return n1, 0, false, nil
	}
}
