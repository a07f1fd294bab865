package schedule

import (
	"maps"
	"sort"
	"strconv"
	"strings"

	"github.com/fleetd/fleet/internal/fleet"
)

// Rejection kinds, in the order the filters run. The stage of a kind is
// how far a machine got through the filters; the summary talks about the
// machines that got furthest.
type kind int8

const (
	kMachineID      kind = iota // stage 0
	kPeerMissing                // stage 1
	kPeerElsewhere              // stage 1
	kMetadata                   // stage 2
	kReplacedBy                 // stage 3
	kConflict                   // stage 3
	kCannotDisplace             // stage 3
	kPatMissing                 // stage 1: no unit matching a MachineOf pattern is placed (rule 16)
	kPatElsewhere               // stage 1: none is placed on this machine
	kResources                  // stage 4: not enough room (rule 13)
	kDraining                   // stage 5: draining, and nothing else rejects the unit (rule 12)
	kCycle
	kNone // internal inconsistency: the machine accepts the unit
	numKinds
)

func (k kind) stage() int {
	switch k {
	case kMachineID:
		return 0
	case kPeerMissing, kPeerElsewhere, kPatMissing, kPatElsewhere:
		return 1
	case kMetadata:
		return 2
	case kResources:
		return 4
	case kDraining:
		return 5
	default:
		return 3
	}
}

const summaryItems = 5

// ReasonDraining is the PerMachine reason of every draining machine
// (rule 12), whatever else would keep the unit off it.
const ReasonDraining = "machine is draining"

func (st *state) result(maxEntries int) Result {
	res := Result{Assign: make(map[string][]string), Reasons: make(map[string]fleet.Reason)}
	budget := maxEntries
	if budget == 0 {
		budget = DefaultMaxReasonEntries
	}
	cache := make(map[string]*cachedReason)
	for i := range st.us {
		u := &st.us[i]
		switch {
		case u.global && len(u.gon) > 0:
			ids := make([]string, len(u.gon))
			for j, m := range u.gon {
				ids[j] = st.ms[m].id
			}
			res.Assign[u.name] = ids
		case !u.global && u.on >= 0:
			res.Assign[u.name] = []string{st.ms[u.on].id}
		default:
			withPer := budget >= len(st.ms) && len(st.ms) > 0
			if withPer {
				budget -= len(st.ms)
			}
			res.Reasons[u.name] = st.explain(int32(i), withPer, cache)
		}
	}
	return res
}

// classify says why machine m rejects unit u in the final placement, and
// names the unit involved (-1 if none or not looked up: naming a conflict
// needs a scan of the machine, done only when asked with name). The drain
// (rule 12) is the last filter: a draining machine is classified by the
// other filters first, and kDraining only when none of them rejects u.
func (st *state) classify(u, m int32, name bool) (kind, int32) {
	k, w := st.classifyFilters(u, m, name)
	if k == kNone && st.ms[m].draining {
		return kDraining, -1
	}
	return k, w
}

// classifyFilters is classify without the drain.
func (st *state) classifyFilters(u, m int32, name bool) (kind, int32) {
	ui := &st.us[u]
	if ui.cyclic {
		return kCycle, -1
	}
	if ui.hasID && !containsSorted(ui.idCands, m) {
		return kMachineID, -1
	}
	for _, p := range ui.peers {
		if p < 0 {
			return kPeerMissing, p
		}
		if pu := &st.us[p]; !pu.global && pu.on < 0 || pu.global && len(pu.gon) == 0 {
			return kPeerMissing, p
		}
		if !st.isOn(p, m) {
			return kPeerElsewhere, p
		}
	}
	for i, p := range ui.gpeers {
		if !st.patOn(u, p, m) {
			if len(st.patMachines(u, p)) == 0 {
				return kPatMissing, int32(i)
			}
			return kPatElsewhere, int32(i)
		}
	}
	if !ui.cls.matches(st.ms[m].meta) {
		return kMetadata, -1
	}
	if ui.global || name {
		if k, w := st.scanMachine(u, m); k != kNone {
			return k, w
		}
		if !st.fits(u, m) {
			return kResources, -1
		}
		return kNone, -1
	}
	for _, p := range ui.matchedBy {
		if st.get(m, p)[cRepl] > 0 {
			return kReplacedBy, -1
		}
	}
	if st.conflictsFast(u, m) {
		return kConflict, -1
	}
	for _, p := range ui.repl {
		if st.get(m, p)[cNames] > 0 {
			return kCannotDisplace, -1
		}
	}
	if !st.fits(u, m) {
		return kResources, -1
	}
	return kNone, -1
}

