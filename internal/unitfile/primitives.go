package unitfile

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// This file, execline.go and specifiers.go are the one home of systemd's
// value primitives in fleet: the unit file checks here and the exec runner
// (internal/runner/exec) both use them, so a unit means the same thing when
// it is submitted and when it runs. See the package documentation, rules
// 34 to 38 (and 18, unit names, in name.go).

// whitespace is systemd's WHITESPACE: what it strips from values and skips
// between the parts of a time span.
const whitespace = " \t\n\r"

// JoinContinuations returns v as systemd reads a value that continues over
// several lines: each backslash that ends a line (before "\n" or "\r\n")
// becomes a space and the lines are joined as they are (the white space
// that starts a continuation line is kept, as systemd keeps it), then
// white space is stripped from both ends. Parse keeps the raw form (for
// the hash); consumers that execute or display a value use this.
func JoinContinuations(v string) string {
	if !strings.Contains(v, "\\\n") && !strings.Contains(v, "\\\r\n") {
		return strings.Trim(v, whitespace)
	}
	var b strings.Builder
	b.Grow(len(v))
	for {
		i := strings.IndexByte(v, '\\')
		if i < 0 {
			b.WriteString(v)
			break
		}
		rest := v[i+1:]
		switch {
		case strings.HasPrefix(rest, "\n"):
			b.WriteString(v[:i])
			b.WriteByte(' ')
			v = rest[1:]
		case strings.HasPrefix(rest, "\r\n"):
			b.WriteString(v[:i])
			b.WriteByte(' ')
			v = rest[2:]
		default:
			b.WriteString(v[:i+1])
			v = rest
		}
	}
	return strings.Trim(b.String(), whitespace)
}

// ParseBool parses a systemd boolean: 1, yes, y, true, t, on and 0, no, n,
// false, f, off, in any case. The value is not trimmed.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "yes", "y", "true", "t", "on":
		return true, nil
	case "0", "no", "n", "false", "f", "off":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean %q: expect yes or no", s)
}

// Lengths of systemd's time units, in microseconds (systemd's resolution).
const (
	usecPerMsec   = 1000
	usecPerSec    = 1000 * usecPerMsec
	usecPerMinute = 60 * usecPerSec
	usecPerHour   = 60 * usecPerMinute
	usecPerDay    = 24 * usecPerHour
	usecPerWeek   = 7 * usecPerDay
	usecPerMonth  = 2629800 * usecPerSec  // 30.44 days
	usecPerYear   = 31557600 * usecPerSec // 365.25 days

	// usecInfinity is systemd's USEC_INFINITY: a finite span stays below it.
	usecInfinity = ^uint64(0)
	// maxLongLong bounds the integer part of a number, as strtoll does.
	maxLongLong = 1<<63 - 1
	// maxDurationUsec is the longest span a time.Duration holds, in
	// microseconds (about 292 years).
	maxDurationUsec = (1<<63 - 1) / 1000
)

// timeUnits are systemd's time span units in systemd's order: the first
// one the text starts with is the unit (so "ms" is milliseconds and "m"
// minutes, "M" months).
var timeUnits = []struct {
	suffix string
	usec   uint64
}{
	{"seconds", usecPerSec}, {"second", usecPerSec}, {"sec", usecPerSec}, {"s", usecPerSec},
	{"minutes", usecPerMinute}, {"minute", usecPerMinute}, {"min", usecPerMinute},
	{"months", usecPerMonth}, {"month", usecPerMonth}, {"M", usecPerMonth},
	{"msec", usecPerMsec}, {"ms", usecPerMsec}, {"m", usecPerMinute},
	{"hours", usecPerHour}, {"hour", usecPerHour}, {"hr", usecPerHour}, {"h", usecPerHour},
	{"days", usecPerDay}, {"day", usecPerDay}, {"d", usecPerDay},
	{"weeks", usecPerWeek}, {"week", usecPerWeek}, {"w", usecPerWeek},
	{"years", usecPerYear}, {"year", usecPerYear}, {"y", usecPerYear},
	{"usec", 1}, {"us", 1}, {"\u03bcs", 1}, {"\u00b5s", 1}, // Greek mu, micro sign
}

// errTimespanRange is the error for a span systemd refuses as too long.
var errTimespanRange = errors.New("out of range")

