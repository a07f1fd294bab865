package schedule

import (
	"fmt"
	"maps"
	"math/big"
	"math/rand"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fleetd/fleet/internal/fleet"
)

// The property tests draw small clusters from a seeded generator (math/rand
// is fine here: only tests use it) and check the result against an
// independent brute-force reading of the rules.

func unitPool() []string {
	return []string{"a@1.service", "a@2.service", "a@3.service", "b@1.service", "b@2.service", "c.service", "d.service"}
}

func patPool() []string {
	return []string{"a@*.service", "b@*", "c.service", "d.service", "*", "?@1.service", "a@[12].service"}
}

type genOpts struct {
	maxMachines, maxUnits int
	conflictsOnly         bool
	noReplaces            bool
	drain                 bool // some machines draining (rule 12)
	sized                 bool // capacities and reservations (rule 13)
	ops                   bool // metadata operators (rule 15)
	globs                 bool // MachineOf patterns (rule 16)
}

func genSnapshot(r *rand.Rand, o genOpts) Snapshot {
	var s Snapshot
	nm := r.Intn(o.maxMachines + 1)
	for i := range nm {
		id := fmt.Sprintf("m%d", i)
		if r.Intn(4) == 0 {
			id = fmt.Sprintf("%08d-long", i) // exercise 8-char short IDs
		}
		meta := map[string]string{}
		if r.Intn(3) > 0 {
			meta["region"] = []string{"east", "west"}[r.Intn(2)]
		}
		if r.Intn(2) == 0 {
			meta["disk"] = []string{"ssd", "hdd"}[r.Intn(2)]
		}
		if o.drain && r.Intn(3) == 0 { // draws only with drain: other tests' streams are unchanged
			meta[fleet.DrainMetadataKey] = "true"
		}
		var c fleet.Resources
		if o.sized {
			if r.Intn(4) > 0 {
				c.MemoryBytes = int64(1+r.Intn(8)) << 28 // 256M steps
			}
			if r.Intn(2) == 0 {
				c.CPUMilli = int64(500 * (1 + r.Intn(6)))
			}
		}
		if o.ops && r.Intn(3) > 0 {
			meta["cores"] = []string{"2", "4", "8", "16", "many", "8.5"}[r.Intn(6)]
			meta["version"] = []string{"1.2", "1.10", "1.2.10", "2", "x"}[r.Intn(5)]
		}
		s.Machines = append(s.Machines, fleet.Machine{ID: id, Metadata: meta, Capacity: c})
	}
	unitPool, patPool := unitPool(), patPool()
	names := slices.Clone(unitPool)
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	nu := 1 + r.Intn(o.maxUnits)
	for _, name := range names[:min(nu, len(names))] {
		u := Unit{Name: name, Desired: fleet.JobStateLaunched}
		if r.Intn(10) == 0 && !o.conflictsOnly {
			u.Desired = fleet.JobStateInactive
		}
		if r.Intn(10) < 4 {
			for range 1 + r.Intn(2) {
				u.Req.Conflicts = append(u.Req.Conflicts, patPool[r.Intn(len(patPool))])
			}
		}
		if !o.conflictsOnly {
			if r.Intn(8) == 0 {
				u.Req.Global = true
			}
			if r.Intn(8) == 0 && nm > 0 {
				id := s.Machines[r.Intn(nm)].ID
				switch r.Intn(3) {
				case 0:
					id = fleet.ShortMachineID(id)
				case 1:
					id = "m9"
				}
				u.Req.MachineID = id
			}
			if r.Intn(5) == 0 {
				u.Req.MachineOf = append(u.Req.MachineOf, unitPool[r.Intn(len(unitPool))])
			}
			if r.Intn(4) == 0 {
				u.Req.Metadata = map[string][]string{"region": {[]string{"east", "west"}[r.Intn(2)]}}
				if r.Intn(2) == 0 {
					u.Req.Metadata["region"] = append(u.Req.Metadata["region"], "west")
				}
				if r.Intn(3) == 0 {
					u.Req.Metadata["disk"] = []string{"ssd"}
				}
			}
			if r.Intn(6) == 0 && !o.noReplaces {
				u.Req.Replaces = append(u.Req.Replaces, patPool[r.Intn(len(patPool))])
			}
		}
		if o.sized && r.Intn(4) > 0 {
			u.Req.Resources.MemoryBytes = int64(r.Intn(5)) << 27 // 128M steps
			if r.Intn(2) == 0 {
				u.Req.Resources.CPUMilli = int64(250 * r.Intn(8))
			}
		}
		if o.ops && r.Intn(3) == 0 {
			key := []string{"cores", "version", "disk"}[r.Intn(3)]
			op := []string{"!=", ">=", "<=", ">", "<"}[r.Intn(5)]
			val := []string{"4", "8", "1.2", "1.10", "1.2.0", "ssd"}[r.Intn(6)]
			if key == "disk" {
				op, val = "!=", []string{"ssd", "hdd"}[r.Intn(2)]
			}
			if val == "ssd" && op != "!=" {
				val = "8"
			}
			u.Req.MetadataOps = append(u.Req.MetadataOps, fleet.MetadataCond{Key: key, Op: op, Value: val})
		}
		if o.globs && r.Intn(4) == 0 {
			u.Req.MachineOf = append(u.Req.MachineOf, []string{"a@*.service", "b@?.service", "[cd].service", "*"}[r.Intn(4)])
		}
		s.Units = append(s.Units, u)
	}
	s.Current = map[string][]string{}
	for _, u := range s.Units {
		if r.Intn(2) == 0 {
			continue
		}
		for range 1 + r.Intn(2) {
			id := "dead"
			if nm > 0 && r.Intn(4) > 0 {
				id = s.Machines[r.Intn(nm)].ID
			}
			s.Current[u.Name] = append(s.Current[u.Name], id)
		}
	}
	return s
}

