package schedule

import (
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/fleetd/fleet/internal/fleet"
)

// mach is a live machine with the placements of the result being built.
type mach struct {
	id, short string
	meta      map[string]string
	draining  bool // rule 12: takes no unit; in no heap
	load      int32
	cap       fleet.Resources // advertised capacity (0: unknown, no limit); rule 13
	used      fleet.Resources // reservations of the units placed here
	gused     fleet.Resources // the part of used that global units reserve
	units     []int32         // units placed here (indices into state.us)
	memb      []membership    // heaps this machine belongs to
	bins      []*class        // binpack orders this machine belongs to (rule 14)
}

// class is a distinct, normalized MachineMetadata requirement. Machines
// matching it are kept in a least-loaded heap, built on first use.
type class struct {
	key  string
	keys []string
	vals [][]string           // sorted per key
	ops  []fleet.MetadataCond // other operators, sorted (rule 15)
	h    *mheap
	n    int     // matching machines that are not draining; valid once h is built
	bp   []int32 // binpack: matching machines not draining, by binpackLess
	bpOK bool    // bp is built
}

func (c *class) matches(meta map[string]string) bool {
	if c == nil {
		return true
	}
	for i, k := range c.keys {
		v, ok := meta[k]
		if !ok {
			return false
		}
		if j := sort.SearchStrings(c.vals[i], v); j == len(c.vals[i]) || c.vals[i][j] != v {
			return false
		}
	}
	for _, op := range c.ops {
		if !condHolds(op, meta) {
			return false
		}
	}
	return true
}

// unitInfo is a non-inactive unit with its indexed requirements.
type unitInfo struct {
	name      string
	req       fleet.Requirements
	global    bool
	conf      []int32 // Conflicts pattern ids (sorted)
	repl      []int32 // Replaces pattern ids (sorted; nil for global units)
	matchedBy []int32 // ids of Conflicts/Replaces patterns matching name (sorted)
	peers     []int32 // MachineOf peers; -1 when the peer is absent or inactive
	peerNames []string
	gpeers    []int32         // MachineOf glob patterns (pattern ids; rule 16)
	gpeerPats []string        // their text, same order (sorted)
	res       fleet.Resources // reservation (rule 13), never negative
	cls       *class          // nil: no metadata requirement
	hasID     bool
	idCands   []int32 // machines matching MachineID (sorted)
	cyclic    bool
	cycle     []string // members of the MachineOf cycle, sorted
	depth     int32
	rank      int32 // position in the processing order
	on        int32 // non-global: machine or -1
	gon       []int32
	rcomp     int32   // component in the precedence graph (see mayDisplace)
	current   []int32 // live machines it is scheduled on now (sorted)
	sig       string  // see state.sig; computed on demand
}

type state struct {
	ms       []mach
	drained  []int32 // draining machines (rule 12), sorted
	idIdx    map[string]int32
	shortIdx map[string][]int32
	us       []unitInfo
	nameIdx  map[string]int32
	pats     []string
	patIdx   map[string]int32    // pattern -> id
	patUnits [][]int32           // pattern -> units whose name it matches
	cnt      map[uint64][3]int32 // (machine, pattern) -> {names matching, Conflicts holders, Replaces holders}
	classes  map[string]*class
	all      *class // class of every machine (no requirement)
	order    []int32
	globals  []int32
	aux      []int32
	sticky   bool
	anyDisp  bool
	failed   map[string]struct{} // signatures that found no machine (see tryPlace)
	binpack  bool                // Snapshot.Strategy (rule 14)
}

const (
	cNames = iota
	cConf
	cRepl
)

func newState(s Snapshot) *state {
	st := &state{
		idIdx:    make(map[string]int32),
		shortIdx: make(map[string][]int32),
		nameIdx:  make(map[string]int32),
		cnt:      make(map[uint64][3]int32),
		classes:  make(map[string]*class),
		all:      &class{},
		failed:   make(map[string]struct{}),
		binpack:  s.Strategy == StrategyBinpack,
	}
	st.initMachines(s.Machines)
	st.initUnits(s.Units)
	st.initPatterns()
	st.initRequirements()
	st.initOrder()
	st.initCurrent(s.Current)
	return st
}

