package timer

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

var spanUnits = []struct {
	names []string
	d     time.Duration
}{
	{[]string{"usec", "us", "µs", "μs"}, time.Microsecond},
	{[]string{"msec", "ms"}, time.Millisecond},
	{[]string{"seconds", "second", "sec", "s"}, time.Second},
	{[]string{"minutes", "minute", "min", "m"}, time.Minute},
	{[]string{"hours", "hour", "hr", "h"}, time.Hour},
	{[]string{"days", "day", "d"}, 24 * time.Hour},
	{[]string{"weeks", "week", "w"}, 7 * 24 * time.Hour},
	{[]string{"months", "month", "M"}, 2_629_800 * time.Second}, // 30.44 days
	{[]string{"years", "year", "y"}, 31_557_600 * time.Second},  // 365.25 days
}

func lookupUnit(name string) (time.Duration, bool) {
	for _, u := range spanUnits {
		for _, n := range u.names {
			if n == name {
				return u.d, true
			}
		}
	}
	return 0, false
}

// ParseSpan parses a systemd time span (systemd.time(7)): a sequence of
// numbers with units, like "5min 20s", "2h", "1.5d" or "500ms". A number
// without a unit is seconds. Spaces between terms are optional.
func ParseSpan(s string) (time.Duration, error) {
	in := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("invalid time span %q: empty", in)
	}
	var total float64
	for s != "" {
		s = strings.TrimLeft(s, " \t")
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid time span %q: expected a number at %q", in, s)
		}
		num, err := strconv.ParseFloat(s[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("invalid time span %q: bad number %q", in, s[:i])
		}
		s = strings.TrimLeft(s[i:], " \t")
		j := 0
		for j < len(s) && !(s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == ' ' || s[j] == '\t') {
			j++
		}
		unit := time.Second
		if j > 0 {
			u, ok := lookupUnit(s[:j])
			if !ok {
				return 0, fmt.Errorf("invalid time span %q: unknown unit %q", in, s[:j])
			}
			unit = u
		}
		s = s[j:]
		total += num * float64(unit)
		if total > math.MaxInt64/2 {
			return 0, fmt.Errorf("invalid time span %q: too large", in)
		}
	}
	return time.Duration(math.Round(total/1e3)) * time.Microsecond, nil
}