// ParseTimespan parses a systemd time span (systemd.time(7)) as systemd's
// parse_sec does: "infinity", or one or more numbers, each with an
// optional unit, summed ("90", "5s", "1min 30s", "1h30m", "1.5s",
// "2 weeks"). A number without a unit is seconds. Units: us usec µs, ms
// msec, s sec second seconds, m min minute minutes, h hr hour hours, d day
// days, w week weeks, M month months (30.44 days), y year years (365.25
// days); case matters ("m" is minutes, "M" months). Numbers are decimal,
// with an optional fraction (".5s" and "1.5h", but not "1." or "1.s");
// signs are refused. The result has systemd's microsecond resolution.
//
// inf is true for "infinity", and for a finite span too long for a
// time.Duration (about 292 years); d is then 0. Leading and trailing white
// space is ignored; an empty span is an error.
func ParseTimespan(s string) (d time.Duration, inf bool, err error) {
	p := strings.TrimLeft(s, whitespace)
	if rest, ok := strings.CutPrefix(p, "infinity"); ok {
		if strings.Trim(rest, whitespace) != "" {
			return 0, false, timespanErr(s, nil)
		}
		return 0, true, nil
	}
	if p == "" {
		return 0, false, errors.New("empty time span")
	}
	var usec uint64
	for something := false; ; something = true {
		p = strings.TrimLeft(p, whitespace)
		if p == "" {
			break
		}
		if p[0] == '-' {
			return 0, false, timespanErr(s, errors.New("negative"))
		}
		i := digits(p)
		intPart, rest := p[:i], p[i:]
		frac := ""
		if strings.HasPrefix(rest, ".") {
			j := 1 + digits(rest[1:])
			frac, rest = rest[1:j], rest[j:]
			if frac == "" {
				// systemd refuses "3.", "3.sec", "3. 1".
				return 0, false, timespanErr(s, nil)
			}
		} else if intPart == "" {
			return 0, false, timespanErr(s, unknownUnit(p, something))
		}
		var l uint64
		for k := 0; k < len(intPart); k++ {
			dgt := uint64(intPart[k] - '0')
			if l > (maxLongLong-dgt)/10 {
				return 0, false, timespanErr(s, errTimespanRange)
			}
			l = l*10 + dgt
		}
		unitText := strings.TrimLeft(rest, whitespace)
		mult := uint64(usecPerSec)
		matched := false
		for _, u := range timeUnits {
			if strings.HasPrefix(unitText, u.suffix) {
				mult, unitText, matched = u.usec, unitText[len(u.suffix):], true
				break
			}
		}
		if !matched && len(unitText) == len(rest) && rest != "" {
			// Neither white space nor a unit after the number: "12.34.56",
			// "5x".
			return 0, false, timespanErr(s, unknownUnit(rest, true))
		}
		p = unitText
		if l >= usecInfinity/mult {
			return 0, false, timespanErr(s, errTimespanRange)
		}
		k := l * mult
		if k >= usecInfinity-usec {
			return 0, false, timespanErr(s, errTimespanRange)
		}
		usec += k
		m := mult / 10
		for f := 0; f < len(frac); f++ {
			k := uint64(frac[f]-'0') * m
			if k >= usecInfinity-usec {
				return 0, false, timespanErr(s, errTimespanRange)
			}
			usec += k
			m /= 10
		}
	}
	if usec > maxDurationUsec {
		return 0, true, nil
	}
	return time.Duration(usec) * time.Microsecond, false, nil
}

// digits returns how many ASCII digits s starts with.
func digits(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// unknownUnit names the word at the start of s as an unknown time unit when
// it follows a number (afterNumber), or returns nil for a plain syntax
// error.
func unknownUnit(s string, afterNumber bool) error {
	end := 0
	for end < len(s) && !strings.ContainsRune(whitespace, rune(s[end])) && (s[end] < '0' || s[end] > '9') && s[end] != '.' {
		end++
	}
	if !afterNumber || end == 0 {
		return nil
	}
	return fmt.Errorf("unknown time unit %q", s[:end])
}

// timespanErr is ParseTimespan's error for s; detail may be nil.
func timespanErr(s string, detail error) error {
	if detail == nil {
		return fmt.Errorf(`invalid time span %q (expect e.g. "90", "5s", "1min 30s", "500ms" or "infinity")`, s)
	}
	return fmt.Errorf("invalid time span %q: %w", s, detail)
}
