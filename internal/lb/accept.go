package lb

import (
	"context"
	"errors"
	"net"
	"time"
)

// acceptLoop accepts connections on ln and hands each to handle until ctx
// ends (ln is closed then, and acceptLoop returns nil) or ln fails for good
// (the error is returned). Temporary accept errors back off up to a second.
func acceptLoop(ctx context.Context, ln net.Listener, handle func(net.Conn)) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	delay := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(delay)
				delay = min(2*delay, time.Second)
				continue
			}
			return err
		}
		delay = 5 * time.Millisecond
		handle(c)
	}
}