func match(pat, name string) bool {
	ok, err := path.Match(pat, name)
	return ok && err == nil
}

func anyMatch(pats []string, name string) bool {
	for _, p := range pats {
		if match(p, name) {
			return true
		}
	}
	return false
}

// oracle is a brute-force reading of the rules over a snapshot and result.
type oracle struct {
	s     Snapshot
	units map[string]Unit // active units
	meta  map[string]map[string]string
	caps  map[string]fleet.Resources
	on    map[string][]string // machine -> units on it
}

func newOracle(s Snapshot, res Result) *oracle {
	o := &oracle{s: s, units: map[string]Unit{}, meta: map[string]map[string]string{}, caps: map[string]fleet.Resources{}, on: map[string][]string{}}
	for _, u := range s.Units {
		if u.Desired != fleet.JobStateInactive {
			o.units[u.Name] = u
		}
	}
	for _, m := range s.Machines {
		o.meta[m.ID] = m.Metadata
		o.caps[m.ID] = m.Capacity
	}
	for u, ms := range res.Assign {
		for _, m := range ms {
			o.on[m] = append(o.on[m], u)
		}
	}
	return o
}

func (o *oracle) metaOK(u Unit, m string) bool {
	for k, vs := range u.Req.Metadata {
		if len(vs) > 0 && !slices.Contains(vs, o.meta[m][k]) {
			return false
		}
		if _, ok := o.meta[m][k]; len(vs) > 0 && !ok {
			return false
		}
	}
	for _, c := range u.Req.MetadataOps {
		if !oracleCond(c, o.meta[m]) {
			return false
		}
	}
	return true
}