func (st *state) initMachines(in []fleet.Machine) {
	ms := make([]fleet.Machine, 0, len(in))
	for _, m := range in {
		if m.ID != "" {
			ms = append(ms, m)
		}
	}
	sort.Slice(ms, func(i, j int) bool {
		if ms[i].ID != ms[j].ID {
			return ms[i].ID < ms[j].ID
		}
		if a, b := ms[i].MetadataString(), ms[j].MetadataString(); a != b {
			return a < b
		}
		return resLess(ms[i].Capacity, ms[j].Capacity)
	})
	for _, m := range ms {
		if _, dup := st.idIdx[m.ID]; dup {
			continue
		}
		i := int32(len(st.ms))
		draining := m.Draining()
		st.ms = append(st.ms, mach{id: m.ID, short: fleet.ShortMachineID(m.ID), meta: m.Metadata, draining: draining,
			cap: nonNegative(m.Capacity)})
		st.idIdx[m.ID] = i
		if draining {
			st.drained = append(st.drained, i)
		}
		if len(m.ID) > 8 {
			st.shortIdx[m.ID[:8]] = append(st.shortIdx[m.ID[:8]], i)
		}
	}
}

func (st *state) initUnits(in []Unit) {
	idx := make([]int32, 0, len(in))
	for i := range in {
		if in[i].Name != "" && !fleet.IsTemplate(in[i].Name) {
			idx = append(idx, int32(i))
		}
	}
	sort.Slice(idx, func(a, b int) bool { return in[idx[a]].Name < in[idx[b]].Name })
	st.us = make([]unitInfo, 0, len(idx))
	st.nameIdx = make(map[string]int32, len(idx))
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && in[idx[j]].Name == in[idx[i]].Name {
			j++
		}
		pick := &in[idx[i]]
		if j-i > 1 { // duplicate names: keep the canonically smallest
			best := canonical(*pick)
			for _, k := range idx[i+1 : j] {
				if c := canonical(in[k]); c < best {
					best, pick = c, &in[k]
				}
			}
		}
		i = j
		if pick.Desired == fleet.JobStateInactive {
			continue
		}
		st.nameIdx[pick.Name] = int32(len(st.us))
		st.us = append(st.us, unitInfo{name: pick.Name, req: pick.Req, global: pick.Req.Global, on: -1,
			res: nonNegative(pick.Req.Resources)})
	}
}

// canonical is an order-independent encoding of a unit, used only to pick
// one of several units given with the same name.
func canonical(u Unit) string {
	var b strings.Builder
	r := u.Req
	b.WriteString(string(u.Desired))
	b.WriteString("|" + r.MachineID + "|")
	list := func(xs []string) {
		c := append([]string(nil), xs...)
		sort.Strings(c)
		b.WriteString(strings.Join(c, ","))
		b.WriteString("|")
	}
	list(r.MachineOf)
	list(r.Conflicts)
	list(r.Replaces)
	keys := make([]string, 0, len(r.Metadata))
	for k := range r.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(k + "=")
		list(r.Metadata[k])
	}
	ops := make([]string, 0, len(r.MetadataOps))
	for _, c := range r.MetadataOps {
		ops = append(ops, c.Key+c.Op+c.Value)
	}
	list(ops)
	b.WriteString(strconv.FormatInt(r.Resources.CPUMilli, 10) + "," + strconv.FormatInt(r.Resources.MemoryBytes, 10) + "|")
	if r.Global {
		b.WriteString("global")
	}
	if r.StopOnDisconnect {
		b.WriteString("|stop-on-disconnect")
	}
	return b.String()
}

