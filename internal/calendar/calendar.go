// Package calendar implements systemd's calendar event expressions as
// described in systemd.time(7), section "CALENDAR EVENTS":
//
//	[WEEKDAYS] [YEAR-]MONTH-DAY|MONTH~DAY [HOUR:MINUTE[:SECOND[.FRACTION]]] [TIMEZONE]
//
// plus the shorthands minutely, hourly, daily, weekly, monthly, yearly,
// annually, quarterly and semiannually, and "@EPOCH".
//
// Every date and time component accepts "*" (any value), comma separated
// lists, ranges "A..B" and repetitions "A/N" or "A..B/N". The day may be
// written after "~" instead of "-" to count from the end of the month
// ("*-02~1" is the last day of February). A spec without a time zone is
// evaluated in the location of the instant passed to Next.
//
// Daylight saving time is handled like systemd: a local time that does not
// exist (skipped by a forward transition) does not elapse, and a local time
// that happens twice (backward transition) elapses once, at its first
// occurrence.
package calendar

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	minYear = 1970
	maxYear = 2199

	usecPerSec  = 1_000_000
	usecPerMin  = 60 * usecPerSec
	maxSecValue = usecPerMin - 1
)

// component is one element of a comma separated list: a single value
// (stop < 0, rep == 0), a range (stop >= 0) or a repetition (rep > 0).
// Seconds are stored in microseconds.
type component struct {
	start, stop, rep int
}

// chain is a list of components; nil means "*".
type chain []component

// Spec is a parsed calendar event. The zero Spec is not valid; use Parse.
type Spec struct {
	weekdays   uint8 // bit 0 = Monday ... bit 6 = Sunday; 0 = any
	year       chain
	month      chain
	day        chain
	endOfMonth bool // day counts from the end of the month ("~")
	hour       chain
	minute     chain
	second     chain // microseconds; nil = every whole second
	tz         string
	loc        *time.Location
}

// ParseError describes a syntax error in a calendar spec. Offset is the
// byte offset of Token in Spec.
type ParseError struct {
	Spec   string
	Offset int
	Token  string
	Msg    string
}

func (e *ParseError) Error() string {
	if e.Token == "" {
		return fmt.Sprintf("invalid calendar spec %q: %s at offset %d", e.Spec, e.Msg, e.Offset)
	}
	return fmt.Sprintf("invalid calendar spec %q: %s %q at offset %d", e.Spec, e.Msg, e.Token, e.Offset)
}

var shorthands = map[string]string{
	"minutely":     "*-*-* *:*:00",
	"hourly":       "*-*-* *:00:00",
	"daily":        "*-*-* 00:00:00",
	"weekly":       "Mon *-*-* 00:00:00",
	"monthly":      "*-*-01 00:00:00",
	"yearly":       "*-01-01 00:00:00",
	"annually":     "*-01-01 00:00:00",
	"quarterly":    "*-01,04,07,10-01 00:00:00",
	"semiannually": "*-01,07-01 00:00:00",
}

var weekdayNames = [7][2]string{
	{"mon", "monday"}, {"tue", "tuesday"}, {"wed", "wednesday"}, {"thu", "thursday"},
	{"fri", "friday"}, {"sat", "saturday"}, {"sun", "sunday"},
}

var weekdayShort = [7]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}

type field struct {
	text string
	off  int
}

type parser struct {
	spec string
}

