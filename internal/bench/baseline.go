package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const baselinePrefix = "/fleet-bench-baseline/"

// putThroughput measures raw etcd puts/s from writers goroutines spread over
// clis, 64-byte values, for d. It deletes its keys afterwards.
func putThroughput(ctx context.Context, clis []*clientv3.Client, writers int, d time.Duration) (float64, error) {
	val := strings.Repeat("x", 64)
	var n atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for w := range writers {
		cli := clis[w%len(clis)]
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				_, err := cli.Put(ctx, fmt.Sprintf("%s%d/%d", baselinePrefix, w, i%100), val)
				if err != nil {
					if ctx.Err() == nil {
						firstErr.CompareAndSwap(nil, err)
					}
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	_, _ = clis[0].Delete(dctx, baselinePrefix, clientv3.WithPrefix())
	dcancel()
	if err, ok := firstErr.Load().(error); ok && err != nil {
		return 0, fmt.Errorf("baseline puts: %w", err)
	}
	return float64(n.Load()) / el.Seconds(), nil
}

// putRoundTrips measures count sequential puts and returns their sorted
// latencies.
func putRoundTrips(ctx context.Context, cli *clientv3.Client, count int) ([]time.Duration, error) {
	val := strings.Repeat("x", 64)
	lat := make([]time.Duration, 0, count)
	for i := range count {
		t := time.Now()
		if _, err := cli.Put(ctx, fmt.Sprintf("%srtt/%d", baselinePrefix, i%10), val); err != nil {
			return nil, fmt.Errorf("baseline put: %w", err)
		}
		lat = append(lat, time.Since(t))
	}
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	_, _ = cli.Delete(dctx, baselinePrefix, clientv3.WithPrefix())
	dcancel()
	slices.Sort(lat)
	return lat, nil
}

// pct returns the p-th percentile (0..100) of sorted durations.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}