// scanMachine finds the first unit (by name) on m that keeps u off it. A
// global unit only looks at global units: they are placed before the rest.
func (st *state) scanMachine(u, m int32) (kind, int32) {
	ui := &st.us[u]
	best := [3]int32{-1, -1, -1}
	for _, w := range st.ms[m].units {
		if w == u || ui.global && !st.us[w].global {
			continue
		}
		var k int
		switch {
		case st.replacedBy(u, w):
			k = 0
		case st.conflicts(u, w):
			k = 1
		case hasCommon(ui.repl, st.us[w].matchedBy):
			k = 2
		default:
			continue
		}
		if best[k] < 0 || st.us[w].name < st.us[best[k]].name {
			best[k] = w
		}
	}
	for k, w := range best {
		if w >= 0 {
			return [...]kind{kReplacedBy, kConflict, kCannotDisplace}[k], w
		}
	}
	return kNone, -1
}

// text is the PerMachine wording of a rejection.
func (st *state) text(u, m int32, k kind, w int32) string {
	ui := &st.us[u]
	switch k {
	case kCycle:
		return "MachineOf cycle among " + strings.Join(ui.cycle, ", ")
	case kMachineID:
		return "MachineID=" + ui.req.MachineID + " does not match"
	case kPeerMissing:
		return "peer " + st.peerName(u, w) + " (MachineOf) is not scheduled"
	case kPeerElsewhere:
		if st.us[w].global {
			return "peer " + st.us[w].name + " (MachineOf) does not run here"
		}
		return "peer " + st.us[w].name + " (MachineOf) is on " + st.ms[st.us[w].on].short
	case kMetadata:
		return "metadata " + ui.cls.key + " not met: " + st.metaHas(ui.cls, m)
	case kConflict:
		return "conflicts with " + st.us[w].name
	case kReplacedBy:
		return "replaced by " + st.us[w].name + " (Replaces)"
	case kCannotDisplace:
		return "would replace " + st.us[w].name + " (Replaces), which cannot move"
	case kPatMissing:
		return "no unit matching " + ui.gpeerPats[w] + " (MachineOf) is scheduled"
	case kPatElsewhere:
		return "no unit matching " + ui.gpeerPats[w] + " (MachineOf) runs here"
	case kResources:
		return st.resText(u, m)
	case kDraining:
		return ReasonDraining
	}
	return "no constraint rejects this machine (internal error)"
}

// peerName names the first missing peer.
func (st *state) peerName(u, p int32) string {
	if p >= 0 {
		return st.us[p].name
	}
	ui := &st.us[u]
	for i, q := range ui.peers {
		if q < 0 {
			return ui.peerNames[i]
		}
	}
	return "?"
}

// metaHas describes what the machine has for the first unmet key or
// operator condition.
func (st *state) metaHas(c *class, m int32) string {
	meta := st.ms[m].meta
	for i, k := range c.keys {
		v, ok := meta[k]
		if !ok {
			return "machine has no " + k
		}
		vs := c.vals[i]
		if j := sort.SearchStrings(vs, v); j == len(vs) || vs[j] != v {
			return "machine has " + k + "=" + v
		}
	}
	for _, op := range c.ops {
		if condHolds(op, meta) {
			continue
		}
		v, ok := meta[op.Key]
		switch {
		case !ok:
			return "machine has no " + op.Key
		case op.Op != "!=":
			if _, ok := compareValues(v, op.Value); !ok {
				return "machine has " + op.Key + "=" + v + " (not comparable with " + op.Value + ")"
			}
		}
		return "machine has " + op.Key + "=" + v
	}
	return "machine matches"
}

// cachedReason is the part of a reason shared by units with one signature.
type cachedReason struct {
	body    string
	generic bool // Summary is "no machine can run NAME: " + body
	per     map[string]string
}

func (st *state) explain(u int32, withPer bool, cache map[string]*cachedReason) fleet.Reason {
	ui := &st.us[u]
	r := fleet.Reason{Unit: ui.name}
	if len(st.ms) == 0 {
		r.Summary = "no machines in the cluster"
		return r
	}
	c := cache[st.sig(u)]
	if c == nil {
		c = &cachedReason{}
		c.body, c.generic = st.summary(u)
		cache[st.sig(u)] = c
	}
	if withPer && c.per == nil {
		c.per = make(map[string]string, len(st.ms))
		for m := range st.ms {
			if st.ms[m].draining {
				c.per[st.ms[m].id] = ReasonDraining
				continue
			}
			k, w := st.classify(u, int32(m), true)
			c.per[st.ms[m].id] = st.text(u, int32(m), k, w)
		}
	}
	if withPer {
		r.PerMachine = maps.Clone(c.per)
	}
	r.Summary = c.body
	if c.generic {
		r.Summary = "no machine can run " + ui.name + ": " + c.body
	}
	return r
}

