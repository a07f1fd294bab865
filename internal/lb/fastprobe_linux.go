package lb

import (
	"net"
	"syscall"
)

// connAlive reports whether an idle backend connection still looks usable:
// nothing to read (EAGAIN) means it is; EOF, an error or unexpected bytes
// mean the backend closed it or misbehaved. One non-blocking recv(2) with
// MSG_PEEK; only used before streaming a body that cannot be sent twice.
func connAlive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && alive
}
