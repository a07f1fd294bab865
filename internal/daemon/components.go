package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/sync/errgroup"
)

// components runs fleetd's long-running parts (the agent, the engine, the
// presence loops, the registries, the API servers, ...) in one errgroup.
//
// A component runs until ctx ends and then returns nil. A component that
// returns an error before that has failed: it is logged ("component X
// failed: ..."), ctx ends (every other component stops and fleetd shuts
// down), and that error, unchanged, is what Run returns. What components
// return once ctx has ended (a shutdown, for whatever reason) is no
// failure: a request cut short by the shutdown is expected.
type components struct {
	g *errgroup.Group
	// ctx ends when fleetd shuts down: its parent ended (SIGTERM) or a
	// component failed.
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger

	mu     sync.Mutex
	failed error // the first failure
}

func newComponents(ctx context.Context, log *slog.Logger) *components {
	ctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(ctx)
	return &components{g: g, ctx: gctx, cancel: cancel, log: log}
}

// Go starts component name: run(c.ctx).
func (c *components) Go(name string, run func(ctx context.Context) error) {
	c.g.Go(func() error {
		err := run(c.ctx)
		if c.ctx.Err() != nil {
			// Shutting down: whatever ends the component now is no
			// failure.
			if err != nil && !errors.Is(err, context.Canceled) {
				c.log.Debug("component stopped with an error during shutdown", "component", name, "err", err)
			}
			return nil
		}
		if err == nil {
			c.log.Debug("component finished", "component", name)
			return nil
		}
		c.mu.Lock()
		first := c.failed == nil
		if first {
			c.failed = err
		}
		c.mu.Unlock()
		c.log.Error(fmt.Sprintf("component %s failed: %v", name, err), "component", name)
		if !first {
			return nil
		}
		return err // ends c.ctx
	})
}

// shutdown ends c.ctx: every component is asked to stop.
func (c *components) shutdown() { c.cancel() }

// wait waits until every component has returned, or ctx ends first (some
// component is stuck, e.g. in a call to an etcd that is gone); it reports
// whether they all returned.
func (c *components) wait(ctx context.Context) bool {
	stopped := make(chan struct{})
	go func() {
		_ = c.g.Wait() // the first failure is in c.failed
		close(stopped)
	}()
	select {
	case <-stopped:
		return true
	case <-ctx.Done():
		return false
	}
}

// err is the first component failure, nil if none failed.
func (c *components) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}
