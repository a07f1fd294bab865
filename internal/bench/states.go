package bench

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// activeWatch follows states/ and schedule/ with one watch each and knows,
// at every moment, on which machines each unit is reported active.
type activeWatch struct {
	mu      sync.Mutex
	active  map[string]map[string]time.Time // unit -> machine -> when it became active
	changed chan struct{}                   // closed and replaced on every change
	moves   int                             // schedule/ puts and deletes seen
}

func watchActive(ctx context.Context, cli *clientv3.Client, prefix string) *activeWatch {
	w := &activeWatch{active: map[string]map[string]time.Time{}, changed: make(chan struct{})}
	sdir := prefix + "states/"
	wch := cli.Watch(ctx, sdir, clientv3.WithPrefix())
	go func() {
		for resp := range wch {
			now := time.Now()
			w.mu.Lock()
			for _, ev := range resp.Events {
				machine, unit, ok := strings.Cut(strings.TrimPrefix(string(ev.Kv.Key), sdir), "/")
				if !ok {
					continue
				}
				var st struct {
					ActiveState string `json:"activeState"`
				}
				on := ev.Type == clientv3.EventTypePut && json.Unmarshal(ev.Kv.Value, &st) == nil && st.ActiveState == "active"
				ms := w.active[unit]
				if on {
					if ms == nil {
						ms = map[string]time.Time{}
						w.active[unit] = ms
					}
					if _, was := ms[machine]; !was {
						ms[machine] = now
					}
				} else if ms != nil {
					delete(ms, machine)
				}
			}
			close(w.changed)
			w.changed = make(chan struct{})
			w.mu.Unlock()
		}
	}()
	schedDir := prefix + "schedule/"
	sch := cli.Watch(ctx, schedDir, clientv3.WithPrefix())
	go func() {
		for resp := range sch {
			w.mu.Lock()
			w.moves += len(resp.Events)
			w.mu.Unlock()
		}
	}()
	return w
}

// scheduleWrites returns how many schedule/ writes were seen so far.
func (w *activeWatch) scheduleWrites() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.moves
}

// where returns the machines a unit is active on.
func (w *activeWatch) where(unit string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ms []string
	for m := range w.active[unit] {
		ms = append(ms, m)
	}
	return ms
}

// await waits until cond (called with the map, under the lock) holds, and
// returns the time the watch saw the change that made it hold.
func (w *activeWatch) await(ctx context.Context, d time.Duration, cond func(map[string]map[string]time.Time) bool) (time.Time, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		w.mu.Lock()
		ok := cond(w.active)
		ch := w.changed
		w.mu.Unlock()
		if ok {
			return time.Now(), true
		}
		select {
		case <-ch:
		case <-t.C:
			return time.Time{}, false
		case <-ctx.Done():
			return time.Time{}, false
		}
	}
}