// oracleCond is rule 15 read with math/big: numbers as rationals,
// versions as lists of integers.
func oracleCond(c fleet.MetadataCond, meta map[string]string) bool {
	v, ok := meta[c.Key]
	if c.Op == "!=" {
		return !ok || v != c.Value
	}
	if !ok {
		return false
	}
	num := regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
	ver := regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)
	var cmp int
	switch {
	case num.MatchString(v) && num.MatchString(c.Value):
		a, _ := new(big.Rat).SetString(v)
		b, _ := new(big.Rat).SetString(c.Value)
		cmp = a.Cmp(b)
	case ver.MatchString(v) && ver.MatchString(c.Value):
		as, bs := strings.Split(v, "."), strings.Split(c.Value, ".")
		for len(as) < len(bs) {
			as = append(as, "0")
		}
		for len(bs) < len(as) {
			bs = append(bs, "0")
		}
		for i := range as {
			a, _ := new(big.Int).SetString(as[i], 10)
			b, _ := new(big.Int).SetString(bs[i], 10)
			if cmp = a.Cmp(b); cmp != 0 {
				break
			}
		}
	default:
		return false
	}
	switch c.Op {
	case "<":
		return cmp < 0
	case ">":
		return cmp > 0
	case "<=":
		return cmp <= 0
	case ">=":
		return cmp >= 0
	}
	return false
}

// cyclic reports whether u reaches itself in the MachineOf graph: edges
// from a non-global unit to the active non-global units its names or
// patterns (other than itself) match.
func (o *oracle) cyclic(u string) bool {
	next := func(v string) []string {
		var out []string
		x := o.units[v]
		if x.Req.Global {
			return nil
		}
		for _, p := range x.Req.MachineOf {
			for w, wu := range o.units {
				if wu.Req.Global {
					continue
				}
				if strings.ContainsAny(p, "*?[") && w != v && match(p, w) || p == w {
					out = append(out, w)
				}
			}
		}
		return out
	}
	seen := map[string]bool{}
	stack := next(u)
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if v == u {
			return true
		}
		if !seen[v] {
			seen[v] = true
			stack = append(stack, next(v)...)
		}
	}
	return false
}

// sum adds the reservations of the named units.
func (o *oracle) sum(names []string) (cpu, mem int64) {
	for _, n := range names {
		r := o.units[n].Req.Resources
		cpu, mem = cpu+max(r.CPUMilli, 0), mem+max(r.MemoryBytes, 0)
	}
	return cpu, mem
}

// room: rule 13, would u fit on m beside the units others?
func (o *oracle) room(u Unit, m string, others []string) bool {
	c := o.caps[m]
	cpu, mem := o.sum(others)
	r := u.Req.Resources
	return (c.CPUMilli <= 0 || r.CPUMilli <= 0 || cpu+r.CPUMilli <= c.CPUMilli) &&
		(c.MemoryBytes <= 0 || r.MemoryBytes <= 0 || mem+r.MemoryBytes <= c.MemoryBytes)
}

// overcommitted reports whether the units on m exceed its capacity.
func (o *oracle) overcommitted(m string) bool {
	c := o.caps[m]
	cpu, mem := o.sum(o.on[m])
	return c.CPUMilli > 0 && cpu > c.CPUMilli || c.MemoryBytes > 0 && mem > c.MemoryBytes
}

// clash reports whether a and b cannot share a machine: Conflicts either
// way, or a non-global unit's Replaces matching the other.
func (o *oracle) clash(a, b Unit) bool {
	if a.Name == b.Name {
		return false
	}
	if anyMatch(a.Req.Conflicts, b.Name) || anyMatch(b.Req.Conflicts, a.Name) {
		return true
	}
	if !a.Req.Global && anyMatch(a.Req.Replaces, b.Name) || !b.Req.Global && anyMatch(b.Req.Replaces, a.Name) {
		return true
	}
	return false
}

func (o *oracle) draining(m string) bool { return o.meta[m][fleet.DrainMetadataKey] == "true" }

// feasible: can non-global u be on m given everything else on m?
func (o *oracle) feasible(u Unit, m string) (bool, string) {
	if o.draining(m) {
		return false, "draining"
	}
	if id := u.Req.MachineID; id != "" && id != m && !(len(id) == 8 && strings.HasPrefix(m, id)) {
		return false, "MachineID"
	}
	for _, p := range u.Req.MachineOf {
		if strings.ContainsAny(p, "*?[") { // rule 16
			found := false
			for _, w := range o.on[m] {
				found = found || w != u.Name && match(p, w)
			}
			if !found {
				return false, "MachineOf " + p
			}
			continue
		}
		if !slices.Contains(o.on[m], p) || p == u.Name {
			return false, "MachineOf " + p
		}
	}
	if !o.metaOK(u, m) {
		return false, "metadata"
	}
	for _, w := range o.on[m] {
		if o.clash(u, o.units[w]) {
			return false, "clash with " + w
		}
	}
	if !o.room(u, m, o.on[m]) {
		return false, "no room"
	}
	return true, ""
}

