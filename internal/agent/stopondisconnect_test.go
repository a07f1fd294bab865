package agent

import (
	"testing"

	"github.com/fleetd/fleet/internal/fleet"
)

func TestStopOnDisconnect(t *testing.T) {
	for v, want := range map[string]bool{"true": true, "yes": true, "1": true, "on": true, "false": false, "no": false, "": false} {
		opts := []fleet.UnitOption{{Section: "Service", Name: "ExecStart", Value: "/x"}, {Section: "X-Fleet", Name: "StopOnDisconnect", Value: v}}
		if got := StopOnDisconnect(opts); got != want {
			t.Errorf("StopOnDisconnect=%q: %v, want %v", v, got, want)
		}
	}
	if StopOnDisconnect([]fleet.UnitOption{{Section: "Service", Name: "ExecStart", Value: "/x"}}) {
		t.Error("unset counts as true")
	}
}
