package calendar

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// model is an explicit, independent description of a simple spec: the
// allowed values of each field as sets, evaluated in UTC with whole seconds.
type model struct {
	text                    string
	weekdays                [7]bool // Monday first
	years                   map[int]bool
	months, days, fromEnd   [32]bool
	useFromEnd              bool
	hours, minutes, seconds [60]bool
	anyYear, anyWeekday     bool
}

// genField returns the text of a random field and the set it denotes.
func genField(r *rand.Rand, lo, hi, width int, set []bool) string {
	num := func(v int) string { return fmt.Sprintf("%0*d", width, v) }
	pick := func() int { return lo + r.IntN(hi-lo+1) }
	switch r.IntN(6) {
	case 0: // *
		for v := lo; v <= hi; v++ {
			set[v] = true
		}
		return "*"
	case 1: // single
		v := pick()
		set[v] = true
		return num(v)
	case 2: // list
		var parts []string
		for range 1 + r.IntN(3) {
			v := pick()
			set[v] = true
			parts = append(parts, num(v))
		}
		return strings.Join(parts, ",")
	case 3: // range
		a, b := pick(), pick()
		if a > b {
			a, b = b, a
		}
		for v := a; v <= b; v++ {
			set[v] = true
		}
		return num(a) + ".." + num(b)
	case 4: // repetition
		a, n := pick(), 1+r.IntN(max(1, (hi-lo)/2))
		for v := a; v <= hi; v += n {
			set[v] = true
		}
		return fmt.Sprintf("%s/%d", num(a), n)
	default: // range with repetition
		a, b := pick(), pick()
		if a > b {
			a, b = b, a
		}
		n := 1 + r.IntN(4)
		for v := a; v <= b; v += n {
			set[v] = true
		}
		return fmt.Sprintf("%s..%s/%d", num(a), num(b), n)
	}
}

func genModel(r *rand.Rand) *model {
	m := &model{years: map[int]bool{}}
	var fields []string
	m.anyWeekday = r.IntN(3) != 0
	if !m.anyWeekday {
		var names []string
		for d, n := range weekdayShort {
			if r.IntN(2) == 0 {
				m.weekdays[d] = true
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			m.weekdays[2] = true
			names = []string{"Wed"}
		}
		fields = append(fields, strings.Join(names, ","))
	}
	year := "*"
	m.anyYear = r.IntN(4) != 0
	if !m.anyYear {
		a := 2026 + r.IntN(3)
		b := a + r.IntN(3)
		for y := a; y <= b; y++ {
			m.years[y] = true
		}
		year = fmt.Sprintf("%d..%d", a, b)
	}
	month := genField(r, 1, 12, 2, m.months[:])
	var day string
	switch r.IntN(4) {
	case 0:
		m.useFromEnd = true
		a := 1 + r.IntN(7)
		b := a + r.IntN(3)
		for v := a; v <= b; v++ {
			m.fromEnd[v] = true
		}
		day = fmt.Sprintf("~%02d..%02d", a, b)
	default:
		day = "-" + genField(r, 1, 31, 2, m.days[:])
	}
	fields = append(fields, year+"-"+month+day)
	h := genField(r, 0, 23, 2, m.hours[:])
	mi := genField(r, 0, 59, 2, m.minutes[:])
	s := genField(r, 0, 59, 2, m.seconds[:])
	fields = append(fields, h+":"+mi+":"+s)
	m.text = strings.Join(fields, " ") + " UTC"
	return m
}

func (m *model) dayOK(y int, mo time.Month, d int) bool {
	if !m.anyYear && !m.years[y] {
		return false
	}
	if !m.months[mo] {
		return false
	}
	if !m.anyWeekday && !m.weekdays[(int(time.Date(y, mo, d, 0, 0, 0, 0, time.UTC).Weekday())+6)%7] {
		return false
	}
	if m.useFromEnd {
		dim := time.Date(y, mo+1, 0, 0, 0, 0, 0, time.UTC).Day()
		return m.fromEnd[dim+1-d]
	}
	return m.days[d]
}

func (m *model) matches(t time.Time) bool {
	t = t.UTC()
	y, mo, d := t.Date()
	return t.Nanosecond() == 0 && m.dayOK(y, mo, d) && m.hours[t.Hour()] && m.minutes[t.Minute()] && m.seconds[t.Second()]
}

// bruteNext steps second by second (skipping days that cannot match) from
// after, for at most `days` days. It returns false if nothing matched.
func (m *model) bruteNext(after time.Time, days int) (time.Time, bool) {
	day := after.UTC().Truncate(24 * time.Hour)
	for range days {
		y, mo, d := day.Date()
		if m.dayOK(y, mo, d) {
			for sec := range 86400 {
				t := day.Add(time.Duration(sec) * time.Second)
				if t.After(after) && m.hours[sec/3600] && m.minutes[sec/60%60] && m.seconds[sec%60] {
					return t, true
				}
			}
		}
		day = day.AddDate(0, 0, 1)
	}
	return time.Time{}, false
}

func TestPropertyAgainstBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 2026))
	const window = 400 // days
	specs := 150
	if testing.Short() {
		specs = 60
	}
	for range specs {
		m := genModel(r)
		s, err := Parse(m.text)
		if err != nil {
			t.Fatalf("Parse(%q): %v", m.text, err)
		}
		if re, err := Parse(s.Normalized()); err != nil || !re.Equal(s) {
			t.Fatalf("%q: normalized %q does not re-parse equal: %v", m.text, s.Normalized(), err)
		}
		at := time.Date(2026, time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1e9), time.UTC)
		for i := range 12 {
			want, wok := m.bruteNext(at, window)
			got, gok := s.Next(at)
			if wok && (!gok || !got.Equal(want)) {
				t.Fatalf("%q (normalized %q): Next(%v) = %v %v, brute force says %v", m.text, s.Normalized(), at, got, gok, want)
			}
			if !wok {
				if gok && got.Before(at.AddDate(0, 0, window-1)) {
					t.Fatalf("%q: Next(%v) = %v, brute force found nothing in %d days", m.text, at, got, window)
				}
				break
			}
			if !got.After(at) {
				t.Fatalf("%q: Next(%v) = %v is not after", m.text, at, got)
			}
			if !m.matches(got) {
				t.Fatalf("%q: Next(%v) = %v does not match the spec", m.text, at, got)
			}
			// Prev at the elapse is the elapse; just before, it is earlier.
			if p, ok := s.Prev(got); !ok || !p.Equal(got) {
				t.Fatalf("%q: Prev(%v) = %v %v", m.text, got, p, ok)
			}
			if i > 0 {
				if p, ok := s.Prev(got.Add(-time.Microsecond)); !ok || !p.Equal(at) {
					t.Fatalf("%q: Prev(%v - 1µs) = %v %v, want %v", m.text, got, p, ok, at)
				}
			}
			at = got
		}
	}
}