func (o *oracle) check(t *testing.T, res Result) {
	t.Helper()
	live := map[string]bool{}
	for _, m := range o.s.Machines {
		live[m.ID] = true
	}
	for name, ms := range res.Assign {
		u, ok := o.units[name]
		if !ok {
			t.Fatalf("rule 1: %s placed but inactive or unknown", name)
		}
		if !slices.IsSorted(ms) || len(ms) == 0 {
			t.Fatalf("%s: machines %v not sorted or empty", name, ms)
		}
		if !u.Req.Global && len(ms) != 1 {
			t.Fatalf("%s: non-global unit on %v", name, ms)
		}
		for _, m := range ms {
			if !live[m] {
				t.Fatalf("%s placed on dead machine %s", name, m)
			}
			if o.draining(m) {
				t.Fatalf("rule 12: %s placed on draining machine %s", name, m)
			}
			if u.Req.Global {
				if !o.metaOK(u, m) {
					t.Fatalf("rule 4: global %s on %s without matching metadata", name, m)
				}
				continue
			}
			// Check u against the others on m (take u out first).
			o.on[m] = slices.DeleteFunc(slices.Clone(o.on[m]), func(x string) bool { return x == name })
			ok, why := o.feasible(u, m)
			o.on[m] = append(o.on[m], name)
			if !ok {
				t.Fatalf("rule 5: %s on %s violates %s", name, m, why)
			}
		}
	}
	for _, m := range o.s.Machines {
		if o.overcommitted(m.ID) {
			t.Fatalf("rule 13: %s overcommitted: %v", m.ID, o.on[m.ID])
		}
		for _, a := range o.on[m.ID] {
			for _, b := range o.on[m.ID] {
				if ua, ub := o.units[a], o.units[b]; ua.Req.Global && ub.Req.Global && o.clash(ua, ub) {
					t.Fatalf("rule 4: globals %s and %s clash on %s", a, b, m.ID)
				}
			}
		}
	}
	for name, u := range o.units {
		_, placed := res.Assign[name]
		r, hasReason := res.Reasons[name]
		if placed == hasReason {
			t.Fatalf("rule 10: %s placed=%v reason=%v", name, placed, hasReason)
		}
		if hasReason {
			if r.Unit != name || r.Summary == "" || strings.Contains(r.Summary, "internal") {
				t.Fatalf("rule 10: bad reason %#v", r)
			}
			if len(o.s.Machines) > 0 && len(r.PerMachine) != len(live) {
				t.Fatalf("rule 10: %s PerMachine %v", name, r.PerMachine)
			}
			for m, why := range r.PerMachine {
				if !live[m] || why == "" || strings.Contains(why, "internal") {
					t.Fatalf("rule 10: %s PerMachine[%s] = %q", name, m, why)
				}
				if (why == ReasonDraining) != o.draining(m) {
					t.Fatalf("rule 12: %s PerMachine[%s] = %q", name, m, why)
				}
			}
		}
		if u.Req.Global {
			// Rule 4: on every machine whose metadata matches unless a
			// global unit there clashes with it.
			for _, m := range o.s.Machines {
				if o.draining(m.ID) || !o.metaOK(u, m.ID) || slices.Contains(res.Assign[name], m.ID) {
					continue
				}
				blocked := false
				var globals []string
				for _, w := range o.on[m.ID] {
					blocked = blocked || o.units[w].Req.Global && o.clash(u, o.units[w])
					if o.units[w].Req.Global {
						globals = append(globals, w)
					}
				}
				blocked = blocked || !o.room(u, m.ID, globals) // rule 13
				if !blocked {
					t.Fatalf("rule 4: global %s missing from %s", name, m.ID)
				}
			}
			continue
		}
		if o.cyclic(name) { // rules 5b and 16: never placed
			if placed {
				t.Fatalf("rule 16: %s is in a MachineOf cycle but placed", name)
			}
			continue
		}
		if placed {
			continue
		}
		// Rule 9: maximality.
		for _, m := range o.s.Machines {
			if ok, _ := o.feasible(u, m.ID); ok {
				t.Fatalf("rule 9: unplaced %s fits on %s (reason %q)", name, m.ID, r.Summary)
			}
		}
	}
}

