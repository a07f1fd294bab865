package exec

import (
	"fmt"
	"strings"

	"github.com/fleetd/fleet/internal/unitfile"
)

// systemd's value primitives (time spans, booleans, continuations, unit
// names, specifiers, Exec-line splitting) live in internal/unitfile; this
// file adapts them to the runner's types and keeps what only the runner
// does: $VARIABLE expansion and environment files.

// SplitWords is unitfile.SplitWords: a command line or an Environment=
// value split into words as systemd does.
func SplitWords(s string) ([]string, error) { return unitfile.SplitWords(s) }

// execPrefix holds the meaning of an Exec*= line's leading special
// characters (unitfile.ExecPrefix).
type execPrefix struct {
	ignoreFailure bool // -
	argv0         bool // @: the second word is argv[0]
	noEnv         bool // :: no environment variable substitution
}

// parseExecPrefix strips the "-@:+!|" prefix (unitfile.ParseExecPrefix).
func parseExecPrefix(s string) (execPrefix, string) {
	p, rest := unitfile.ParseExecPrefix(s)
	return execPrefix{ignoreFailure: p.IgnoreFailure, argv0: p.Argv0, noEnv: p.NoEnv}, rest
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

// specifiers are the values %-specifiers expand to (see
// unitfile.ExpandSpecifiers).
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

// expand replaces %-specifiers in s (unitfile.ExpandSpecifiers). Unknown
// specifiers are kept as they are.
func (sp specifiers) expand(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	return unitfile.ExpandSpecifiers(s, unitfile.Specifiers{
		Unit:      sp.name,
		Hostname:  sp.hostname,
		MachineID: sp.machineID,
		BootID:    sp.bootID,
		User:      sp.user,
		UID:       sp.uid,
		Home:      sp.home,
		Shell:     sp.shell,
	})
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