func TestPropertyMonotonic(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	specs := []string{"*:*:0/2", "Mon..Fri 09:00", "*-02~1", "*:0/15 Europe/Berlin", "01:30 America/New_York",
		"*-*-1/2 *:*:0/0.5", "Sat *-*~07/1 12:00", "quarterly", "*:0,1,2,3:*", "2026..2028-*-29 03:00"}
	base := utc("2026-01-01 00:00:00")
	for _, spec := range specs {
		s := MustParse(spec)
		for range 300 {
			a := base.Add(time.Duration(r.Int64N(int64(3 * 365 * 24 * time.Hour))))
			b := a.Add(time.Duration(r.Int64N(int64(48 * time.Hour))))
			na, oka := s.Next(a)
			nb, okb := s.Next(b)
			if oka && !na.After(a) || okb && !nb.After(b) {
				t.Fatalf("%s: Next not after its argument: %v->%v, %v->%v", spec, a, na, b, nb)
			}
			if oka && okb && nb.Before(na) {
				t.Fatalf("%s: not monotonic: Next(%v)=%v > Next(%v)=%v", spec, a, na, b, nb)
			}
			if !oka && okb {
				t.Fatalf("%s: Next(%v) none but Next(%v) = %v", spec, a, b, nb)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"Mon..Fri 09:00", "*:*:0/2", "daily", "*-02~1", "Mon *-05~07/1", "*:*:0/0.5", "0..23/6:00",
		"2026/2-1-1", "*-*~1..5/2", "12-25", "26-01-01", "@1600000000", "09:00 Europe/Berlin", "Sat,Sun",
		"*-*-1,15,3,1", "*:*:59.999999", "Mon-Wed,Fri", "weekly UTC", "*:*:1..2/1", "Mon..Fry 09:00", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := Parse(spec)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("Parse(%q): error of type %T", spec, err)
			}
			return
		}
		norm := s.Normalized()
		re, err := Parse(norm)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but normalized %q does not parse: %v", spec, norm, err)
		}
		if !re.Equal(s) || re.Normalized() != norm {
			t.Fatalf("Parse(%q): normalized %q re-parses to %q", spec, norm, re.Normalized())
		}
		at := utc("2026-06-15 12:34:56.789")
		if n, ok := s.Next(at); ok && !n.After(at) {
			t.Fatalf("%q: Next(%v) = %v", spec, at, n)
		}
	})
}