func shuffled(r *rand.Rand, s Snapshot) Snapshot {
	c := Snapshot{Machines: slices.Clone(s.Machines), Units: slices.Clone(s.Units), Current: map[string][]string{}}
	r.Shuffle(len(c.Machines), func(i, j int) { c.Machines[i], c.Machines[j] = c.Machines[j], c.Machines[i] })
	r.Shuffle(len(c.Units), func(i, j int) { c.Units[i], c.Units[j] = c.Units[j], c.Units[i] })
	for k, v := range s.Current {
		v = slices.Clone(v)
		r.Shuffle(len(v), func(i, j int) { v[i], v[j] = v[j], v[i] })
		c.Current[k] = v
	}
	return c
}

func dump(s Snapshot) string {
	var b strings.Builder
	for _, m := range s.Machines {
		fmt.Fprintf(&b, "machine %s %v\n", m.ID, m.Metadata)
	}
	for _, u := range s.Units {
		fmt.Fprintf(&b, "unit %s %s %+v\n", u.Name, u.Desired, u.Req)
	}
	fmt.Fprintf(&b, "current %v\n", s.Current)
	return b.String()
}

func TestPropertiesRandomClusters(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := range 4000 {
		s := genSnapshot(r, genOpts{maxMachines: 4, maxUnits: 6})
		res := Schedule(s)
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			defer func() {
				if t.Failed() {
					t.Logf("snapshot:\n%s\nresult: %v\nreasons: %v", dump(s), res.Assign, res.Reasons)
				}
			}()
			newOracle(s, res).check(t, res)
			// Order independence.
			if res2 := Schedule(shuffled(r, s)); !reflect.DeepEqual(res, res2) {
				t.Fatalf("order dependence:\n%v\n%v", res, res2)
			}
			// Fixpoint: rescheduling the result changes nothing.
			s2 := s
			s2.Current = res.Assign
			if res2 := Schedule(s2); !reflect.DeepEqual(res, res2) {
				t.Fatalf("not a fixpoint:\n%v\n%v", res.Assign, res2.Assign)
			}
		})
		if t.Failed() {
			return
		}
	}
}

