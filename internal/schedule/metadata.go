package schedule

import (
	"sort"
	"strings"

	"github.com/fleetd/fleet/internal/fleet"
)

// MachineMetadata operators (rule 15) and MachineOf patterns (rule 16).

// isMachineOfPattern reports whether a MachineOf entry is a glob pattern:
// it has *, ? or [ (unitfile.IsMachineOfPattern). Other entries, with a
// backslash escape or not, are exact unit names.
func isMachineOfPattern(p string) bool { return strings.ContainsAny(p, "*?[") }

// normalizeOps sorts and deduplicates operator conditions; conditions with
// an unknown operator or an empty key are dropped (the API validates them).
func normalizeOps(in []fleet.MetadataCond) []fleet.MetadataCond {
	var out []fleet.MetadataCond
	for _, c := range in {
		switch c.Op {
		case "!=", "<", ">", "<=", ">=":
			if c.Key != "" {
				out = append(out, c)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		if a.Op != b.Op {
			return a.Op < b.Op
		}
		return a.Value < b.Value
	})
	for i := 1; i < len(out); {
		if out[i] == out[i-1] {
			out = append(out[:i], out[i+1:]...)
			continue
		}
		i++
	}
	return out
}

// condHolds evaluates one operator condition against a machine's
// metadata: != holds without the key; ordering operators need the key and
// two comparable values (compareValues).
func condHolds(c fleet.MetadataCond, meta map[string]string) bool {
	v, ok := meta[c.Key]
	if c.Op == "!=" {
		return !ok || v != c.Value
	}
	if !ok {
		return false
	}
	cmp, ok := compareValues(v, c.Value)
	if !ok {
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

// compareValues compares two metadata values: as decimal numbers when both
// are ("8", "-1", "0.5"; "1.2" > "1.10"), else as versions when both are
// (segment by segment, numerically, missing segments 0: "1.2.10" <
// "1.10", "1.2" == "1.2.0"). ok is false otherwise.
func compareValues(a, b string) (int, bool) {
	if isNumber(a) && isNumber(b) {
		return compareNumbers(a, b), true
	}
	if isVersion(a) && isVersion(b) {
		as, bs := strings.Split(a, "."), strings.Split(b, ".")
		for i := range max(len(as), len(bs)) {
			x, y := "0", "0"
			if i < len(as) {
				x = as[i]
			}
			if i < len(bs) {
				y = bs[i]
			}
			if c := compareDigits(x, y); c != 0 {
				return c, true
			}
		}
		return 0, true
	}
	return 0, false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isNumber: an optional '-', digits, optionally '.' and digits.
func isNumber(s string) bool {
	ip, fp, dot := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	return allDigits(ip) && (!dot || allDigits(fp))
}

// isVersion: digit runs separated by single dots.
func isVersion(s string) bool {
	for _, seg := range strings.Split(s, ".") {
		if !allDigits(seg) {
			return false
		}
	}
	return true
}

// compareDigits compares two non-negative integers written in decimal, of
// any length.
func compareDigits(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// compareNumbers compares two isNumber values exactly.
func compareNumbers(a, b string) int {
	na, nb := strings.HasPrefix(a, "-"), strings.HasPrefix(b, "-")
	a, b = strings.TrimPrefix(a, "-"), strings.TrimPrefix(b, "-")
	ai, af, _ := strings.Cut(a, ".")
	bi, bf, _ := strings.Cut(b, ".")
	c := compareDigits(ai, bi)
	if c == 0 {
		af, bf = strings.TrimRight(af, "0"), strings.TrimRight(bf, "0")
		n := max(len(af), len(bf))
		c = strings.Compare(af+strings.Repeat("0", n-len(af)), bf+strings.Repeat("0", n-len(bf)))
	}
	zero := func(i, f string) bool { return strings.Trim(i, "0") == "" && strings.Trim(f, "0") == "" }
	if na && zero(ai, af) {
		na = false // -0 is 0
	}
	if nb && zero(bi, bf) {
		nb = false
	}
	switch {
	case na && !nb:
		return -1
	case !na && nb:
		return 1
	case na && nb:
		return -c
	}
	return c
}
