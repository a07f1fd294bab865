package schedule

import (
	"sort"
	"strings"

	"github.com/fleetd/fleet/internal/fleet"
)

// Resources (rule 13) and the binpack ranking (rule 14).

const unlimited = 1<<63 - 1 // free amount of a dimension a machine does not advertise

func nonNegative(r fleet.Resources) fleet.Resources {
	return fleet.Resources{CPUMilli: max(r.CPUMilli, 0), MemoryBytes: max(r.MemoryBytes, 0)}
}

func resLess(a, b fleet.Resources) bool {
	if a.MemoryBytes != b.MemoryBytes {
		return a.MemoryBytes < b.MemoryBytes
	}
	return a.CPUMilli < b.CPUMilli
}

// addRes adds b to a, saturating (reservations are bounded by capacities,
// but units on machines without capacity are not).
func addRes(a, b fleet.Resources) fleet.Resources {
	return fleet.Resources{CPUMilli: satAdd(a.CPUMilli, b.CPUMilli), MemoryBytes: satAdd(a.MemoryBytes, b.MemoryBytes)}
}

func satAdd(a, b int64) int64 {
	if a > unlimited-b {
		return unlimited
	}
	return a + b
}

// subRes undoes addRes (exactly, unless it saturated; then approximately,
// which only happens on machines without capacity in that dimension).
func subRes(a, b fleet.Resources) fleet.Resources {
	return fleet.Resources{CPUMilli: max(a.CPUMilli-b.CPUMilli, 0), MemoryBytes: max(a.MemoryBytes-b.MemoryBytes, 0)}
}

// freeOf is what is left of capacity c with used taken, per dimension;
// unlimited where c does not advertise the dimension.
func freeOf(c, used fleet.Resources) fleet.Resources {
	f := fleet.Resources{CPUMilli: unlimited, MemoryBytes: unlimited}
	if c.CPUMilli > 0 {
		f.CPUMilli = max(c.CPUMilli-used.CPUMilli, 0)
	}
	if c.MemoryBytes > 0 {
		f.MemoryBytes = max(c.MemoryBytes-used.MemoryBytes, 0)
	}
	return f
}

// within reports whether need fits in free, per dimension.
func within(need, free fleet.Resources) bool {
	return need.CPUMilli <= free.CPUMilli && need.MemoryBytes <= free.MemoryBytes
}

// fits reports whether u's reservation fits on m beside the units there
// (rule 13). A global unit is checked against the global units only: they
// are placed before any other.
func (st *state) fits(u, m int32) bool {
	r := st.us[u].res
	if r == (fleet.Resources{}) {
		return true
	}
	mc := &st.ms[m]
	used := mc.used
	if st.us[u].global {
		used = mc.gused
	}
	return within(r, freeOf(mc.cap, used))
}

// fitsFreeing is fits once the reservations freed have left m.
func (st *state) fitsFreeing(u, m int32, freed fleet.Resources) bool {
	r := st.us[u].res
	if r == (fleet.Resources{}) {
		return true
	}
	mc := &st.ms[m]
	return within(r, freeOf(mc.cap, subRes(mc.used, freed)))
}

// binpackLess orders machines by (free memory, free CPU, ID): the fullest
// first, machines not advertising a dimension last in it.
func (st *state) binpackLess(a, b int32) bool {
	fa, fb := freeOf(st.ms[a].cap, st.ms[a].used), freeOf(st.ms[b].cap, st.ms[b].used)
	if fa.MemoryBytes != fb.MemoryBytes {
		return fa.MemoryBytes < fb.MemoryBytes
	}
	if fa.CPUMilli != fb.CPUMilli {
		return fa.CPUMilli < fb.CPUMilli
	}
	return a < b
}

// Binpack orders (rule 14). The machines of a class are kept sorted by
// binpackLess in a slice: a placement that reserves something moves its
// machine (binary search and one copy), and a walk starts at the first
// machine with enough free memory, so full machines cost nothing.

// sortedFor returns the binpack order of the machines matching c (nil: all
// machines), building it on first use. Draining machines are left out.
func (st *state) sortedFor(c *class) *class {
	if c == nil {
		c = st.all
	}
	if c.bpOK {
		return c
	}
	c.bpOK = true
	for m := range st.ms {
		if !st.ms[m].draining && (c == st.all || c.matches(st.ms[m].meta)) {
			c.bp = append(c.bp, int32(m))
			st.ms[m].bins = append(st.ms[m].bins, c)
		}
	}
	sort.Slice(c.bp, func(i, j int) bool { return st.binpackLess(c.bp[i], c.bp[j]) })
	return c
}

