package rollout

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

const (
	fromHash = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	toHash   = "3333333bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// at is the fake clock: t0 + d.
func at(d time.Duration) time.Time { return t0.Add(d) }

func baseSpec() Spec {
	return Spec{
		Unit:            "web@.service",
		FromHash:        fromHash,
		FromRevision:    2,
		ToHash:          toHash,
		ToRevision:      3,
		MaxParallel:     1,
		MinHealthyTime:  10 * time.Second,
		HealthyDeadline: time.Minute,
	}
}

func units(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("web@%d.service", i+1)
	}
	return out
}

// up is a healthy observation of a unit running hash.
func up(hash string) Observation {
	return Observation{Present: true, Hash: hash, ActiveState: "active", SubState: "running", ChecksPassing: true}
}

// crashed is a unit that ran hash and failed.
func crashed(hash, detail string) Observation {
	return Observation{Present: true, Hash: hash, ActiveState: "failed", SubState: "exit-code", Detail: detail}
}

func starting(hash string) Observation {
	return Observation{Present: true, Hash: hash, ActiveState: "activating", SubState: "start-pre"}
}

func checksFailing(hash, detail string) Observation {
	o := up(hash)
	o.ChecksPassing, o.Detail = false, detail
	return o
}

// obsOf builds observations from name, Observation pairs.
func obsOf(kv ...any) map[string]Observation {
	m := map[string]Observation{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(Observation)
	}
	return m
}

// allObs gives every name the same observation.
func allObs(o Observation, names ...string) map[string]Observation {
	m := map[string]Observation{}
	for _, n := range names {
		m[n] = o
	}
	return m
}

// statuses is "web@1=updated web@2=pending".
func statuses(r Rollout) string {
	var b []string
	for _, t := range r.Targets {
		b = append(b, strings.TrimSuffix(t.Name, ".service")+"="+string(t.Status))
	}
	return strings.Join(b, " ")
}

func fmtActions(as []Action) []string {
	var out []string
	for _, a := range as {
		out = append(out, fmt.Sprintf("%s %s %s", a.Kind, a.Target, shortHash(a.Hash)))
	}
	return out
}

func fmtEvents(es []Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Type+": "+e.Message)
	}
	return out
}

// clone deep-copies r (its Targets).
func clone(r Rollout) Rollout {
	r.Targets = slices.Clone(r.Targets)
	return r
}
