package etcdserver

import (
	"strings"
	"testing"
	"time"
)

func TestDecideDisk(t *testing.T) {
	const mb = 1 << 20
	const low, high = 256 * mb, 320 * mb
	for _, tc := range []struct {
		name string
		v    diskView
		want diskAction
	}{
		{"plenty of space", diskView{free: 10000 * mb, low: low, high: high}, diskKeep},
		{"just above the low mark", diskView{free: low, low: low, high: high}, diskKeep},
		{"below the low mark", diskView{free: low - 1, low: low, high: high}, diskRaise},
		{"empty disk", diskView{free: 0, low: low, high: high}, diskRaise},
		{"below, ours already up", diskView{free: 100 * mb, low: low, high: high, alarm: true, ours: true}, diskKeep},
		{"below, etcd's quota alarm already up", diskView{free: 100 * mb, low: low, high: high, alarm: true}, diskKeep},
		{"below, ours disarmed by someone: raise again", diskView{free: 100 * mb, low: low, high: high, ours: true}, diskRaise},
		// Hysteresis: between the marks nothing changes either way.
		{"between the marks, ours up", diskView{free: 300 * mb, low: low, high: high, alarm: true, ours: true}, diskKeep},
		{"between the marks, no alarm", diskView{free: 300 * mb, low: low, high: high}, diskKeep},
		{"just below the high mark, ours up", diskView{free: high - 1, low: low, high: high, alarm: true, ours: true}, diskKeep},
		{"at the high mark, ours up", diskView{free: high, low: low, high: high, alarm: true, ours: true}, diskClear},
		{"well above, ours up", diskView{free: 10000 * mb, low: low, high: high, alarm: true, ours: true}, diskClear},
		{"above, ours up but the db over quota", diskView{free: 10000 * mb, low: low, high: high, alarm: true, ours: true, overQuota: true}, diskKeep},
		{"above, etcd's quota alarm", diskView{free: 10000 * mb, low: low, high: high, alarm: true, overQuota: true}, diskKeep},
		{"above, someone else's alarm under quota", diskView{free: 10000 * mb, low: low, high: high, alarm: true}, diskKeep},
		{"above, ours disarmed by someone", diskView{free: 10000 * mb, low: low, high: high, ours: true}, diskForget},
		{"between, ours disarmed by someone", diskView{free: 300 * mb, low: low, high: high, ours: true}, diskForget},
		// Disabled (both marks 0): never raises, still clears its own.
		{"disabled, empty disk", diskView{free: 0}, diskKeep},
		{"disabled, ours left from before", diskView{free: 0, alarm: true, ours: true}, diskClear},
		{"disabled, etcd's alarm", diskView{free: 0, alarm: true}, diskKeep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := decideDisk(tc.v); got != tc.want {
				t.Errorf("decideDisk(%+v) = %v, want %v", tc.v, got, tc.want)
			}
		})
	}
}

func TestNoSpaceRecordExplains(t *testing.T) {
	r := noSpaceRecord{Member: "m1", Machine: "3f2a1b4c/10.0.0.5", DataDir: "/var/lib/fleet/etcd",
		Free: 200 << 20, Min: 256 << 20, Resume: 320 << 20, Time: time.Now()}
	got := r.explain()
	for _, want := range []string{"/var/lib/fleet/etcd", "3f2a1b4c/10.0.0.5", "200 MB free", "256 MB", "320 MB", "free space"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	r.Machine = ""
	if got := r.explain(); !strings.Contains(got, "machine m1") {
		t.Errorf("without a machine: %q does not name the member", got)
	}
}
