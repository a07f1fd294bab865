package lb

import (
	"fmt"
	"sync/atomic"
)

// Balance algorithms accepted by NewPicker and PoolConfig.Balance.
const (
	BalanceRoundRobin = "roundrobin"
	BalanceLeastConn  = "leastconn"
)

// Picker chooses a target from the current rotation. It is pure: it reads
// only its own rotation counter and the targets' in-flight counts, takes no
// locks and does no I/O, so it is safe for concurrent use and cheap
// (see BenchmarkPickRoundRobin and BenchmarkPickLeastConn).
type Picker interface {
	// Pick returns one of targets whose ID is not in exclude, or nil if
	// every target is excluded (or targets is empty).
	Pick(targets []*Target, exclude []string) *Target
}

// NewPicker returns the picker for a balance algorithm: "roundrobin" or
// "leastconn".
func NewPicker(balance string) (Picker, error) {
	switch balance {
	case BalanceRoundRobin, "":
		return &RoundRobin{}, nil
	case BalanceLeastConn:
		return &LeastConn{}, nil
	}
	return nil, fmt.Errorf("unknown balance algorithm %q (want %s or %s)", balance, BalanceRoundRobin, BalanceLeastConn)
}

// RoundRobin hands targets out in turn. Excluded targets are skipped.
type RoundRobin struct {
	next atomic.Uint64
}

// Pick implements Picker.
func (r *RoundRobin) Pick(targets []*Target, exclude []string) *Target {
	n := uint64(len(targets))
	if n == 0 {
		return nil
	}
	i := int((r.next.Add(1) - 1) % n)
	for range n {
		if t := targets[i]; !excluded(t, exclude) {
			return t
		}
		if i++; i == len(targets) {
			i = 0
		}
	}
	return nil
}

// LeastConn picks the target with the fewest in-flight requests or
// connections; ties are broken in rotation so idle targets share the load.
type LeastConn struct {
	next atomic.Uint64
}

// Pick implements Picker.
func (l *LeastConn) Pick(targets []*Target, exclude []string) *Target {
	n := uint64(len(targets))
	if n == 0 {
		return nil
	}
	i := int((l.next.Add(1) - 1) % n)
	var best *Target
	var bestLoad int64
	for range n {
		t := targets[i]
		if i++; i == len(targets) {
			i = 0
		}
		if excluded(t, exclude) {
			continue
		}
		load := t.inflight.Load()
		if best == nil || load < bestLoad {
			best, bestLoad = t, load
			if load == 0 {
				break
			}
		}
	}
	return best
}

func excluded(t *Target, exclude []string) bool {
	for _, id := range exclude {
		if t.b.ID == id {
			return true
		}
	}
	return false
}