// initPatterns numbers the distinct Conflicts and Replaces patterns and
// computes, for every unit, the patterns its name matches.
func (st *state) initPatterns() {
	set := make(map[string]struct{})
	for i := range st.us {
		u := &st.us[i]
		for _, p := range u.req.Conflicts {
			set[p] = struct{}{}
		}
		if !u.global {
			for _, p := range u.req.Replaces {
				set[p] = struct{}{}
			}
			for _, p := range u.req.MachineOf {
				if isMachineOfPattern(p) {
					set[p] = struct{}{}
				}
			}
		}
	}
	st.pats = make([]string, 0, len(set))
	for p := range set {
		st.pats = append(st.pats, p)
	}
	sort.Strings(st.pats)
	idx := make(map[string]int32, len(st.pats))
	for i, p := range st.pats {
		idx[p] = int32(i)
	}
	ids := func(ps []string) []int32 {
		if len(ps) == 0 {
			return nil
		}
		out := make([]int32, 0, len(ps))
		for _, p := range ps {
			out = append(out, idx[p])
		}
		return sortUniq(out)
	}
	for i := range st.us {
		u := &st.us[i]
		u.conf = ids(u.req.Conflicts)
		if !u.global {
			u.repl = ids(u.req.Replaces)
		}
	}
	st.patIdx = idx
	st.patUnits = make([][]int32, len(st.pats))
	// Units are sorted by name, so a pattern's candidates are the names
	// sharing its literal prefix: a contiguous range.
	for pi, p := range st.pats {
		if !isGlob(p) {
			if ui, ok := st.nameIdx[p]; ok {
				st.us[ui].matchedBy = append(st.us[ui].matchedBy, int32(pi))
				st.patUnits[pi] = append(st.patUnits[pi], ui)
			}
			continue
		}
		pre := literalPrefix(p)
		lo := sort.Search(len(st.us), func(i int) bool { return st.us[i].name >= pre })
		for i := lo; i < len(st.us) && strings.HasPrefix(st.us[i].name, pre); i++ {
			if ok, err := path.Match(p, st.us[i].name); ok && err == nil {
				st.us[i].matchedBy = append(st.us[i].matchedBy, int32(pi))
				st.patUnits[pi] = append(st.patUnits[pi], int32(i))
			}
		}
	}
}

func (st *state) initRequirements() {
	for i := range st.us {
		u := &st.us[i]
		u.cls = st.classFor(u.req.Metadata, u.req.MetadataOps)
		if u.global {
			st.globals = append(st.globals, int32(i))
			continue
		}
		if id := u.req.MachineID; id != "" {
			u.hasID = true
			if m, ok := st.idIdx[id]; ok {
				u.idCands = append(u.idCands, m)
			}
			if len(id) == 8 {
				u.idCands = append(u.idCands, st.shortIdx[id]...)
			}
			u.idCands = sortUniq(u.idCands)
		}
		seen := make(map[string]bool, len(u.req.MachineOf))
		for _, p := range u.req.MachineOf {
			if p == "" || seen[p] {
				continue
			}
			seen[p] = true
			if isMachineOfPattern(p) {
				u.gpeerPats = append(u.gpeerPats, p)
				continue
			}
			u.peerNames = append(u.peerNames, p)
		}
		sort.Strings(u.peerNames)
		sort.Strings(u.gpeerPats)
		for _, p := range u.gpeerPats {
			pi := st.patIdx[p]
			u.gpeers = append(u.gpeers, pi)
		}
		for _, p := range u.peerNames {
			pi, ok := st.nameIdx[p]
			if !ok {
				pi = -1
			}
			u.peers = append(u.peers, pi)
		}
	}
}

