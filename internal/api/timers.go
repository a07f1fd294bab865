package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/timer"
)

// Timer is one .timer unit in GET /timers (docs/api-extensions.md,
// "Timers"): systemctl list-timers' row.
type Timer struct {
	Unit      string `json:"unit"`
	Activates string `json:"activates"`
	// Machine runs the timer (where it is scheduled; "" if nowhere).
	Machine string `json:"machine,omitempty"`
	// Next is when it elapses next, as its machine computed it; absent
	// when no trigger is armed or its machine has not said yet.
	Next time.Time `json:"next,omitzero"`
	// Last is the slot it last fired (in the cluster, any machine).
	Last time.Time `json:"last,omitzero"`
}

// TimerList is the answer of GET /timers.
type TimerList struct {
	Timers []Timer `json:"timers"`
}

func (s *Server) registerTimers(mux *http.ServeMux, p string) {
	mux.HandleFunc("GET "+p+"/timers", s.listTimers)
	mux.HandleFunc(p+"/timers", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, msgOnlyGet)
	})
}

// listTimers answers the launched .timer units, sorted by next elapse
// (those without one last), then name, as systemctl list-timers.
func (s *Server) listTimers(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	units, err := s.store.Units(ctx)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	sched, err := s.store.Schedule(ctx)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	recs, err := s.store.Timers(ctx)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, TimerList{Timers: timerRows(units, sched, recs)})
}

// timerRows joins the launched timers with their placement and records.
func timerRows(units []fleet.Unit, sched []store.ScheduleEntry, recs []store.TimerRecord) []Timer {
	machine := map[string]string{}
	for _, e := range sched {
		if _, ok := machine[e.Unit]; !ok || e.Machine < machine[e.Unit] {
			machine[e.Unit] = e.Machine
		}
	}
	byName := make(map[string]store.TimerRecord, len(recs))
	for _, rec := range recs {
		byName[rec.Timer] = rec
	}
	out := []Timer{}
	for _, u := range units {
		if !strings.HasSuffix(u.Name, ".timer") || fleet.IsTemplate(u.Name) || u.DesiredState != fleet.JobStateLaunched {
			continue
		}
		row := Timer{Unit: u.Name, Activates: timer.Target(u.Name, u.Options), Machine: machine[u.Name]}
		if rec, ok := byName[u.Name]; ok {
			row.Last = rec.LastTrigger
			// A next computed by another machine (the timer moved) is
			// not the timer's any more.
			if rec.Machine == row.Machine && row.Machine != "" {
				row.Next = rec.Next
			}
		}
		out = append(out, row)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Next.IsZero() != b.Next.IsZero() {
			return !a.Next.IsZero()
		}
		if !a.Next.Equal(b.Next) {
			return a.Next.Before(b.Next)
		}
		return a.Unit < b.Unit
	})
	return out
}

// checkTimer validates a .timer unit submitted with PUT /units/{name}: its
// [Timer] section must parse (a bad calendar spec or option is a 400 with
// the parser's message, which points at the position), and the unit it
// activates must exist (a 400 naming it). It has answered when it returns
// false. Templates are not checked for the unit they activate (an
// instance's own name decides it).
func (s *Server) checkTimer(ctx context.Context, w http.ResponseWriter, r *http.Request, u fleet.Unit) bool {
	if !strings.HasSuffix(u.Name, ".timer") {
		return true
	}
	t, err := timer.ParseTimer(u.Name, u.Options)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return false
	}
	if fleet.IsTemplate(u.Name) {
		return true
	}
	if _, err := s.store.Unit(ctx, t.Unit); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s activates %s, which does not exist: submit %s first", u.Name, t.Unit, t.Unit))
			return false
		}
		s.storeError(w, r, err)
		return false
	}
	return true
}