// summary returns the reason's summary; generic means it is the body of
// "no machine can run NAME: ...".
func (st *state) summary(u int32) (string, bool) {
	ui := &st.us[u]
	switch {
	case ui.cyclic:
		return "MachineOf cycle among " + strings.Join(ui.cycle, ", "), false
	case ui.hasID && len(ui.idCands) == 0:
		return "MachineID=" + ui.req.MachineID + " matches no live machine", false
	}
	for i, p := range ui.peers {
		if p < 0 || !st.us[p].global && st.us[p].on < 0 || st.us[p].global && len(st.us[p].gon) == 0 {
			return "peer " + ui.peerNames[i] + " (MachineOf) is not scheduled", false
		}
	}
	for i, p := range ui.gpeers {
		if len(st.patMachines(u, p)) == 0 {
			return "no unit matching " + ui.gpeerPats[i] + " (MachineOf) is scheduled", false
		}
	}
	if len(ui.peers)+len(ui.gpeers) > 1 && len(st.peerCands(u)) == 0 {
		return "peers " + strings.Join(st.machineOfNames(u), ", ") + " (MachineOf) share no machine", false
	}
	if ui.cls != nil && st.heapFor(ui.cls) != nil && ui.cls.n == 0 && !st.drainedMatch(ui.cls) {
		return "no machine has metadata " + ui.cls.key + " (MachineMetadata)", false
	}
	// Group the machines that got furthest through the filters by kind.
	var groups [numKinds][]int32
	stage := -1
	for m := range st.ms {
		k, _ := st.classify(u, int32(m), false)
		switch s := k.stage(); {
		case s > stage:
			stage = s
			groups = [numKinds][]int32{}
			fallthrough
		case s == stage:
			groups[k] = append(groups[k], int32(m))
		}
	}
	var parts []string
	for k, ms := range groups {
		if len(ms) == 0 {
			continue
		}
		if kind(k) == kResources {
			parts = append(parts, st.resPhrase(u, ms))
			continue
		}
		var items []string
		for _, m := range ms[:min(len(ms), summaryItems)] {
			kk, w := kind(k), int32(-1)
			if kk >= kReplacedBy && kk <= kCannotDisplace {
				kk, w = st.classify(u, m, true)
			}
			items = append(items, st.item(u, m, kk, w))
		}
		s := strings.Join(items, ", ")
		if n := len(ms) - summaryItems; n > 0 {
			s += " and " + strconv.Itoa(n) + " more"
		}
		parts = append(parts, st.groupPhrase(u, kind(k), s, len(ms)))
	}
	return strings.Join(parts, "; "), true
}

// drainedMatch reports whether a draining machine matches c: then the
// summary names the drain, not missing metadata.
func (st *state) drainedMatch(c *class) bool {
	for _, m := range st.drained {
		if c.matches(st.ms[m].meta) {
			return true
		}
	}
	return false
}

// item is one machine in a summary group.
func (st *state) item(u, m int32, k kind, w int32) string {
	short := st.ms[m].short
	switch k {
	case kConflict, kReplacedBy, kCannotDisplace:
		if w >= 0 {
			return st.us[w].name + " on " + short
		}
	case kPeerElsewhere:
		if w >= 0 && !st.us[w].global {
			return short + " (peer " + st.us[w].name + " is on " + st.ms[st.us[w].on].short + ")"
		}
	}
	return short
}

// groupPhrase words a summary group of n machines.
func (st *state) groupPhrase(u int32, k kind, items string, n int) string {
	ui := &st.us[u]
	switch k {
	case kDraining:
		if n == 1 {
			return items + " is draining"
		}
		return items + " are draining"
	case kMachineID:
		return "MachineID=" + ui.req.MachineID + " excludes " + items
	case kPeerElsewhere, kPeerMissing, kPatElsewhere, kPatMissing:
		return "MachineOf " + strings.Join(st.machineOfNames(u), ", ") + " excludes " + items
	case kMetadata:
		return "metadata " + ui.cls.key + " not met on " + items
	case kConflict:
		return "conflicts with " + items
	case kReplacedBy:
		return "replaced by " + items + " (Replaces)"
	case kCannotDisplace:
		return "cannot displace " + items + " (Replaces)"
	case kCycle:
		return "MachineOf cycle among " + strings.Join(ui.cycle, ", ")
	}
	return "no constraint rejects " + items + " (internal error)"
}

// machineOfNames lists u's MachineOf names and patterns, sorted.
func (st *state) machineOfNames(u int32) []string {
	ui := &st.us[u]
	if len(ui.gpeerPats) == 0 {
		return ui.peerNames
	}
	out := append(append([]string(nil), ui.peerNames...), ui.gpeerPats...)
	sort.Strings(out)
	return out
}
