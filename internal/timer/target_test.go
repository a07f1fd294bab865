package timer

import (
	"testing"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/unitfile"
)

func parsed(t *testing.T, body string) []fleet.UnitOption {
	t.Helper()
	o, err := unitfile.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestTarget(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"backup.timer", "[Timer]\nOnCalendar=daily\n", "backup.service"},
		{"backup.timer", "[Timer]\nOnCalendar=daily\nUnit=other.service\n", "other.service"},
		{"backup.timer", "[Timer]\nUnit=a.service\nUnit=b.service\n", "b.service"},
		{"job@1.timer", "[Timer]\nOnCalendar=daily\n", "job@1.service"},
		{"x.timer", "[Service]\nUnit=no.service\n[Timer]\nOnCalendar=daily\n", "x.service"},
	} {
		if got := Target(tc.name, parsed(t, tc.body)); got != tc.want {
			t.Errorf("%s %q: %q, want %q", tc.name, tc.body, got, tc.want)
		}
	}
}
