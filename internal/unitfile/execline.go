package unitfile

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// isSpace reports whether c separates words (systemd's WHITESPACE).
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SplitWords splits a command line or an Environment= value into words the
// way systemd does: words are separated by white space; double and single
// quotes group (and may be glued to unquoted text: a"b c"d is one word);
// backslash escapes (\a \b \f \n \r \t \v \s, \xNN, octal \NNN, \uXXXX,
// \UXXXXXXXX, and "\c" for any other c) are decoded inside and outside
// quotes. An unterminated quote, a malformed escape or a trailing lone
// backslash is an error. Specifiers and $VARIABLES are not expanded.
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

// JoinWords quotes each word and joins them with spaces: SplitWords gives
// the words back.
func JoinWords(ws []string) string {
	q := make([]string, len(ws))
	for i, w := range ws {
		q[i] = QuoteWord(w)
	}
	return strings.Join(q, " ")
}

// ExecPrefix is the meaning of the special characters that may start an
// Exec*= line (systemd.service(5), "Command lines").
type ExecPrefix struct {
	IgnoreFailure bool // "-": a failure (exit status, signal, missing file) is ignored
	Argv0         bool // "@": the second word is argv[0], the first the executable
	NoEnv         bool // ":": no $VARIABLE substitution
}

// ParseExecPrefix strips the prefix characters "-", "@", ":", "+", "!"
// and "|" (in any order and number) from the start of an Exec*= line and
// returns their meaning and the rest of the line. "+", "!", "!!" and "|"
// are accepted and have no effect.
func ParseExecPrefix(line string) (ExecPrefix, string) {
	var p ExecPrefix
	for len(line) > 0 {
		switch line[0] {
		case '-':
			p.IgnoreFailure = true
		case '@':
			p.Argv0 = true
		case ':':
			p.NoEnv = true
		case '+', '!', '|':
		default:
			return p, line
		}
		line = line[1:]
	}
	return p, line
}

// SplitExecLine splits an Exec*= value (continuations already joined, see
// JoinContinuations) into its prefix and its words (SplitWords). A line
// without a word after the prefix is an error ("empty command"), as is
// one SplitWords refuses. Specifiers and $VARIABLES are not expanded:
// the runner expands specifiers before splitting and variables after.
func SplitExecLine(v string) (ExecPrefix, []string, error) {
	p, rest := ParseExecPrefix(v)
	words, err := SplitWords(rest)
	if err != nil {
		return p, nil, err
	}
	if len(words) == 0 {
		return p, nil, errors.New("empty command")
	}
	return p, words, nil
}