func (st *state) classFor(req map[string][]string, reqOps []fleet.MetadataCond) *class {
	var keys []string
	for k, vs := range req {
		if len(vs) > 0 {
			keys = append(keys, k)
		}
	}
	ops := normalizeOps(reqOps)
	if len(keys) == 0 && len(ops) == 0 {
		return nil
	}
	sort.Strings(keys)
	vals := make([][]string, len(keys))
	var b strings.Builder
	for i, k := range keys {
		vs := append([]string(nil), req[k]...)
		sort.Strings(vs)
		vs = compactStrings(vs)
		vals[i] = vs
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + strings.Join(vs, "|"))
	}
	for _, op := range ops {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(op.Key + op.Op + op.Value)
	}
	key := b.String()
	if c, ok := st.classes[key]; ok {
		return c
	}
	c := &class{key: key, keys: keys, vals: vals, ops: ops}
	st.classes[key] = c
	return c
}

// initOrder finds MachineOf cycles and sorts the non-global units by
// (depth in the MachineOf graph, name): targets before followers. It also
// groups units into Replaces components (see mayDisplace).
func (st *state) initOrder() {
	n := len(st.us)
	peersAdj := make([][]int32, n)
	for v := range st.us {
		for _, w := range st.us[v].peers {
			if w >= 0 && !st.us[w].global {
				peersAdj[v] = append(peersAdj[v], w)
			}
		}
		for _, p := range st.us[v].gpeers {
			for _, w := range st.patUnits[p] {
				if w != int32(v) && !st.us[w].global {
					peersAdj[v] = append(peersAdj[v], w)
				}
			}
		}
	}
	comp, cyclic := sccs(peersAdj)
	members := make(map[int32][]string)
	for v := range st.us {
		if cyclic[comp[v]] {
			members[comp[v]] = append(members[comp[v]], st.us[v].name) // names are in order
		}
	}
	for v := range st.us {
		if cyclic[comp[v]] {
			st.us[v].cyclic = true
			st.us[v].cycle = members[comp[v]]
		}
	}
	depth := make([]int32, n)
	for i := range depth {
		depth[i] = -1
	}
	var dep func(v int32) int32
	dep = func(v int32) int32 {
		if depth[v] >= 0 {
			return depth[v]
		}
		d := int32(0)
		if !st.us[v].cyclic {
			for _, w := range peersAdj[v] {
				d = max(d, dep(w)+1)
			}
		}
		depth[v] = d
		return d
	}
	for i := range st.us {
		if st.us[i].global {
			continue
		}
		st.us[i].depth = dep(int32(i))
		st.order = append(st.order, int32(i))
	}
	sort.SliceStable(st.order, func(a, b int) bool { // already sorted by name
		return st.us[st.order[a]].depth < st.us[st.order[b]].depth
	})
	for r, u := range st.order {
		st.us[u].rank = int32(r)
	}

	// Precedence graph: MachineOf target -> follower, replacer -> replaced.
	prec := make([][]int32, n)
	for v := range st.us {
		for _, w := range peersAdj[v] {
			prec[w] = append(prec[w], int32(v))
		}
		for _, p := range st.us[v].repl {
			for _, w := range st.patUnits[p] {
				if w != int32(v) && !st.us[w].global {
					prec[v] = append(prec[v], w)
				}
			}
		}
	}
	rcomp, _ := sccs(prec)
	for v := range st.us {
		st.us[v].rcomp = rcomp[v]
	}
}

