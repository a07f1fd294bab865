package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// The first component to fail ends the group's context; the others stop,
// and what they return while stopping is no failure.
func TestComponentsFirstFailureStopsTheOthers(t *testing.T) {
	var logs syncBuffer
	c := newComponents(t.Context(), slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	boom := errors.New("boom")
	fail := make(chan struct{})
	c.Go("quiet", func(ctx context.Context) error { <-ctx.Done(); return nil })
	c.Go("cut short", func(ctx context.Context) error {
		<-ctx.Done()
		return fmt.Errorf("request: %w", ctx.Err())
	})
	c.Go("other error", func(ctx context.Context) error {
		<-ctx.Done()
		return errors.New("connection closed")
	})
	c.Go("failing", func(ctx context.Context) error { <-fail; return boom })
	select {
	case <-c.ctx.Done():
		t.Fatal("the group ended before any component failed")
	case <-time.After(50 * time.Millisecond):
	}
	close(fail)
	select {
	case <-c.ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a component failed; the group's context did not end")
	}
	wctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if !c.wait(wctx) {
		t.Fatal("components did not stop")
	}
	if err := c.err(); err != boom {
		t.Errorf("err = %v; want the failing component's own error", err)
	}
	if out := logs.String(); !strings.Contains(out, "component failing failed: boom") || strings.Contains(out, "component other error failed") {
		t.Errorf("log:\n%s", out)
	}
}

// The parent context ending is a shutdown, not a failure; a component
// that does not stop leaves wait at its deadline.
func TestComponentsShutdownAndStuckComponent(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	c := newComponents(ctx, slog.New(slog.DiscardHandler))
	release := make(chan struct{})
	defer close(release)
	c.Go("stuck", func(context.Context) error { <-release; return errors.New("late") })
	c.Go("polite", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	cancel()
	<-c.ctx.Done()
	wctx, wcancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer wcancel()
	if c.wait(wctx) {
		t.Error("wait returned true with a component stuck")
	}
	if err := c.err(); err != nil {
		t.Errorf("err after a shutdown = %v; want nil", err)
	}
}
