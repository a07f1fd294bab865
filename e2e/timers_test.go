package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/testcluster"
)

// Timers on three machines: a bad OnCalendar= and a missing Unit= are
// refused (400, nothing stored); a 2-second calendar timer fires its
// oneshot service on time, shows in list-timers, and keeps firing after
// kill -9 of its machine (timer and service move), never twice within a
// second.
func TestTimers(t *testing.T) {
	const ttl = 3 * time.Second
	c := testcluster.New(t, fleetdBin, 3, testcluster.Options{
		// Machine 0 runs etcd: the timer goes to a work machine, so that
		// its machine can be killed.
		Metadata: []string{"role=etcd", "role=work", "role=work"},
		AgentTTL: ttl,
	})
	dir := t.TempDir()

	t.Run("refused", func(t *testing.T) {
		c := c.T(t)
		put := func(name string, opts ...[3]string) (int, string) {
			var o []map[string]string
			for _, x := range opts {
				o = append(o, map[string]string{"section": x[0], "name": x[1], "value": x[2]})
			}
			body, _ := json.Marshal(map[string]any{"desiredState": "launched", "options": o})
			req, _ := http.NewRequest("PUT", c.Machines[0].APIURL+"/fleet/v1/units/"+name, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+c.Admin)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			return resp.StatusCode, b.String()
		}
		code, body := put("badcal.timer", [3]string{"Timer", "OnCalendar", "*:*:0/x"})
		t.Logf("bad OnCalendar=: %d %s", code, body)
		if code != 400 || !strings.Contains(body, "invalid calendar spec") || !strings.Contains(body, "at offset") {
			t.Errorf("bad OnCalendar=: %d %s", code, body)
		}
		code, body = put("nounit.timer", [3]string{"Timer", "OnCalendar", "daily"}, [3]string{"Timer", "Unit", "nothere.service"})
		t.Logf("missing Unit=: %d %s", code, body)
		if code != 400 || !strings.Contains(body, "nothere.service") {
			t.Errorf("missing Unit=: %d %s", code, body)
		}
		// Through fleetctl: the message reaches the user.
		p := writeUnit(t, dir, "orphan.timer", "[Timer]\nOnCalendar=hourly\n")
		_, errOut, code := c.Fleetctl("start", "--no-block", p)
		if code == 0 || !strings.Contains(errOut, "orphan.service") {
			t.Errorf("fleetctl start orphan.timer: exit %d, stderr %q", code, errOut)
		}
		out := c.MustFleetctl("list-unit-files", "--no-legend")
		for _, name := range []string{"badcal.timer", "nounit.timer", "orphan.timer"} {
			if strings.Contains(out, name) {
				t.Errorf("refused %s was stored:\n%s", name, out)
			}
		}
	})

	t.Run("fires on time across a kill", func(t *testing.T) {
		c := c.T(t)
		out := filepath.Join(dir, "ticks")
		svc := writeUnit(t, dir, "tick.service", "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'date +%%s.%%N >> "+out+"'\n")
		tm := writeUnit(t, dir, "tick.timer", "[Unit]\nDescription=Every two seconds\n[Timer]\nOnCalendar=*:*:0/2\nAccuracySec=1ms\n[X-Fleet]\nMachineMetadata=role=work\n")
		c.MustFleetctl("submit", svc)
		c.MustFleetctl("start", tm)

		ticks := func() []float64 {
			b, _ := os.ReadFile(out)
			var ts []float64
			for _, f := range strings.Fields(string(b)) {
				if v, err := strconv.ParseFloat(f, 64); err == nil {
					ts = append(ts, v)
				}
			}
			return ts
		}
		where := func(unit string) string {
			var rows []struct{ Unit, Machine, Active string }
			js := c.MustFleetctl("list-units", "--full", "--fields", "unit,machine,active", "-o", "json")
			if err := json.Unmarshal([]byte(js), &rows); err != nil {
				t.Fatalf("list-units -o json: %v\n%s", err, js)
			}
			for _, r := range rows {
				if r.Unit == unit {
					return r.Machine
				}
			}
			return ""
		}
		c.Await("tick.timer fired three times", 30*time.Second, func() (bool, string) {
			n := len(ticks())
			return n >= 3, fmt.Sprintf("%d ticks", n)
		})
		machine := where("tick.timer")
		idx := c.MachineIndex(machine)
		if idx <= 0 || where("tick.service") != machine {
			t.Fatalf("tick.timer on %q (index %d), tick.service on %q", machine, idx, where("tick.service"))
		}

		// list-timers shows it, with its next elapse and service.
		lt := c.MustFleetctl("list-timers")
		t.Logf("list-timers:\n%s", lt)
		lines := strings.Split(lt, "\n")
		if strings.Join(strings.Fields(lines[0]), " ") != "NEXT LEFT LAST PASSED UNIT ACTIVATES" ||
			!slices.ContainsFunc(lines, func(l string) bool {
				f := strings.Fields(l)
				return len(f) > 2 && f[len(f)-2] == "tick.timer" && f[len(f)-1] == "tick.service" && strings.Contains(l, "left") && strings.Contains(l, "ago")
			}) {
			t.Errorf("list-timers lacks tick.timer's row:\n%s", lt)
		}
		var lj client.TimerList
		if err := json.Unmarshal([]byte(c.MustFleetctl("list-timers", "-o", "json")), &lj); err != nil || len(lj.Timers) != 1 {
			t.Fatalf("list-timers -o json: %+v %v", lj, err)
		}
		if tr := lj.Timers[0]; tr.Machine != machine || tr.Next.IsZero() || tr.Next.Unix()%2 != 0 || tr.Activates != "tick.service" {
			t.Errorf("list-timers -o json: %+v", tr)
		}
		st := c.MustFleetctl("status", "tick.timer")
		if !strings.Contains(st, "active (waiting)") || !strings.Contains(st, "Trigger: ") || !strings.Contains(st, "Triggers: ● tick.service") {
			t.Errorf("status tick.timer:\n%s", st)
		}

		before := len(ticks())
		killed := time.Now()
		c.Kill(idx)
		t.Logf("killed machine %d (%s) with %d ticks", idx, machine, before)
		c.Await("tick.timer moved and fired again", 60*time.Second, func() (bool, string) {
			m := where("tick.timer")
			ts := ticks()
			return m != "" && m != machine && len(ts) >= before+3, fmt.Sprintf("timer on %q, %d ticks", m, len(ts))
		})
		moved := where("tick.timer")
		if where("tick.service") != moved {
			t.Errorf("tick.service on %q, tick.timer on %q", where("tick.service"), moved)
		}

		ts := ticks()
		var late []time.Duration
		worst := time.Duration(0)
		var firstAfter float64
		for i, x := range ts {
			slot := math.Floor(x/2) * 2
			l := time.Duration((x - slot) * float64(time.Second))
			late = append(late, l.Round(time.Millisecond))
			worst = max(worst, l)
			if l >= time.Second {
				t.Errorf("tick %d at %.3f is %v after its slot %.0f", i, x, l, slot)
			}
			if i > 0 && x-ts[i-1] < 1 {
				t.Errorf("ticks %d and %d within one second: %.3f, %.3f", i-1, i, ts[i-1], x)
			}
			if firstAfter == 0 && x > float64(killed.UnixNano())/1e9 {
				firstAfter = x
			}
		}
		gap := time.Duration((firstAfter - float64(killed.UnixNano())/1e9) * float64(time.Second))
		t.Logf("%d ticks; lateness after each slot: %v; worst %v; first tick %v after the kill, on %s (index %d)",
			len(ts), late, worst.Round(time.Millisecond), gap.Round(time.Millisecond), moved, c.MachineIndex(moved))
	})
}
