package unitfile

import (
	"strconv"
	"strings"
)

// Specifiers are what systemd's %-specifiers expand to for one unit on one
// machine: Unit names the unit (the specifiers taken from its name, see
// ParseName); the others are the machine's and the account's.
type Specifiers struct {
	Unit      string // %n %N %p %P %i %I %f
	Hostname  string // %H
	MachineID string // %m
	BootID    string // %b
	User      string // %u
	UID       string // %U
	Home      string // %h
	Shell     string // %s
}

// ExpandSpecifiers replaces systemd's %-specifiers in s in one pass from
// left to right (an expanded value is not scanned again): %n the full unit
// name, %N the name without its suffix, %p the prefix, %P the prefix
// unescaped, %i the instance, %I the instance unescaped, %f "/" and the
// unescaped instance (or prefix, without an instance), %H %m %b %u %U %h
// %s from sp, %t "/run" (the system manager's runtime directory), and %%
// a percent sign. Any other %c, and a '%' at the end, are kept as they
// are. See UnescapeName for unescaping.
func ExpandSpecifiers(s string, sp Specifiers) string {
	if !strings.Contains(s, "%") {
		return s
	}
	n := ParseName(sp.Unit)
	return expandPercent(s, func(c byte) (string, bool) {
		switch c {
		case '%':
			return "%", true
		case 'n':
			return n.Full, true
		case 'N':
			return n.Unsuffixed(), true
		case 'p':
			return n.Prefix, true
		case 'P':
			return UnescapeName(n.Prefix), true
		case 'i':
			return n.Instance, true
		case 'I':
			return UnescapeName(n.Instance), true
		case 'f':
			f := n.Prefix
			if n.Instance != "" {
				f = n.Instance
			}
			return "/" + strings.TrimPrefix(UnescapeName(f), "/"), true
		case 'H':
			return sp.Hostname, true
		case 'm':
			return sp.MachineID, true
		case 'b':
			return sp.BootID, true
		case 't':
			return "/run", true
		case 'u':
			return sp.User, true
		case 'U':
			return sp.UID, true
		case 'h':
			return sp.Home, true
		case 's':
			return sp.Shell, true
		}
		return "", false
	})
}

// expandFleetSpecifiers is fleet's rule for [X-Fleet] and [X-Service]
// values (fleet's unitPrintf, rules 22 and 32), not systemd's: %n, then
// %N, %p and %i are replaced one after the other in the whole value, and
// %% is not an escape. So "%%i" is a percent sign and the instance, and
// text a replacement forms with a '%' before it is replaced again ("%%N"
// of prod.service is "%prod", then "prodrod"). It is kept exactly as fleet
// had it: these values place units, and a unit must land where fleet put
// it. Unit sections use ExpandSpecifiers.
func expandFleetSpecifiers(v string, n Name) string {
	if !strings.Contains(v, "%") {
		return v
	}
	v = strings.ReplaceAll(v, "%n", n.Full)
	v = strings.ReplaceAll(v, "%N", n.Unsuffixed())
	v = strings.ReplaceAll(v, "%p", n.Prefix)
	return strings.ReplaceAll(v, "%i", n.Instance)
}

// expandPercent replaces each '%' followed by a byte that value knows by
// its value, in one pass from left to right; any other '%' is copied and
// scanning goes on with the byte after it.
func expandPercent(s string, value func(byte) (string, bool)) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		v, ok := value(s[i+1])
		if !ok {
			b.WriteByte(c)
			continue
		}
		b.WriteString(v)
		i++
	}
	return b.String()
}

// UnescapeName undoes systemd's unit name escaping (unit_name_unescape):
// "-" is "/" and \xNN is the byte NN. A backslash not starting a valid
// \xNN is kept (systemd refuses such a name).
func UnescapeName(s string) string {
	if !strings.ContainsAny(s, `-\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-':
			b.WriteByte('/')
		case c == '\\' && i+3 < len(s) && s[i+1] == 'x':
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