// Rule 12: with draining machines the rules hold (the oracle knows filter
// (f)), and the placements are exactly those of the snapshot without the
// draining machines (what the engine computed when it filtered them out);
// the same units are unplaced, with the same PerMachine entries for the
// other machines and "machine is draining" for the draining ones. Then
// undraining (without Replaces) moves nothing.
func TestPropertyDrain(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	for i := range 3000 {
		s := genSnapshot(r, genOpts{maxMachines: 4, maxUnits: 6, drain: true, noReplaces: i%2 == 0})
		res := Schedule(s)
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			defer func() {
				if t.Failed() {
					t.Logf("snapshot:\n%s\nresult: %v\nreasons: %v", dump(s), res.Assign, res.Reasons)
				}
			}()
			newOracle(s, res).check(t, res)
			if res2 := Schedule(shuffled(r, s)); !reflect.DeepEqual(res, res2) {
				t.Fatalf("order dependence:\n%v\n%v", res, res2)
			}
			fix := s
			fix.Current = res.Assign
			if res2 := Schedule(fix); !reflect.DeepEqual(res, res2) {
				t.Fatalf("not a fixpoint:\n%v\n%v", res.Assign, res2.Assign)
			}

			gone := s
			gone.Machines = slices.DeleteFunc(slices.Clone(s.Machines), fleet.Machine.Draining)
			without := Schedule(gone)
			if !reflect.DeepEqual(res.Assign, without.Assign) {
				t.Fatalf("drain is not leave:\ndraining %v\nwithout  %v", res.Assign, without.Assign)
			}
			for name, r := range res.Reasons {
				w, ok := without.Reasons[name]
				if !ok {
					t.Fatalf("%s unplaced only with the drain", name)
				}
				if len(gone.Machines) == 0 {
					continue // "no machines in the cluster": no PerMachine to compare
				}
				for _, m := range s.Machines {
					want := w.PerMachine[m.ID]
					if m.Draining() {
						want = ReasonDraining
					}
					if r.PerMachine[m.ID] != want {
						t.Fatalf("%s PerMachine[%s] = %q, want %q", name, m.ID, r.PerMachine[m.ID], want)
					}
				}
			}
			if len(without.Reasons) != len(res.Reasons) {
				t.Fatalf("unplaced: %d with the drain, %d without", len(res.Reasons), len(without.Reasons))
			}

			if i%2 != 0 {
				return
			}
			undrained := fix
			undrained.Machines = nil
			for _, m := range s.Machines {
				m.Metadata = maps.Clone(m.Metadata)
				delete(m.Metadata, fleet.DrainMetadataKey)
				undrained.Machines = append(undrained.Machines, m)
			}
			res3 := Schedule(undrained)
			for u, ms := range res.Assign {
				for _, m := range ms {
					if !slices.Contains(res3.Assign[u], m) {
						t.Fatalf("%s moved off %s on undrain: %v", u, m, res3.Assign)
					}
				}
			}
			newOracle(undrained, res3).check(t, res3)
		})
		if t.Failed() {
			return
		}
	}
}

// Rule 3: a machine joining moves nothing (without Replaces, which may
// now let a unit displace another).
func TestPropertyJoinMovesNothing(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for range 2000 {
		s := genSnapshot(r, genOpts{maxMachines: 3, maxUnits: 6, noReplaces: true})
		res := Schedule(s)
		s.Current = res.Assign
		s.Machines = append(slices.Clone(s.Machines), fleet.Machine{ID: "new", Metadata: map[string]string{"region": "east"}})
		res2 := Schedule(s)
		for u, ms := range res.Assign {
			for _, m := range ms {
				if !slices.Contains(res2.Assign[u], m) {
					t.Fatalf("%s moved off %s when a machine joined\n%s", u, m, dump(s))
				}
			}
		}
		newOracle(s, res2).check(t, res2)
	}
}

// Rule 3: a machine leaving moves only its own units (without Replaces).
func TestPropertyLeaveMovesOnlyItsUnits(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for range 2000 {
		s := genSnapshot(r, genOpts{maxMachines: 4, maxUnits: 6, noReplaces: true})
		if len(s.Machines) == 0 {
			continue
		}
		res := Schedule(s)
		s.Current = res.Assign
		gone := s.Machines[r.Intn(len(s.Machines))].ID
		s.Machines = slices.DeleteFunc(slices.Clone(s.Machines), func(m fleet.Machine) bool { return m.ID == gone })
		res2 := Schedule(s)
		for u, ms := range res.Assign {
			for _, m := range ms {
				if m != gone && !slices.Contains(res2.Assign[u], m) && !followsGone(s, res.Assign, u, gone) {
					t.Fatalf("%s moved off %s when %s left\n%s", u, m, gone, dump(s))
				}
			}
		}
		newOracle(s, res2).check(t, res2)
	}
}

// followsGone: u is a follower (transitively) of a unit that was on gone.
func followsGone(s Snapshot, assign map[string][]string, u, gone string) bool {
	for _, x := range s.Units {
		if x.Name != u {
			continue
		}
		for _, p := range x.Req.MachineOf {
			if slices.Contains(assign[p], gone) || followsGone(s, assign, p, gone) {
				return true
			}
		}
	}
	return false
}

