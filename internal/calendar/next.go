package calendar

import "time"

// has reports whether v is in the component; unit is the implicit step of a
// range (1, or one second for the seconds component).
func (c component) has(v, unit int) bool {
	switch {
	case c.rep > 0:
		return v >= c.start && (c.stop < 0 || v <= c.stop) && (v-c.start)%c.rep == 0
	case c.stop >= 0:
		return v >= c.start && v <= c.stop && (v-c.start)%unit == 0
	default:
		return v == c.start
	}
}

// next returns the smallest member of the component that is >= v and <= max.
func (c component) next(v, unit, max int) (int, bool) {
	step, limit := c.rep, max
	if c.stop >= 0 {
		limit = min(c.stop, max)
		if step == 0 {
			step = unit
		}
	}
	if v <= c.start {
		return c.start, c.start <= limit
	}
	if step == 0 {
		return 0, false
	}
	n := c.start + (v-c.start+step-1)/step*step
	return n, n <= limit
}

func (c chain) has(v int) bool {
	if c == nil {
		return true
	}
	for _, comp := range c {
		if comp.has(v, 1) {
			return true
		}
	}
	return false
}

// hasFromEnd tests membership of a day counted from the end of the month
// (r == 1 is the last day). A repetition without a range counts towards
// the end of the month: "~7/1" is the last seven days.
func (c chain) hasFromEnd(r int) bool {
	for _, comp := range c {
		if comp.rep > 0 && comp.stop < 0 {
			if r <= comp.start && (comp.start-r)%comp.rep == 0 {
				return true
			}
		} else if comp.has(r, 1) {
			return true
		}
	}
	return false
}

// nextSecond returns the smallest matching µs-of-minute >= v.
func (c chain) nextSecond(v int) (int, bool) {
	if c == nil {
		n := (v + usecPerSec - 1) / usecPerSec * usecPerSec
		return n, n <= maxSecValue
	}
	best, ok := 0, false
	for _, comp := range c {
		if n, found := comp.next(v, usecPerSec, maxSecValue); found && (!ok || n < best) {
			best, ok = n, true
		}
	}
	return best, ok
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func (s *Spec) dayMatches(y int, m time.Month, d, dim int) bool {
	if s.weekdays != 0 {
		wd := (int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Weekday()) + 6) % 7
		if s.weekdays&(1<<wd) == 0 {
			return false
		}
	}
	if s.endOfMonth {
		return s.day.hasFromEnd(dim + 1 - d)
	}
	return s.day.has(d)
}

// nextTimeOfDay returns the first matching time of day >= (h0, mi0, us0).
func (s *Spec) nextTimeOfDay(h0, mi0, us0 int) (h, mi, us int, ok bool) {
	for h = h0; h < 24; h++ {
		if !s.hour.has(h) {
			continue
		}
		m0 := 0
		if h == h0 {
			m0 = mi0
		}
		for mi = m0; mi < 60; mi++ {
			if !s.minute.has(mi) {
				continue
			}
			u0 := 0
			if h == h0 && mi == mi0 {
				u0 = us0
			}
			if us, ok = s.second.nextSecond(u0); ok {
				return h, mi, us, true
			}
		}
	}
	return 0, 0, 0, false
}

// nextWall returns the first matching wall clock time >= w. Wall clock
// times are represented as time.Time values in UTC.
func (s *Spec) nextWall(w time.Time) (time.Time, bool) {
	y0, m0, d0 := w.Date()
	h0, mi0, sec0 := w.Clock()
	us0 := sec0*usecPerSec + w.Nanosecond()/1000
	for y := max(y0, 1); y <= maxYear; y++ {
		if !s.year.has(y) {
			continue
		}
		mStart := time.January
		if y == y0 {
			mStart = m0
		}
		for m := mStart; m <= time.December; m++ {
			if !s.month.has(int(m)) {
				continue
			}
			dim := daysIn(y, m)
			dStart := 1
			if y == y0 && m == m0 {
				dStart = d0
			}
			for d := dStart; d <= dim; d++ {
				if !s.dayMatches(y, m, d, dim) {
					continue
				}
				var h, mi, us int
				var ok bool
				if y == y0 && m == m0 && d == d0 {
					h, mi, us, ok = s.nextTimeOfDay(h0, mi0, us0)
				} else {
					h, mi, us, ok = s.nextTimeOfDay(0, 0, 0)
				}
				if ok {
					return time.Date(y, m, d, h, mi, 0, us*1000, time.UTC), true
				}
			}
		}
	}
	return time.Time{}, false
}

