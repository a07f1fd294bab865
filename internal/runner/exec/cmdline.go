package exec

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// joinContinuations turns the backslash-newline continuations the unit
// parser keeps in values into single spaces, as systemd does, and trims the
// value.
func joinContinuations(v string) string {
	if !strings.Contains(v, "\n") {
		return strings.TrimSpace(v)
	}
	var b strings.Builder
	lines := strings.Split(strings.ReplaceAll(v, "\r\n", "\n"), "\n")
	for i, l := range lines {
		if i > 0 {
			l = strings.TrimLeft(l, " \t")
		}
		if i < len(lines)-1 {
			l = strings.TrimRight(l, " \t")
			l = strings.TrimSuffix(l, "\\")
			l = strings.TrimRight(l, " \t")
			b.WriteString(l)
			b.WriteByte(' ')
			continue
		}
		b.WriteString(l)
	}
	return strings.TrimSpace(b.String())
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SplitWords splits a command line or an Environment= value into words the
// way systemd does: words are separated by whitespace; double and single
// quotes group (and may be glued to unquoted text: a"b c"d is one word);
// backslash escapes (\n \t \\ \" \' \xNN, octal \NNN, \uXXXX, \UXXXXXXXX and
// "\c" for any other c) are decoded inside and outside quotes. An
// unterminated quote or a trailing lone backslash is an error.
func SplitWords(s string) ([]string, error) {
	var words []string
	var cur []byte
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("trailing backslash")
			}
			n, adv, err := unescape(s[i+1:])
			if err != nil {
				return nil, err
			}
			cur = append(cur, n...)
			i += adv
			inWord = true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur = append(cur, c)
			}
		case c == '"' || c == '\'':
			quote = c
			inWord = true
		case isSpace(c):
			if inWord {
				words = append(words, string(cur))
				cur = cur[:0]
				inWord = false
			}
		default:
			cur = append(cur, c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if inWord {
		words = append(words, string(cur))
	}
	return words, nil
}

// unescape decodes the escape sequence after a backslash at the start of
// s, returning the bytes and how many bytes of s it used.
func unescape(s string) ([]byte, int, error) {
	c := s[0]
	switch c {
	case 'a':
		return []byte{'\a'}, 1, nil
	case 'b':
		return []byte{'\b'}, 1, nil
	case 'f':
		return []byte{'\f'}, 1, nil
	case 'n':
		return []byte{'\n'}, 1, nil
	case 'r':
		return []byte{'\r'}, 1, nil
	case 't':
		return []byte{'\t'}, 1, nil
	case 'v':
		return []byte{'\v'}, 1, nil
	case 's':
		return []byte{' '}, 1, nil
	case 'x':
		if len(s) < 3 {
			return nil, 0, errors.New("short \\x escape")
		}
		v, err := strconv.ParseUint(s[1:3], 16, 8)
		if err != nil {
			return nil, 0, fmt.Errorf("bad \\x escape %q", s[:3])
		}
		return []byte{byte(v)}, 3, nil
	case 'u', 'U':
		n := 4
		if c == 'U' {
			n = 8
		}
		if len(s) < n+1 {
			return nil, 0, fmt.Errorf("short \\%c escape", c)
		}
		v, err := strconv.ParseUint(s[1:n+1], 16, 32)
		if err != nil || v > utf8.MaxRune || v == 0 {
			return nil, 0, fmt.Errorf("bad \\%c escape %q", c, s[:n+1])
		}
		return utf8.AppendRune(nil, rune(v)), n + 1, nil
	}
	if c >= '0' && c <= '7' {
		if len(s) < 3 {
			return nil, 0, errors.New("short octal escape")
		}
		v, err := strconv.ParseUint(s[:3], 8, 16)
		if err != nil || v > 255 {
			return nil, 0, fmt.Errorf("bad octal escape %q", s[:3])
		}
		return []byte{byte(v)}, 3, nil
	}
	return []byte{c}, 1, nil
}