// Rule 7: unconstrained units placed from scratch are balanced.
func TestPropertyBalance(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for range 500 {
		var s Snapshot
		nm, nu := 1+r.Intn(7), r.Intn(40)
		for i := range nm {
			s.Machines = append(s.Machines, fleet.Machine{ID: fmt.Sprintf("m%d", i)})
		}
		for i := range nu {
			s.Units = append(s.Units, Unit{Name: fmt.Sprintf("u%d.service", i), Desired: fleet.JobStateLaunched})
		}
		res := Schedule(s)
		load := map[string]int{}
		for _, m := range s.Machines {
			load[m.ID] = 0
		}
		for _, ms := range res.Assign {
			load[ms[0]]++
		}
		lo, hi := nu, 0
		for _, l := range load {
			lo, hi = min(lo, l), max(hi, l)
		}
		if hi-lo > 1 || len(res.Assign) != nu {
			t.Fatalf("%d units on %d machines: loads %v", nu, nm, load)
		}
	}
}

// bestConflictsOnly is a brute-force planner: the largest number of units
// that can be placed when Conflicts is the only constraint.
func bestConflictsOnly(o *oracle, names []string, machines []string) int {
	best := 0
	on := make([][]string, len(machines))
	var rec func(i, placed int)
	rec = func(i, placed int) {
		if placed+len(names)-i <= best {
			return
		}
		if i == len(names) {
			best = placed
			return
		}
		u := o.units[names[i]]
		for m := range machines {
			ok := true
			for _, w := range on[m] {
				ok = ok && !o.clash(u, o.units[w])
			}
			if ok {
				on[m] = append(on[m], u.Name)
				rec(i+1, placed+1)
				on[m] = on[m][:len(on[m])-1]
			}
		}
		rec(i+1, placed)
	}
	rec(0, 0)
	return best
}

// TestGreedyBound compares the greedy scheduler with the brute-force
// planner when Conflicts is the only constraint. Greedy is not optimal in
// general; what holds (and is checked) is the bound
//
//	optimum <= placed + sum over placed units w of |units conflicting with w|
//
// since every unit the optimum places but greedy does not is blocked, on
// its optimal machine, by a placed unit it conflicts with (maximality).
// When conflicts form cliques (each template's instances conflict with
// each other, the common case), greedy is optimal, and that is checked too.
func TestGreedyBound(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	worse := 0
	for range 3000 {
		s := genSnapshot(r, genOpts{maxMachines: 3, maxUnits: 6, conflictsOnly: true})
		s.Current = nil
		res := Schedule(s)
		o := newOracle(s, res)
		var names, machines []string
		for _, u := range s.Units {
			names = append(names, u.Name)
		}
		for _, m := range s.Machines {
			machines = append(machines, m.ID)
		}
		opt := bestConflictsOnly(o, names, machines)
		bound := len(res.Assign)
		for w := range res.Assign {
			for _, x := range names {
				if o.clash(o.units[w], o.units[x]) {
					bound++
				}
			}
		}
		if opt > bound || len(res.Assign) > opt {
			t.Fatalf("placed %d, optimum %d, bound %d\n%s", len(res.Assign), opt, bound, dump(s))
		}
		if opt > len(res.Assign) {
			worse++
		}
	}
	t.Logf("greedy below optimum in %d of 3000 conflicts-only clusters", worse)

	// Cliques: template instances that conflict with their own template.
	for range 1000 {
		var s Snapshot
		nm := 1 + r.Intn(3)
		for i := range nm {
			s.Machines = append(s.Machines, fleet.Machine{ID: fmt.Sprintf("m%d", i)})
		}
		want := 0
		for tpl := range 1 + r.Intn(3) {
			n := r.Intn(5)
			want += min(n, nm)
			for i := range n {
				s.Units = append(s.Units, Unit{
					Name: fmt.Sprintf("t%d@%d.service", tpl, i), Desired: fleet.JobStateLaunched,
					Req: fleet.Requirements{Conflicts: []string{fmt.Sprintf("t%d@*.service", tpl)}},
				})
			}
		}
		if got := len(Schedule(s).Assign); got != want {
			t.Fatalf("cliques: placed %d, optimum %d\n%s", got, want, dump(s))
		}
	}

	// The documented worst case: one unit placed first blocks several.
	s := Snapshot{Machines: []fleet.Machine{{ID: "m1"}}}
	s.Units = append(s.Units, Unit{Name: "a.service", Desired: fleet.JobStateLaunched,
		Req: fleet.Requirements{Conflicts: []string{"b*"}}})
	for i := range 4 {
		s.Units = append(s.Units, Unit{Name: fmt.Sprintf("b%d.service", i), Desired: fleet.JobStateLaunched})
	}
	if got := len(Schedule(s).Assign); got != 1 {
		t.Fatalf("worst case: greedy placed %d, want 1 (optimum 4)", got)
	}
}