func wallOf(t time.Time) time.Time {
	y, m, d := t.Date()
	h, mi, s := t.Clock()
	return time.Date(y, m, d, h, mi, s, t.Nanosecond(), time.UTC)
}

// instant returns the first instant at which the wall clock in loc shows w,
// or false if w does not exist in loc (skipped by a DST transition).
func instant(w time.Time, loc *time.Location) (time.Time, bool) {
	if loc == time.UTC {
		return w, true
	}
	secs := w.Unix()
	var best time.Time
	found := false
	for _, probe := range []int64{secs - 86400, secs, secs + 86400} {
		_, off := time.Unix(probe, 0).In(loc).Zone()
		t := time.Unix(secs-int64(off), int64(w.Nanosecond())).In(loc)
		if wallOf(t).Equal(w) && (!found || t.Before(best)) {
			best, found = t, true
		}
	}
	return best, found
}

// Next returns the first elapse of the spec strictly after `after`, in the
// spec's time zone (or after's location when the spec has none). It
// returns false when there is none, e.g. for a fixed date in the past or
// an impossible date like "*-02-30". Elapses are searched up to the year
// 2199, like systemd.
func (s Spec) Next(after time.Time) (time.Time, bool) {
	loc := s.loc
	if loc == nil {
		loc = after.Location()
	}
	a := after.In(loc)
	c := wallOf(a).Truncate(time.Microsecond).Add(time.Microsecond)
	for range 1000 {
		w, ok := s.nextWall(c)
		if !ok {
			return time.Time{}, false
		}
		t, ok := instant(w, loc)
		switch {
		case ok && t.After(after):
			return t, true
		case ok:
			// w already happened before `after` (a repeated hour after a
			// backward transition): it does not elapse a second time.
			// Skip to the end of the repetition.
			c = w.Add(time.Microsecond)
			start, _ := a.ZoneBounds()
			if !start.IsZero() {
				if end := wallOf(start.Add(-time.Microsecond).In(loc)).Add(time.Microsecond); end.After(c) {
					c = end
				}
			}
		default:
			// w does not exist: continue after the gap.
			c = w.Add(time.Microsecond)
			gapEnd, _ := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), loc).ZoneBounds()
			if !gapEnd.IsZero() {
				if e := wallOf(gapEnd.In(loc)); e.After(c) {
					c = e
				}
			}
		}
	}
	return time.Time{}, false
}

// Prev returns the latest elapse of the spec at or before `at`, or false
// if there is none (within about 250 years before at).
func (s Spec) Prev(at time.Time) (time.Time, bool) {
	// Find lo with Next(lo) <= at, doubling the window.
	w := time.Second
	lo := at.Add(-w)
	for {
		n, ok := s.Next(lo)
		if ok && !n.After(at) {
			break
		}
		if w > 250*365*24*time.Hour {
			return time.Time{}, false
		}
		w *= 2
		lo = at.Add(-w)
	}
	// Bisect for the largest lo with Next(lo) <= at; hi has Next(hi) > at.
	hi := at
	for hi.Sub(lo) > time.Microsecond {
		mid := lo.Add(hi.Sub(lo) / 2)
		if n, ok := s.Next(mid); ok && !n.After(at) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return s.Next(lo)
}