// sccs numbers the strongly connected components of a graph (Tarjan) and
// says which are cyclic (more than one vertex, or a self-loop).
func sccs(adj [][]int32) (comp []int32, cyclic []bool) {
	n := len(adj)
	index := make([]int32, n)
	low := make([]int32, n)
	onStack := make([]bool, n)
	comp = make([]int32, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int32
	next := int32(0)
	var strong func(v int32)
	strong = func(v int32) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		self := false
		for _, w := range adj[v] {
			self = self || w == v
			if index[w] < 0 {
				strong(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] != index[v] {
			return
		}
		id := int32(len(cyclic))
		size := 0
		for {
			w := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[w] = false
			comp[w] = id
			size++
			if w == v {
				break
			}
		}
		cyclic = append(cyclic, size > 1 || self)
	}
	for v := range adj {
		if index[v] < 0 {
			strong(int32(v))
		}
	}
	return comp, cyclic
}

func (st *state) initCurrent(cur map[string][]string) {
	for name, ids := range cur {
		ui, ok := st.nameIdx[name]
		if !ok || st.us[ui].global {
			continue
		}
		var ms []int32
		for _, id := range ids {
			if m, ok := st.idIdx[id]; ok {
				ms = append(ms, m)
			}
		}
		st.us[ui].current = sortUniq(ms)
	}
}

// run places every unit: global units, then sticky units on their current
// machine, then the rest; then, if Replaces displaced anything, it retries
// the unplaced units until nothing changes.
func (st *state) run() {
	for _, g := range st.globals {
		u := &st.us[g]
		for m := range st.ms {
			if !st.ms[m].draining && u.cls.matches(st.ms[m].meta) && !st.conflictsFast(g, int32(m)) && st.fits(g, int32(m)) {
				st.place(g, int32(m))
			}
		}
	}
	st.sticky = true
	for _, u := range st.order {
		ui := &st.us[u]
		if ui.cyclic || ui.on >= 0 {
			continue
		}
		for _, m := range ui.current {
			if ok, disp := st.feasible(u, m); ok {
				st.apply(u, m, disp)
				break
			}
		}
	}
	st.sticky = false
	for _, u := range st.order {
		if st.us[u].on < 0 {
			st.tryPlace(u)
		}
	}
	// Without displacement the set of units on every machine only grows,
	// and every constraint but MachineOf (ordered) only forbids, so a unit
	// rejected once stays rejected. Displacement breaks that: retry.
	for round := 0; st.anyDisp && round <= 2*len(st.order)+2; round++ {
		changed := false
		for _, u := range st.order {
			if st.us[u].on < 0 && st.tryPlace(u) {
				changed = true
			}
		}
		if !changed {
			break
		}
	}
}

// tryPlace puts u on its best feasible machine, if any.
//
// Without MachineOf and Replaces, whether a unit fits depends only on its
// signature and on the placements, which only grow between displacements;
// so once a signature has failed, units sharing it fail too until the next
// displacement (failed is cleared by unplace). Surplus template instances
// then cost O(1) each.
func (st *state) tryPlace(u int32) bool {
	ui := &st.us[u]
	if ui.cyclic || len(st.ms) == 0 {
		return false
	}
	cacheable := len(ui.peers) == 0 && len(ui.gpeers) == 0 && len(ui.repl) == 0
	if cacheable {
		if _, ok := st.failed[st.sig(u)]; ok {
			return false
		}
	}
	best := int32(-1)
	var bestDisp []int32
	var cands []int32
	listed := false
	switch {
	case len(ui.peers) > 0 || len(ui.gpeers) > 0:
		cands, listed = st.peerCands(u), true
	case ui.hasID:
		cands, listed = ui.idCands, true
	}
	if listed {
		for _, m := range cands {
			if best >= 0 && !st.less(m, best) {
				continue
			}
			if ok, d := st.feasible(u, m); ok {
				best, bestDisp = m, d
			}
		}
	} else {
		f := func(m int32) bool {
			ok, d := st.feasible(u, m)
			if ok {
				best, bestDisp = m, d
			}
			return ok
		}
		if st.binpack {
			st.walkSorted(st.sortedFor(ui.cls), ui.res, f)
		} else {
			st.walk(st.heapFor(ui.cls), f)
		}
	}
	if best < 0 {
		if cacheable {
			st.failed[st.sig(u)] = struct{}{}
		}
		return false
	}
	st.apply(u, best, bestDisp)
	return true
}

// sig is a key shared by units whose feasibility and reasons are the same
// in any state: same requirements, same patterns matching their names.
func (st *state) sig(u int32) string {
	ui := &st.us[u]
	if ui.sig != "" {
		return ui.sig
	}
	var b strings.Builder
	if ui.global {
		b.WriteString("G")
	}
	b.WriteString(ui.req.MachineID + "\x00")
	for _, p := range ui.peerNames {
		b.WriteString(p + "\x01")
	}
	for _, p := range ui.gpeerPats {
		b.WriteString(p + "\x02")
	}
	if ui.res != (fleet.Resources{}) {
		b.WriteString("\x03" + strconv.FormatInt(ui.res.CPUMilli, 10) + "," + strconv.FormatInt(ui.res.MemoryBytes, 10))
	}
	if ui.cls != nil {
		b.WriteString(ui.cls.key)
	}
	ints := func(xs []int32) {
		b.WriteByte(0)
		for _, x := range xs {
			b.WriteString(strconv.Itoa(int(x)) + ",")
		}
	}
	ints(ui.conf)
	ints(ui.matchedBy)
	ints(ui.repl)
	if len(ui.repl) > 0 {
		ints([]int32{ui.rcomp})
	}
	if ui.cyclic {
		b.WriteString("\x00cycle " + strings.Join(ui.cycle, ","))
	}
	ui.sig = b.String()
	return ui.sig
}

// peerCands is the set of machines on which all MachineOf peers of u are
// placed and every MachineOf pattern has a unit (nil when there is none).
func (st *state) peerCands(u int32) []int32 {
	var out []int32
	first := true
	for _, p := range st.us[u].peers {
		if p < 0 {
			return nil
		}
		var on []int32
		if pu := &st.us[p]; pu.global {
			on = pu.gon
		} else if pu.on >= 0 {
			on = []int32{pu.on}
		}
		if first {
			out, first = append([]int32(nil), on...), false
			continue
		}
		out = intersect(out, on)
	}
	for _, p := range st.us[u].gpeers {
		on := st.patMachines(u, p)
		if first {
			out, first = on, false
			continue
		}
		out = intersect(out, on)
	}
	return out
}

// patMachines lists the machines (sorted) where a unit other than u that
// matches pattern p is placed.
func (st *state) patMachines(u, p int32) []int32 {
	var on []int32
	for _, w := range st.patUnits[p] {
		if w == u {
			continue
		}
		if wu := &st.us[w]; wu.global {
			on = append(on, wu.gon...)
		} else if wu.on >= 0 {
			on = append(on, wu.on)
		}
	}
	return sortUniq(on)
}

// patOn reports whether a unit other than u matching pattern p is on m.
func (st *state) patOn(u, p, m int32) bool {
	n := st.get(m, p)[cNames]
	if st.us[u].on == m && containsSorted(st.us[u].matchedBy, p) {
		n--
	}
	return n > 0
}

// feasible reports whether u can go on m given the current placements.
// Units on m that u Replaces are moved out of the way (see mayDisplace):
// they are returned, with their followers there, in processing order.
func (st *state) feasible(u, m int32) (bool, []int32) {
	if st.ms[m].draining { // rule 12 (filter (f); checked first, it is the cheapest)
		return false, nil
	}
	ui := &st.us[u]
	if ui.hasID && !containsSorted(ui.idCands, m) {
		return false, nil
	}
	for _, p := range ui.peers {
		if p < 0 || !st.isOn(p, m) {
			return false, nil
		}
	}
	for _, p := range ui.gpeers {
		if !st.patOn(u, p, m) {
			return false, nil
		}
	}
	if !ui.cls.matches(st.ms[m].meta) {
		return false, nil
	}
	for _, p := range ui.matchedBy {
		if st.get(m, p)[cRepl] > 0 { // replaced by a unit there (circular Replaces: first placed wins)
			return false, nil
		}
	}
	for _, p := range ui.repl {
		if st.get(m, p)[cNames] > 0 {
			return st.feasibleDisplacing(u, m)
		}
	}
	if st.conflictsFast(u, m) || !st.fits(u, m) {
		return false, nil
	}
	return true, nil
}

// conflictsFast checks Conflicts both ways against the units on m using the
// per-machine pattern counters.
func (st *state) conflictsFast(u, m int32) bool {
	ui := &st.us[u]
	for _, p := range ui.conf {
		if st.get(m, p)[cNames] > 0 {
			return true
		}
	}
	for _, p := range ui.matchedBy {
		if st.get(m, p)[cConf] > 0 {
			return true
		}
	}
	return false
}

// feasibleDisplacing is the slow path of feasible when u Replaces a unit on m.
func (st *state) feasibleDisplacing(u, m int32) (bool, []int32) {
	ui := &st.us[u]
	var disp []int32
	in := make(map[int32]bool)
	for _, w := range st.ms[m].units {
		if w != u && hasCommon(ui.repl, st.us[w].matchedBy) {
			if !st.mayDisplace(u, w) {
				return false, nil
			}
			disp = append(disp, w)
			in[w] = true
		}
	}
	// Followers go with their targets: a unit there whose MachineOf no
	// longer holds without the displaced units is displaced too, until
	// nothing changes (a pattern peer holds while another match stays).
	for changed := true; changed; {
		changed = false
		for _, f := range st.ms[m].units {
			if !in[f] && f != u && !st.us[f].global && !st.peersHoldWithout(f, m, in) {
				disp = append(disp, f)
				in[f] = true
				changed = true
			}
		}
	}
	if !st.peersHoldWithout(u, m, in) {
		return false, nil
	}
	for _, w := range st.ms[m].units {
		if !in[w] && w != u && (st.conflicts(u, w) || st.replacedBy(u, w)) {
			return false, nil
		}
	}
	var freed fleet.Resources
	for _, w := range disp {
		freed = addRes(freed, st.us[w].res)
	}
	if !st.fitsFreeing(u, m, freed) {
		return false, nil
	}
	sort.Slice(disp, func(i, j int) bool { return st.us[disp[i]].rank < st.us[disp[j]].rank })
	return true, disp
}

// peersHoldWithout reports whether u's MachineOf peers and patterns are
// satisfied on m once the units in out have left it.
func (st *state) peersHoldWithout(u, m int32, out map[int32]bool) bool {
	ui := &st.us[u]
	for _, p := range ui.peers {
		if p < 0 || out[p] || !st.isOn(p, m) {
			return false
		}
	}
	for _, p := range ui.gpeers {
		ok := false
		for _, w := range st.ms[m].units {
			if w != u && !out[w] && containsSorted(st.us[w].matchedBy, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// mayDisplace says whether u may push w (which u Replaces) off a machine.
// Units are vertices of a precedence graph with edges MachineOf target ->
// follower and replacer -> replaced; u may displace w unless w is global or
// both are in one strongly connected component (a Replaces cycle, possibly
// through MachineOf). Every displacement thus removes only units later in a
// fixed topological order than the unit placed, so the retry loop ends, and
// the rule depends on the snapshot alone, so a result is a fixpoint.
func (st *state) mayDisplace(u, w int32) bool {
	return !st.us[w].global && st.us[u].rcomp != st.us[w].rcomp
}

// conflicts reports whether u and w conflict (either's Conflicts matches
// the other's name).
func (st *state) conflicts(u, w int32) bool {
	a, b := &st.us[u], &st.us[w]
	return u != w && (hasCommon(a.conf, b.matchedBy) || hasCommon(b.conf, a.matchedBy))
}

// replacedBy reports whether w's Replaces matches u.
func (st *state) replacedBy(u, w int32) bool {
	return u != w && !st.us[w].global && hasCommon(st.us[w].repl, st.us[u].matchedBy)
}

func (st *state) isOn(u, m int32) bool {
	if ui := &st.us[u]; ui.global {
		return containsSorted(ui.gon, m)
	}
	return st.us[u].on == m
}

// apply places u on m after moving disp out of the way. Outside the sticky
// pass, displaced units are re-placed at once; in the sticky pass they wait
// for the placement pass.
func (st *state) apply(u, m int32, disp []int32) {
	for _, w := range disp {
		st.unplace(w)
	}
	st.place(u, m)
	if len(disp) == 0 {
		return
	}
	st.anyDisp = true
	if st.sticky {
		return
	}
	for _, w := range disp {
		if st.us[w].on < 0 {
			st.tryPlace(w)
		}
	}
}

func (st *state) place(u, m int32) {
	ui := &st.us[u]
	if ui.global {
		ui.gon = append(ui.gon, m)
	} else {
		ui.on = m
	}
	st.ms[m].units = append(st.ms[m].units, u)
	st.binpackOut(m, ui.res)
	st.ms[m].used = addRes(st.ms[m].used, ui.res)
	st.binpackIn(m, ui.res)
	if ui.global {
		st.ms[m].gused = addRes(st.ms[m].gused, ui.res)
	}
	st.addLoad(m, 1)
	st.count(u, m, 1)
}

func (st *state) unplace(u int32) {
	ui := &st.us[u]
	m := ui.on
	ui.on = -1
	us := st.ms[m].units
	for i, w := range us {
		if w == u {
			st.ms[m].units = append(us[:i], us[i+1:]...)
			break
		}
	}
	st.binpackOut(m, ui.res)
	st.ms[m].used = subRes(st.ms[m].used, ui.res)
	st.binpackIn(m, ui.res)
	st.addLoad(m, -1)
	st.count(u, m, -1)
	clear(st.failed)
}

func (st *state) count(u, m int32, d int32) {
	ui := &st.us[u]
	add := func(ps []int32, slot int) {
		for _, p := range ps {
			k := uint64(m)<<32 | uint64(p)
			c := st.cnt[k]
			c[slot] += d
			if c == [3]int32{} {
				delete(st.cnt, k)
			} else {
				st.cnt[k] = c
			}
		}
	}
	add(ui.matchedBy, cNames)
	add(ui.conf, cConf)
	add(ui.repl, cRepl)
}

func (st *state) get(m, p int32) [3]int32 {
	if len(st.cnt) == 0 {
		return [3]int32{}
	}
	return st.cnt[uint64(m)<<32|uint64(p)]
}

// less orders machines by rank (rules 7 and 14): (load, ID) for spread,
// (free memory, free CPU, ID) for binpack.
func (st *state) less(a, b int32) bool {
	if st.binpack {
		return st.binpackLess(a, b)
	}
	la, lb := st.ms[a].load, st.ms[b].load
	if la != lb {
		return la < lb
	}
	return a < b
}

func (st *state) addLoad(m, d int32) {
	st.ms[m].load += d
	for _, mb := range st.ms[m].memb {
		st.fix(mb.h, int(mb.e.i))
	}
}

func sortUniq(xs []int32) []int32 {
	if len(xs) < 2 {
		return xs
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
	out := xs[:1]
	for _, x := range xs[1:] {
		if x != out[len(out)-1] {
			out = append(out, x)
		}
	}
	return out
}

func compactStrings(xs []string) []string {
	if len(xs) < 2 {
		return xs
	}
	out := xs[:1]
	for _, x := range xs[1:] {
		if x != out[len(out)-1] {
			out = append(out, x)
		}
	}
	return out
}

func containsSorted(xs []int32, x int32) bool {
	i := sort.Search(len(xs), func(i int) bool { return xs[i] >= x })
	return i < len(xs) && xs[i] == x
}

// hasCommon reports whether two sorted slices share an element.
func hasCommon(a, b []int32) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			return true
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return false
}

func intersect(a, b []int32) []int32 {
	out := a[:0]
	for _, x := range a {
		if containsSorted(b, x) {
			out = append(out, x)
		}
	}
	return out
}
