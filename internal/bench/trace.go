package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/store/keys"
)

// startTrace follows every write under fleet's prefix with one watch and
// records, per unit, when the bench saw each step of a start reach etcd:
// the unit record (the API's write), its schedule key (the engine's
// write), and each distinct state the agent published. The times are the
// bench's receive times of the watch events (each a watch delivery after
// the commit), so the differences between steps are what fleetd spent
// between two etcd writes.
type startTrace struct {
	layout keys.Layout
	mu     sync.Mutex
	units  map[string]*unitTrace
}

// unitTrace is one unit's steps.
type unitTrace struct {
	unit, schedule time.Time
	states         []stateStep
}

type stateStep struct {
	at    time.Time
	state string // activeState/subState
}

func newStartTrace(ctx context.Context, cli *clientv3.Client, prefix string) *startTrace {
	t := &startTrace{layout: keys.New(prefix), units: map[string]*unitTrace{}}
	wch := cli.Watch(ctx, t.layout.Prefix(), clientv3.WithPrefix())
	go func() {
		for resp := range wch {
			now := time.Now()
			t.mu.Lock()
			for _, ev := range resp.Events {
				if ev.Type != clientv3.EventTypePut {
					continue
				}
				k, ok := t.layout.Parse(string(ev.Kv.Key))
				if !ok {
					continue
				}
				u := t.units[k.Unit]
				if u == nil && k.Unit != "" {
					u = &unitTrace{}
					t.units[k.Unit] = u
				}
				switch k.Kind {
				case keys.Unit:
					if u.unit.IsZero() {
						u.unit = now
					}
				case keys.Schedule:
					if u.schedule.IsZero() {
						u.schedule = now
					}
				case keys.State:
					var st struct {
						Active string `json:"activeState"`
						Sub    string `json:"subState"`
					}
					if json.Unmarshal(ev.Kv.Value, &st) != nil {
						continue
					}
					s := st.Active + "/" + st.Sub
					if n := len(u.states); n == 0 || u.states[n-1].state != s {
						u.states = append(u.states, stateStep{at: now, state: s})
					}
				}
			}
			t.mu.Unlock()
		}
	}()
	return t
}

// breakdown returns, for the given units (each started at starts[i]), the
// median and p99 of each step: API call to unit record seen, unit record to
// schedule key, schedule key to the first published state, first state to
// active, and the whole. It also counts how many states were published
// before active (a start that publishes activating then active pays one
// more state write than one that publishes active at once).
func (t *startTrace) breakdown(names []string, starts []time.Time) []traceRow {
	t.mu.Lock()
	defer t.mu.Unlock()
	steps := []string{"API call -> unit record in etcd", "unit record -> schedule key (engine)", "schedule key -> first state (agent, runner, shim)", "first state -> active", "whole: API call -> active"}
	vals := make([][]time.Duration, len(steps))
	var extra []float64
	for i, n := range names {
		u := t.units[n]
		if u == nil || u.unit.IsZero() || u.schedule.IsZero() || len(u.states) == 0 {
			continue
		}
		act := -1
		for j, s := range u.states {
			if strings.HasPrefix(s.state, "active/") {
				act = j
				break
			}
		}
		if act < 0 {
			continue
		}
		vals[0] = append(vals[0], u.unit.Sub(starts[i]))
		vals[1] = append(vals[1], u.schedule.Sub(u.unit))
		vals[2] = append(vals[2], u.states[0].at.Sub(u.schedule))
		vals[3] = append(vals[3], u.states[act].at.Sub(u.states[0].at))
		vals[4] = append(vals[4], u.states[act].at.Sub(starts[i]))
		extra = append(extra, float64(act))
	}
	rows := make([]traceRow, len(steps))
	for i, s := range steps {
		slices.Sort(vals[i])
		rows[i] = traceRow{Step: s, N: len(vals[i])}
		if len(vals[i]) > 0 {
			rows[i].P50ms = round(ms(pct(vals[i], 50)), 2)
			rows[i].P99ms = round(ms(pct(vals[i], 99)), 2)
		}
	}
	var sum float64
	for _, x := range extra {
		sum += x
	}
	if len(extra) > 0 {
		rows = append(rows, traceRow{Step: fmt.Sprintf("states published before active (mean %.2f)", sum/float64(len(extra))), N: len(extra)})
	}
	return rows
}

type traceRow struct {
	Step  string  `json:"step"`
	N     int     `json:"n"`
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
}
