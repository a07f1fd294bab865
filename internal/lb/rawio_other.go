//go:build !linux

package lb

// rawRecvSupported: no recv2 here; the HTTP fast path reads as before.
const rawRecvSupported = false

type recv2 struct{}

func (r *recv2) read(fd uintptr, a, b []byte) (n1, n2 int, second bool, err error) {
	panic("recv2 is linux-only")
}
