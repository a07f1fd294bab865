package schedule

// SurgeMachines returns, for each of units, the machine where a second copy
// of it could run beside the one Schedule(s) places: a rolling update with
// surge starts the new version there before it stops the old one. The
// machine is the best by rule 7 among those, other than the unit's own,
// that pass rule 5's filters (a)-(g) given Schedule(s)'s placements (so
// the copy needs room for its reservation, rule 13; rank: rules 7, 14),
// without displacing anything (a machine where the copy would have to
// displace a unit is refused). Each machine goes to at most one of units, so
// that two copies never meet. A unit that is unknown, inactive, global or
// unplaced, or that has no such machine, is absent from the result. Like
// Schedule, it is pure.
func SurgeMachines(s Snapshot, units []string) map[string]string {
	st := newState(s)
	st.run()
	out := make(map[string]string, len(units))
	taken := map[int32]bool{}
	for _, name := range units {
		u, ok := st.nameIdx[name]
		if !ok {
			continue
		}
		ui := &st.us[u]
		if ui.global || ui.on < 0 {
			continue
		}
		best := int32(-1)
		for i := range st.ms {
			m := int32(i)
			if m == ui.on || taken[m] || (best >= 0 && !st.less(m, best)) {
				continue
			}
			if ok, disp := st.feasible(u, m); ok && len(disp) == 0 {
				best = m
			}
		}
		if best >= 0 {
			out[name] = st.ms[best].id
			taken[best] = true
		}
	}
	return out
}