// binpackOut takes m out of its binpack orders before its free resources
// change by r; binpackIn puts it back after.
func (st *state) binpackOut(m int32, r fleet.Resources) {
	if r == (fleet.Resources{}) || st.ms[m].cap == (fleet.Resources{}) {
		return // the key does not change
	}
	for _, c := range st.ms[m].bins {
		i := sort.Search(len(c.bp), func(i int) bool { return !st.binpackLess(c.bp[i], m) })
		c.bp = append(c.bp[:i], c.bp[i+1:]...)
	}
}

func (st *state) binpackIn(m int32, r fleet.Resources) {
	if r == (fleet.Resources{}) || st.ms[m].cap == (fleet.Resources{}) {
		return
	}
	for _, c := range st.ms[m].bins {
		i := sort.Search(len(c.bp), func(i int) bool { return !st.binpackLess(c.bp[i], m) })
		c.bp = append(c.bp, 0)
		copy(c.bp[i+1:], c.bp[i:])
		c.bp[i] = m
	}
}

// walkSorted calls f on the machines of c in binpack order, from the first
// one with room for need's memory, until f returns true.
func (st *state) walkSorted(c *class, need fleet.Resources, f func(m int32) bool) {
	bp := c.bp
	i := sort.Search(len(bp), func(i int) bool {
		return freeOf(st.ms[bp[i]].cap, st.ms[bp[i]].used).MemoryBytes >= need.MemoryBytes
	})
	for ; i < len(c.bp); i++ {
		if f(c.bp[i]) {
			return
		}
	}
}

// short reports, per dimension, whether need exceeds free.
func short(need, free fleet.Resources) (mem, cpu bool) {
	return need.MemoryBytes > free.MemoryBytes, need.CPUMilli > free.CPUMilli
}

// freeFor is the free capacity of m as u sees it (global units only see
// the global units' reservations).
func (st *state) freeFor(u, m int32) fleet.Resources {
	mc := &st.ms[m]
	if st.us[u].global {
		return freeOf(mc.cap, mc.gused)
	}
	return freeOf(mc.cap, mc.used)
}

// resText is the PerMachine reason of a machine without room for u:
// "needs memory 400M; 11111111 has 200M free".
func (st *state) resText(u, m int32) string {
	need, free := st.us[u].res, st.freeFor(u, m)
	mem, cpu := short(need, free)
	var needs, has []string
	if mem {
		needs = append(needs, "memory "+fleet.FormatSize(need.MemoryBytes))
		has = append(has, fleet.FormatSize(free.MemoryBytes))
	}
	if cpu {
		needs = append(needs, "CPU "+fleet.FormatCPU(need.CPUMilli))
		has = append(has, fleet.FormatCPU(free.CPUMilli)+" CPU")
	}
	return "needs " + strings.Join(needs, " and ") + "; " + st.ms[m].short + " has " + strings.Join(has, " and ") + " free"
}

// resPhrase is the summary of the machines ms that lack room for u, per
// dimension: "not enough memory (needs 400M, most free 200M on
// 11111111)", or, when the reservation is larger than every one of them,
// "memory 4G is more than any machine has (largest 1G on 11111111)".
func (st *state) resPhrase(u int32, ms []int32) string {
	need := st.us[u].res
	var parts []string
	for _, dim := range [2]string{"memory", "CPU"} {
		get := func(r fleet.Resources) int64 {
			if dim == "memory" {
				return r.MemoryBytes
			}
			return r.CPUMilli
		}
		format := fleet.FormatSize
		if dim == "CPU" {
			format = fleet.FormatCPU
		}
		mostFree, largest := int32(-1), int32(-1)
		tooSmall := true
		for _, m := range ms {
			free := st.freeFor(u, m)
			if get(need) <= get(free) {
				continue
			}
			if mostFree < 0 || get(free) > get(st.freeFor(u, mostFree)) {
				mostFree = m
			}
			if c := get(st.ms[m].cap); c >= get(need) {
				tooSmall = false
			} else if largest < 0 || c > get(st.ms[largest].cap) {
				largest = m
			}
		}
		if mostFree < 0 {
			continue
		}
		if tooSmall {
			parts = append(parts, dim+" "+format(get(need))+" is more than any machine has (largest "+
				format(get(st.ms[largest].cap))+" on "+st.ms[largest].short+")")
			continue
		}
		parts = append(parts, "not enough "+dim+" (needs "+format(get(need))+", most free "+
			format(get(st.freeFor(u, mostFree)))+" on "+st.ms[mostFree].short+")")
	}
	return strings.Join(parts, "; ")
}