func (p *parser) errorf(off int, tok, format string, args ...any) error {
	return &ParseError{Spec: p.spec, Offset: off, Token: tok, Msg: fmt.Sprintf(format, args...)}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func splitFields(s string) []field {
	var out []field
	for i := 0; i < len(s); {
		if isSpace(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && !isSpace(s[j]) {
			j++
		}
		out = append(out, field{s[i:j], i})
		i = j
	}
	return out
}

// Parse parses a calendar event expression. Errors are *ParseError values
// naming the offending token and its byte offset.
func Parse(spec string) (Spec, error) {
	p := &parser{spec: spec}
	fields := splitFields(spec)
	if len(fields) == 0 {
		return Spec{}, p.errorf(0, "", "empty spec")
	}
	var s Spec
	// A trailing time zone.
	if last := fields[len(fields)-1]; len(fields) >= 2 && isLetter(last.text[0]) {
		if err := p.parseTZ(&s, last); err != nil {
			return Spec{}, err
		}
		fields = fields[:len(fields)-1]
	}
	if len(fields) == 1 {
		if exp, ok := shorthands[strings.ToLower(fields[0].text)]; ok {
			sub, err := Parse(exp)
			if err != nil {
				panic("calendar: bad shorthand expansion: " + err.Error())
			}
			sub.tz, sub.loc = s.tz, s.loc
			return sub, nil
		}
		if strings.HasPrefix(fields[0].text, "@") {
			return p.parseEpoch(s, fields[0])
		}
	}
	// Defaults: any date, midnight.
	s.hour = chain{{0, -1, 0}}
	s.minute = chain{{0, -1, 0}}
	s.second = chain{{0, -1, 0}}
	i := 0
	if i < len(fields) && isLetter(fields[i].text[0]) {
		if err := p.parseWeekdays(&s, fields[i]); err != nil {
			return Spec{}, err
		}
		i++
	}
	if i < len(fields) && !strings.Contains(fields[i].text, ":") && strings.ContainsAny(fields[i].text, "-~") {
		if err := p.parseDate(&s, fields[i]); err != nil {
			return Spec{}, err
		}
		i++
	}
	if i < len(fields) && strings.Contains(fields[i].text, ":") {
		if err := p.parseTime(&s, fields[i]); err != nil {
			return Spec{}, err
		}
		i++
	}
	if i < len(fields) {
		f := fields[i]
		if isLetter(f.text[0]) {
			return Spec{}, p.errorf(f.off, f.text, "misplaced weekday or time zone")
		}
		return Spec{}, p.errorf(f.off, f.text, "expected a date (Y-M-D) or time (H:M[:S])")
	}
	s.canonicalize()
	return s, nil
}

// MustParse is like Parse but panics on error. For tests and constants.
func MustParse(spec string) Spec {
	s, err := Parse(spec)
	if err != nil {
		panic(err)
	}
	return s
}

func (p *parser) parseTZ(s *Spec, f field) error {
	name := f.text
	if strings.EqualFold(name, "UTC") {
		s.tz, s.loc = "UTC", time.UTC
		return nil
	}
	if strings.EqualFold(name, "local") || strings.ContainsAny(name, `\`) || strings.Contains(name, "..") {
		return p.errorf(f.off, name, "unknown time zone")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return p.errorf(f.off, name, "unknown time zone")
	}
	s.tz, s.loc = name, loc
	return nil
}

func (p *parser) parseEpoch(s Spec, f field) (Spec, error) {
	digits := f.text[1:]
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || digits == "" || digits[0] < '0' || digits[0] > '9' {
		return Spec{}, p.errorf(f.off, f.text, "invalid epoch timestamp")
	}
	if n > 7_258_118_400 { // 2200-01-01
		return Spec{}, p.errorf(f.off, f.text, "epoch timestamp out of range")
	}
	t := time.Unix(n, 0).UTC()
	if t.Year() > maxYear {
		return Spec{}, p.errorf(f.off, f.text, "epoch timestamp out of range")
	}
	if s.loc != nil && s.loc != time.UTC {
		return Spec{}, p.errorf(f.off, f.text, "epoch timestamp must be UTC")
	}
	s.tz, s.loc = "UTC", time.UTC
	s.year = chain{{t.Year(), -1, 0}}
	s.month = chain{{int(t.Month()), -1, 0}}
	s.day = chain{{t.Day(), -1, 0}}
	s.hour = chain{{t.Hour(), -1, 0}}
	s.minute = chain{{t.Minute(), -1, 0}}
	s.second = chain{{t.Second() * usecPerSec, -1, 0}}
	s.canonicalize()
	return s, nil
}

// atoi parses a non-empty run of decimal digits, refusing absurd values.
func atoi(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > 1_000_000_000 {
			return 0, false
		}
	}
	return n, true
}

func weekdayIndex(name string) int {
	l := strings.ToLower(name)
	for i, n := range weekdayNames {
		if l == n[0] || l == n[1] {
			return i
		}
	}
	return -1
}

func (p *parser) parseWeekdays(s *Spec, f field) error {
	off := f.off
	for _, item := range strings.Split(f.text, ",") {
		if item == "" {
			return p.errorf(off, f.text, "empty weekday in list")
		}
		a, b, sep := item, "", ""
		if i := strings.Index(item, ".."); i >= 0 {
			a, b, sep = item[:i], item[i+2:], ".."
		} else if i := strings.Index(item, "-"); i >= 0 {
			a, b, sep = item[:i], item[i+1:], "-"
		}
		ai := weekdayIndex(a)
		if ai < 0 {
			return p.errorf(off, a, "unknown weekday")
		}
		bi := ai
		if sep != "" {
			boff := off + len(a) + len(sep)
			if b == "" {
				return p.errorf(boff, item, "missing end of weekday range")
			}
			bi = weekdayIndex(b)
			if bi < 0 {
				return p.errorf(boff, b, "unknown weekday")
			}
			if bi < ai {
				return p.errorf(off, item, "weekday range goes backwards")
			}
		}
		for d := ai; d <= bi; d++ {
			s.weekdays |= 1 << d
		}
		off += len(item) + 1
	}
	return nil
}

// kind describes one date or time component.
type kind struct {
	name     string
	min, max int
	usec     bool // seconds with up to six fractional digits, in µs
	year     bool // two digit years are 19xx/20xx
}

var (
	kYear   = kind{name: "year", min: minYear, max: maxYear, year: true}
	kMonth  = kind{name: "month", min: 1, max: 12}
	kDay    = kind{name: "day", min: 1, max: 31}
	kHour   = kind{name: "hour", min: 0, max: 23}
	kMinute = kind{name: "minute", min: 0, max: 59}
	kSecond = kind{name: "second", min: 0, max: maxSecValue, usec: true}
)

type part struct {
	text string
	off  int
	sep  byte // separator preceding this part (0 for the first)
}

func splitParts(f field, seps string) []part {
	var out []part
	start, sep := 0, byte(0)
	for i := 0; i <= len(f.text); i++ {
		if i == len(f.text) || strings.IndexByte(seps, f.text[i]) >= 0 {
			out = append(out, part{f.text[start:i], f.off + start, sep})
			if i < len(f.text) {
				sep = f.text[i]
			}
			start = i + 1
		}
	}
	return out
}

func (p *parser) parseDate(s *Spec, f field) error {
	parts := splitParts(f, "-~")
	for i, pt := range parts {
		if pt.sep == '~' && i != len(parts)-1 {
			return p.errorf(pt.off-1, f.text, "\"~\" must separate month and day")
		}
	}
	var err error
	switch len(parts) {
	case 3:
		if s.year, err = p.parseChain(parts[0], kYear, false); err != nil {
			return err
		}
		parts = parts[1:]
	case 2:
	default:
		return p.errorf(f.off, f.text, "date must be YEAR-MONTH-DAY or MONTH-DAY")
	}
	if s.month, err = p.parseChain(parts[0], kMonth, false); err != nil {
		return err
	}
	s.endOfMonth = parts[1].sep == '~'
	if s.day, err = p.parseChain(parts[1], kDay, s.endOfMonth); err != nil {
		return err
	}
	return nil
}

func (p *parser) parseTime(s *Spec, f field) error {
	parts := splitParts(f, ":")
	if len(parts) != 2 && len(parts) != 3 {
		return p.errorf(f.off, f.text, "time must be HOUR:MINUTE[:SECOND]")
	}
	var err error
	if s.hour, err = p.parseChain(parts[0], kHour, false); err != nil {
		return err
	}
	if s.minute, err = p.parseChain(parts[1], kMinute, false); err != nil {
		return err
	}
	s.second = chain{{0, -1, 0}}
	if len(parts) == 3 {
		if s.second, err = p.parseChain(parts[2], kSecond, false); err != nil {
			return err
		}
	}
	return nil
}

// parseValue parses a number of kind k; for seconds it returns µs.
func (p *parser) parseValue(text string, off int, k kind) (int, error) {
	if !k.usec {
		n, ok := atoi(text)
		if !ok {
			return 0, p.errorf(off, text, "invalid %s", k.name)
		}
		return n, nil
	}
	whole, frac, hasFrac := strings.Cut(text, ".")
	n, ok := atoi(whole)
	if !ok || hasFrac && (len(frac) == 0 || len(frac) > 6) || n > 1_000_000 {
		return 0, p.errorf(off, text, "invalid %s", k.name)
	}
	us := 0
	if hasFrac {
		f, ok := atoi(frac)
		if !ok {
			return 0, p.errorf(off, text, "invalid %s", k.name)
		}
		for i := len(frac); i < 6; i++ {
			f *= 10
		}
		us = f
	}
	return n*usecPerSec + us, nil
}

func (p *parser) parseChain(pt part, k kind, fromEnd bool) (chain, error) {
	if pt.text == "" {
		return nil, p.errorf(pt.off, pt.text, "missing %s", k.name)
	}
	if pt.text == "*" {
		if fromEnd {
			return nil, p.errorf(pt.off, pt.text, "\"~\" needs a day number, not")
		}
		return nil, nil
	}
	min, max := k.min, k.max
	if fromEnd {
		min = 1
	}
	var c chain
	off := pt.off
	for _, item := range strings.Split(pt.text, ",") {
		if item == "" {
			return nil, p.errorf(pt.off, pt.text, "empty %s in list", k.name)
		}
		if item == "*" || strings.HasPrefix(item, "*") {
			return nil, p.errorf(off, item, "\"*\" cannot be combined in a list or with a repetition, in")
		}
		body, repText, hasRep := strings.Cut(item, "/")
		startText, stopText, hasStop := strings.Cut(body, "..")
		start, err := p.parseValue(startText, off, k)
		if err != nil {
			return nil, err
		}
		if k.year && start < 100 && len(startText) <= 2 {
			start += 1900
			if start < 1970 {
				start += 100
			}
		}
		if start < min || start > max {
			return nil, p.errorf(off, startText, "%s out of range", k.name)
		}
		comp := component{start, -1, 0}
		if hasStop {
			soff := off + len(startText) + 2
			stop, err := p.parseValue(stopText, soff, k)
			if err != nil {
				return nil, err
			}
			if k.year && stop < 100 && len(stopText) <= 2 {
				stop += 1900
				if stop < 1970 {
					stop += 100
				}
			}
			if stop < min || stop > max {
				return nil, p.errorf(soff, stopText, "%s out of range", k.name)
			}
			if stop < start {
				return nil, p.errorf(off, body, "%s range goes backwards", k.name)
			}
			comp.stop = stop
		}
		if hasRep {
			roff := off + len(body) + 1
			rk := k
			rk.name = "repetition"
			rep, err := p.parseValue(repText, roff, rk)
			if err != nil {
				return nil, err
			}
			if rep <= 0 {
				return nil, p.errorf(roff, repText, "repetition must be positive, got")
			}
			comp.rep = rep
		}
		c = append(c, comp)
		off += len(item) + 1
	}
	return c, nil
}

// canonicalize puts a parsed spec in the normal form that Normalized prints
// and Equal compares.
func (s *Spec) canonicalize() {
	if s.weekdays == 0x7f {
		s.weekdays = 0
	}
	unit := func(k *chain, u int) {
		if *k == nil {
			return
		}
		c := *k
		for i := range c {
			if c[i].stop >= 0 && c[i].rep > 0 {
				if c[i].rep == u {
					c[i].rep = 0
				} else {
					c[i].stop = c[i].start + (c[i].stop-c[i].start)/c[i].rep*c[i].rep
				}
			}
			if c[i].stop >= 0 && c[i].rep == 0 && u > 1 {
				// a seconds range steps by whole seconds
				c[i].stop = c[i].start + (c[i].stop-c[i].start)/u*u
			}
		}
		slices.SortFunc(c, func(a, b component) int {
			if a.start != b.start {
				return a.start - b.start
			}
			if a.stop != b.stop {
				return a.stop - b.stop
			}
			return a.rep - b.rep
		})
		*k = slices.Compact(c)
	}
	unit(&s.year, 1)
	unit(&s.month, 1)
	unit(&s.day, 1)
	unit(&s.hour, 1)
	unit(&s.minute, 1)
	unit(&s.second, usecPerSec)
	if len(s.second) == 1 && s.second[0] == (component{0, -1, usecPerSec}) {
		s.second = nil
	}
}

// Equal reports whether two specs describe the same normalized expression.
func (s Spec) Equal(o Spec) bool {
	return s.weekdays == o.weekdays && s.endOfMonth == o.endOfMonth && s.tz == o.tz &&
		slices.Equal(s.year, o.year) && slices.Equal(s.month, o.month) &&
		slices.Equal(s.day, o.day) && slices.Equal(s.hour, o.hour) &&
		slices.Equal(s.minute, o.minute) && slices.Equal(s.second, o.second)
}

// TimeZone returns the spec's time zone name, or "" when it has none.
func (s Spec) TimeZone() string { return s.tz }

// Location returns the spec's time zone, or nil when it has none (Next then
// uses the location of its argument).
func (s Spec) Location() *time.Location { return s.loc }

// String is Normalized.
func (s Spec) String() string { return s.Normalized() }

// Normalized returns the canonical form printed by `systemd-analyze
// calendar`, e.g. "Mon..Fri *-*-* 09:00:00".
func (s Spec) Normalized() string {
	var b strings.Builder
	if s.weekdays != 0 {
		formatWeekdays(&b, s.weekdays)
		b.WriteByte(' ')
	}
	formatChain(&b, s.year, 4, 1)
	b.WriteByte('-')
	formatChain(&b, s.month, 2, 1)
	if s.endOfMonth {
		b.WriteByte('~')
	} else {
		b.WriteByte('-')
	}
	formatChain(&b, s.day, 2, 1)
	b.WriteByte(' ')
	formatChain(&b, s.hour, 2, 1)
	b.WriteByte(':')
	formatChain(&b, s.minute, 2, 1)
	b.WriteByte(':')
	formatChain(&b, s.second, 2, usecPerSec)
	if s.tz != "" {
		b.WriteByte(' ')
		b.WriteString(s.tz)
	}
	return b.String()
}

func formatWeekdays(b *strings.Builder, bits uint8) {
	first := true
	for d := 0; d < 7; {
		if bits&(1<<d) == 0 {
			d++
			continue
		}
		e := d
		for e+1 < 7 && bits&(1<<(e+1)) != 0 {
			e++
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(weekdayShort[d])
		switch {
		case e == d+1:
			b.WriteByte(',')
			b.WriteString(weekdayShort[e])
		case e > d+1:
			b.WriteString("..")
			b.WriteString(weekdayShort[e])
		}
		d = e + 1
	}
}

func formatValue(b *strings.Builder, v, width, unit int) {
	if unit == 1 {
		fmt.Fprintf(b, "%0*d", width, v)
		return
	}
	fmt.Fprintf(b, "%0*d", width, v/unit)
	if v%unit != 0 {
		fmt.Fprintf(b, ".%06d", v%unit)
	}
}

func formatChain(b *strings.Builder, c chain, width, unit int) {
	if c == nil {
		b.WriteByte('*')
		return
	}
	for i, comp := range c {
		if i > 0 {
			b.WriteByte(',')
		}
		formatValue(b, comp.start, width, unit)
		if comp.stop >= 0 {
			b.WriteString("..")
			formatValue(b, comp.stop, width, unit)
		}
		if comp.rep > 0 {
			b.WriteByte('/')
			if unit == 1 {
				fmt.Fprintf(b, "%d", comp.rep)
			} else if comp.rep%unit == 0 {
				fmt.Fprintf(b, "%d", comp.rep/unit)
			} else {
				fmt.Fprintf(b, "%d.%06d", comp.rep/unit, comp.rep%unit)
			}
		}
	}
}
