package registry

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Deregister removes the keys first, then waits DeregisterDelay (bounded by
// its context) so that balancers drop the endpoint before the unit stops;
// it does not wait when it removed nothing.
func TestDeregisterDelay(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DeregisterDelay = time.Hour })
	opts := unitOpts(t, "[Service]\nExecStart=/x\n[X-Service]\nName=web\nPort=80\n")
	e.reg.SetUnits([]Unit{{Name: "web.service", Options: opts, Active: true, Since: time.Now()}})
	key := "/services/web/m1:web.service:80"
	e.await("published", key, "127.0.0.1:80", 10*time.Second)

	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	deleted := make(chan struct{})
	wch := e.cli.Watch(wctx, key)
	go func() {
		for resp := range wch {
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					close(deleted)
					return
				}
			}
		}
	}()

	// The context ends the wait (the delay is an hour).
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	returned := make(chan error, 1)
	go func() { returned <- e.reg.Deregister(ctx, "web.service") }()
	select {
	case <-deleted:
	case err := <-returned:
		t.Fatalf("Deregister returned (%v) before the key was deleted", err)
	case <-time.After(30 * time.Second):
		t.Fatal("key not deleted")
	}
	if err := <-returned; err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	if ctx.Err() == nil {
		t.Fatal("Deregister returned before its delay or its context ended")
	}
	if v, _ := e.get(key); v != "" {
		t.Fatalf("after Deregister: %s = %q", key, v)
	}

	// Nothing left to remove: no wait (the context would end in 30s).
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	if err := e.reg.Deregister(ctx2, "web.service"); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.Deregister(ctx2, "never-loaded.service"); err != nil {
		t.Fatal(err)
	}
	if ctx2.Err() != nil {
		t.Fatal("Deregister waited although it removed nothing")
	}
}