// QuoteWord quotes w so that SplitWords returns it as one word.
func QuoteWord(w string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// JoinWords quotes each word and joins them with spaces.
func JoinWords(ws []string) string {
	q := make([]string, len(ws))
	for i, w := range ws {
		q[i] = QuoteWord(w)
	}
	return strings.Join(q, " ")
}

// execPrefix holds the meaning of an Exec*= line's leading special
// characters.
type execPrefix struct {
	ignoreFailure bool // -
	argv0         bool // @: the second word is argv[0]
	noEnv         bool // :: no environment variable substitution
}

// parseExecPrefix strips "-@+!:|" prefixes.
func parseExecPrefix(s string) (execPrefix, string) {
	var p execPrefix
	for len(s) > 0 {
		switch s[0] {
		case '-':
			p.ignoreFailure = true
		case '@':
			p.argv0 = true
		case ':':
			p.noEnv = true
		case '+', '!', '|':
		default:
			return p, s
		}
		s = s[1:]
	}
	return p, s
}

func validEnvName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// expandWord applies systemd's environment substitution to one word of a
// command line: a word that is exactly $NAME becomes the value split on
// whitespace (zero or more words); otherwise ${NAME} is replaced in place
// (the word stays one word), $$ becomes $, and any other $ is kept as is
// (so "echo $HOME" inside a quoted shell script reaches the shell).
func expandWord(w string, lookup func(string) (string, bool)) []string {
	if len(w) > 1 && w[0] == '$' && validEnvName(w[1:]) {
		v, _ := lookup(w[1:])
		return strings.Fields(v)
	}
	return []string{expandInline(w, lookup)}
}

func expandInline(w string, lookup func(string) (string, bool)) string {
	if !strings.Contains(w, "$") {
		return w
	}
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c != '$' || i+1 >= len(w) {
			b.WriteByte(c)
			continue
		}
		switch w[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(w[i+2:], '}')
			if end < 0 || !validEnvName(w[i+2:i+2+end]) {
				b.WriteByte(c)
				continue
			}
			v, _ := lookup(w[i+2 : i+2+end])
			b.WriteString(v)
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// specifiers are the values %-specifiers expand to.
type specifiers struct {
	name      string // full unit name
	hostname  string
	machineID string
	bootID    string
	user      string
	uid       string
	home      string
	shell     string
}

// splitUnitName returns prefix, instance and suffix of a unit name.
func splitUnitName(name string) (prefix, instance, suffix string) {
	base := name
	if dot := strings.LastIndexByte(name, '.'); dot > 0 {
		base, suffix = name[:dot], name[dot:]
	}
	prefix = base
	if at := strings.IndexByte(base, '@'); at >= 0 {
		prefix, instance = base[:at], base[at+1:]
	}
	return
}

// unescapeUnitName undoes systemd unit name escaping: "-" is "/" and \xNN
// is a byte.
func unescapeUnitName(s string) string {
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

// expand replaces %-specifiers in s. Unknown specifiers are kept as they are.
func (sp specifiers) expand(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	prefix, instance, suffix := splitUnitName(sp.name)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
		case 'n':
			b.WriteString(sp.name)
		case 'N':
			b.WriteString(strings.TrimSuffix(sp.name, suffix))
		case 'p':
			b.WriteString(prefix)
		case 'P':
			b.WriteString(unescapeUnitName(prefix))
		case 'i':
			b.WriteString(instance)
		case 'I':
			b.WriteString(unescapeUnitName(instance))
		case 'f':
			if instance != "" {
				b.WriteString("/" + strings.TrimPrefix(unescapeUnitName(instance), "/"))
			} else {
				b.WriteString("/" + strings.TrimPrefix(unescapeUnitName(prefix), "/"))
			}
		case 'H':
			b.WriteString(sp.hostname)
		case 'm':
			b.WriteString(sp.machineID)
		case 'b':
			b.WriteString(sp.bootID)
		case 't':
			b.WriteString("/run")
		case 'u':
			b.WriteString(sp.user)
		case 'U':
			b.WriteString(sp.uid)
		case 'h':
			b.WriteString(sp.home)
		case 's':
			b.WriteString(sp.shell)
		default:
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// ParseTimespan parses a systemd time span ("90", "5s", "1min 30s",
// "500ms", "2h", "infinity"). inf is true for "infinity". A bare number is
// seconds.
func ParseTimespan(s string) (d time.Duration, inf bool, err error) {
	s = strings.TrimSpace(s)
	if s == "infinity" {
		return 0, true, nil
	}
	if s == "" {
		return 0, false, errors.New("empty time span")
	}
	units := []struct {
		name string
		d    float64
	}{
		{"usec", float64(time.Microsecond)}, {"us", float64(time.Microsecond)}, {"µs", float64(time.Microsecond)},
		{"msec", float64(time.Millisecond)}, {"ms", float64(time.Millisecond)},
		{"seconds", float64(time.Second)}, {"second", float64(time.Second)}, {"sec", float64(time.Second)}, {"s", float64(time.Second)},
		{"minutes", float64(time.Minute)}, {"minute", float64(time.Minute)}, {"min", float64(time.Minute)}, {"m", float64(time.Minute)},
		{"hours", float64(time.Hour)}, {"hour", float64(time.Hour)}, {"hr", float64(time.Hour)}, {"h", float64(time.Hour)},
		{"days", float64(24 * time.Hour)}, {"day", float64(24 * time.Hour)}, {"d", float64(24 * time.Hour)},
		{"weeks", float64(7 * 24 * time.Hour)}, {"week", float64(7 * 24 * time.Hour)}, {"w", float64(7 * 24 * time.Hour)},
		{"months", 30.44 * 24 * float64(time.Hour)}, {"month", 30.44 * 24 * float64(time.Hour)}, {"M", 30.44 * 24 * float64(time.Hour)},
		{"years", 365.25 * 24 * float64(time.Hour)}, {"year", 365.25 * 24 * float64(time.Hour)}, {"y", 365.25 * 24 * float64(time.Hour)},
	}
	var total float64
	rest := s
	for rest != "" {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		j := 0
		for j < len(rest) && (rest[j] >= '0' && rest[j] <= '9' || rest[j] == '.') {
			j++
		}
		if j == 0 {
			return 0, false, fmt.Errorf("invalid time span %q", s)
		}
		num, err := strconv.ParseFloat(rest[:j], 64)
		if err != nil {
			return 0, false, fmt.Errorf("invalid time span %q", s)
		}
		rest = strings.TrimLeft(rest[j:], " \t")
		k := 0
		for k < len(rest) && !(rest[k] >= '0' && rest[k] <= '9') && rest[k] != ' ' && rest[k] != '\t' {
			k++
		}
		unit := rest[:k]
		rest = rest[k:]
		mult := float64(time.Second)
		if unit != "" {
			found := false
			for _, u := range units {
				if u.name == unit {
					mult, found = u.d, true
					break
				}
			}
			if !found {
				return 0, false, fmt.Errorf("invalid time span %q: unknown unit %q", s, unit)
			}
		}
		total += num * mult
	}
	if total > math.MaxInt64 {
		return 0, true, nil
	}
	return time.Duration(total), false, nil
}

// parseEnvironment parses one Environment= value into NAME=VALUE
// assignments; invalid words are returned in bad.
func parseEnvironment(v string) (assign []string, bad []string, err error) {
	words, err := SplitWords(v)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range words {
		eq := strings.IndexByte(w, '=')
		if eq <= 0 || !validEnvName(w[:eq]) {
			bad = append(bad, w)
			continue
		}
		assign = append(assign, w)
	}
	return assign, bad, nil
}

// parseEnvFile parses the content of an EnvironmentFile=: KEY=VALUE lines,
// blank lines and lines starting with # or ; are skipped, an optional
// "export " is ignored; values may be single quoted (literal), double
// quoted (\" \\ \$ \` and backslash-newline escapes) or bare (backslash
// escapes any character, a trailing backslash continues the line, trailing
// whitespace is dropped).
func parseEnvFile(data string) ([]string, error) {
	var out []string
	s := strings.ReplaceAll(data, "\r\n", "\n")
	i := 0
	line := 1
	for i < len(s) {
		// Skip leading whitespace and blank lines.
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n') {
			if s[i] == '\n' {
				line++
			}
			i++
		}
		if i >= len(s) {
			break
		}
		if s[i] == '#' || s[i] == ';' {
			for i < len(s) && s[i] != '\n' {
				i++
			}
			continue
		}
		// Key.
		start := i
		for i < len(s) && s[i] != '=' && s[i] != '\n' {
			i++
		}
		key := strings.TrimSpace(s[start:i])
		key = strings.TrimSpace(strings.TrimPrefix(key, "export "))
		if i >= len(s) || s[i] != '=' {
			return nil, fmt.Errorf("line %d: missing '='", line)
		}
		if !validEnvName(key) {
			return nil, fmt.Errorf("line %d: invalid variable name %q", line, key)
		}
		i++ // '='
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		var val []byte
		lastNonSpace := 0
	value:
		for i < len(s) {
			c := s[i]
			switch c {
			case '\n':
				break value
			case '\'':
				end := strings.IndexByte(s[i+1:], '\'')
				if end < 0 {
					return nil, fmt.Errorf("line %d: unterminated single quote", line)
				}
				val = append(val, s[i+1:i+1+end]...)
				line += strings.Count(s[i+1:i+1+end], "\n")
				i += end + 2
				lastNonSpace = len(val)
				continue
			case '"':
				i++
				for {
					if i >= len(s) {
						return nil, fmt.Errorf("line %d: unterminated double quote", line)
					}
					d := s[i]
					if d == '"' {
						i++
						break
					}
					if d == '\\' && i+1 < len(s) {
						switch s[i+1] {
						case '"', '\\', '$', '`':
							val = append(val, s[i+1])
							i += 2
							continue
						case '\n':
							line++
							i += 2
							continue
						}
					}
					if d == '\n' {
						line++
					}
					val = append(val, d)
					i++
				}
				lastNonSpace = len(val)
				continue
			case '\\':
				if i+1 < len(s) {
					if s[i+1] == '\n' {
						line++
						i += 2
						continue
					}
					val = append(val, s[i+1])
					i += 2
					lastNonSpace = len(val)
					continue
				}
				i++
				continue
			default:
				val = append(val, c)
				if c != ' ' && c != '\t' {
					lastNonSpace = len(val)
				}
				i++
			}
		}
		out = append(out, key+"="+string(val[:lastNonSpace]))
	}
	return out, nil
}