// Rules 13-16: with capacities and reservations, metadata operators and
// MachineOf patterns, under both strategies, the oracle's reading holds
// (never overcommit, maximality, filters), the result is independent of
// input order, and it is a fixpoint.
func TestPropertyPlacement(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for i := range 4000 {
		s := genSnapshot(r, genOpts{maxMachines: 4, maxUnits: 7, sized: true, ops: i%2 == 0, globs: i%3 == 0,
			drain: i%5 == 0, noReplaces: i%4 == 0})
		if i%2 == 1 {
			s.Strategy = StrategyBinpack
		}
		res := Schedule(s)
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			defer func() {
				if t.Failed() {
					t.Logf("strategy %q snapshot:\n%s\nresult: %v\nreasons: %v", s.Strategy, dump(s), res.Assign, res.Reasons)
				}
			}()
			newOracle(s, res).check(t, res)
			sh := shuffled(r, s)
			sh.Strategy = s.Strategy
			if res2 := Schedule(sh); !reflect.DeepEqual(res, res2) {
				t.Fatalf("order dependence:\n%v\n%v", res, res2)
			}
			s2 := s
			s2.Current = res.Assign
			if res2 := Schedule(s2); !reflect.DeepEqual(res, res2) {
				t.Fatalf("not a fixpoint:\n%v\n%v", res.Assign, res2.Assign)
			}
		})
		if t.Failed() {
			return
		}
	}
}

// Rule 13 at a larger scale: random sizes and capacities on many
// machines, never overcommitted, under both strategies; the unplaced
// units have no machine with room (maximality, by the oracle).
func TestPropertyNeverOvercommit(t *testing.T) {
	r := rand.New(rand.NewSource(8))
	for i := range 200 {
		var s Snapshot
		for m := range 1 + r.Intn(20) {
			var c fleet.Resources
			if r.Intn(5) > 0 {
				c.MemoryBytes = int64(1+r.Intn(16)) << 26
			}
			if r.Intn(3) > 0 {
				c.CPUMilli = int64(1 + r.Intn(4000))
			}
			s.Machines = append(s.Machines, fleet.Machine{ID: fmt.Sprintf("m%02d", m), Capacity: c})
		}
		for u := range r.Intn(150) {
			var res fleet.Resources
			if r.Intn(6) > 0 {
				res.MemoryBytes = int64(r.Intn(400)) << 20
			}
			if r.Intn(2) == 0 {
				res.CPUMilli = int64(r.Intn(1500))
			}
			s.Units = append(s.Units, Unit{Name: fmt.Sprintf("u%03d.service", u), Desired: fleet.JobStateLaunched,
				Req: fleet.Requirements{Resources: res, Global: r.Intn(40) == 0}})
		}
		if i%2 == 1 {
			s.Strategy = StrategyBinpack
		}
		res := Schedule(s)
		newOracle(s, res).check(t, res)
		s.Current = res.Assign
		if res2 := Schedule(s); !reflect.DeepEqual(res, res2) {
			t.Fatalf("not a fixpoint:\n%v\n%v", res.Assign, res2.Assign)
		}
		if t.Failed() {
			return
		}
	}
}
