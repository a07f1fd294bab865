package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fleetd/fleet/internal/engine"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// runEngineChild is the scale scenario's engine process: one engine on the
// given etcd until SIGTERM, then one JSON line with its round statistics.
// SIGUSR1 writes the heap profile.
func runEngineChild(ctx context.Context, e *env, args []string) (map[string]any, error) {
	fs := newFlags(e, "_engine", "internal: the scale scenario's engine process")
	endpoints := fs.String("endpoints", "", "etcd client URLs")
	prefix := fs.String("prefix", "", "key prefix")
	ttl := fs.Duration("ttl", 10*time.Second, "leader lease TTL")
	var prof profiles
	prof.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	cli, err := newClient(strings.Split(*endpoints, ","), "")
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	if err := prof.start(); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var rounds, puts int
	var busy, longest time.Duration
	eng := engine.New(engine.Config{
		Store: store.New(etcdkv.New(cli), *prefix), MachineID: "bench-engine", LeaseTTL: *ttl,
		OnReconcile: func(s engine.Stats) {
			mu.Lock()
			rounds++
			puts += s.Put
			busy += s.Duration
			longest = max(longest, s.Duration)
			mu.Unlock()
		},
	})
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	memPath := prof.mem
	prof.mem = ""
	go func() {
		for range usr1 {
			if memPath == "" {
				continue
			}
			if f, err := os.Create(memPath); err == nil {
				runtime.GC()
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
	}()
	_ = eng.Run(ctx)
	_ = prof.stop()
	mu.Lock()
	defer mu.Unlock()
	b, _ := json.Marshal(map[string]any{
		"rounds": rounds, "schedule_puts": puts,
		"busy_s": round(busy.Seconds(), 3), "longest_round_ms": round(ms(longest), 1),
	})
	fmt.Fprintln(e.out, string(b))
	return nil, nil
}

// runEtcdChild runs a bare embedded etcd member (the footprint baseline)
// until SIGTERM.
func runEtcdChild(ctx context.Context, e *env, args []string) (map[string]any, error) {
	fs := newFlags(e, "_etcd", "internal: a bare embedded etcd member")
	dir := fs.String("data-dir", "", "data directory")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	srv, err := startEtcd(ctx, *dir)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(e.out, strings.Join(srv.ClientURLs(), ","))
	<-ctx.Done()
	srv.Close()
	return nil, nil
}
