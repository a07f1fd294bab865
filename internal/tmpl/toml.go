package tmpl

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// tomlKind is the type of a parsed TOML value.
type tomlKind int

const (
	tomlString tomlKind = iota
	tomlInt
	tomlStringArray
)

func (k tomlKind) String() string {
	switch k {
	case tomlString:
		return "string"
	case tomlInt:
		return "integer"
	case tomlStringArray:
		return "array of strings"
	}
	return "unknown"
}

// tomlValue is one value of the supported TOML subset.
type tomlValue struct {
	kind tomlKind
	str  string
	num  int64
	strs []string
	line int // line of the key
}

// tomlDoc maps table name → key → value. Keys before any table header live
// under the table name "".
type tomlDoc map[string]map[string]tomlValue

// tomlError is a parse error carrying the file name and line.
type tomlError struct {
	file string
	line int
	msg  string
}

func (e *tomlError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg)
	}
	return fmt.Sprintf("%s: %s", e.file, e.msg)
}

// parseTOML parses the subset of TOML used by template resources: comments,
// [table] headers, bare or quoted keys, and values that are basic or literal
// strings (single- or multi-line), integers, or arrays of strings (which may
// span lines and end with a trailing comma). Anything else is an error that
// names file and line.
func parseTOML(file string, data []byte) (tomlDoc, error) {
	if !utf8.Valid(data) {
		return nil, &tomlError{file: file, msg: "not valid UTF-8"}
	}
	p := &tomlParser{file: file, src: string(data), line: 1}
	return p.parse()
}

type tomlParser struct {
	file string
	src  string
	pos  int
	line int
}

func (p *tomlParser) errf(format string, args ...any) error {
	return &tomlError{file: p.file, line: p.line, msg: fmt.Sprintf(format, args...)}
}

func (p *tomlParser) eof() bool { return p.pos >= len(p.src) }

func (p *tomlParser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.src[p.pos]
}

// skipSpace skips blanks (not newlines).
func (p *tomlParser) skipSpace() {
	for !p.eof() && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
		p.pos++
	}
}

// skipComment skips a comment up to (not including) the newline.
func (p *tomlParser) skipComment() {
	if p.peek() != '#' {
		return
	}
	for !p.eof() && p.src[p.pos] != '\n' {
		p.pos++
	}
}

// endOfLine consumes trailing blanks, an optional comment and the newline (or EOF).
func (p *tomlParser) endOfLine() error {
	p.skipSpace()
	p.skipComment()
	if p.eof() {
		return nil
	}
	if p.src[p.pos] == '\r' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '\n' {
		p.pos++
	}
	if p.src[p.pos] != '\n' {
		return p.errf("unexpected %q after value", p.rest())
	}
	p.pos++
	p.line++
	return nil
}

// rest returns the remainder of the current line, for messages.
func (p *tomlParser) rest() string {
	end := strings.IndexByte(p.src[p.pos:], '\n')
	if end < 0 {
		end = len(p.src) - p.pos
	}
	s := strings.TrimRight(p.src[p.pos:p.pos+end], "\r")
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return s
}

func (p *tomlParser) parse() (tomlDoc, error) {
	doc := tomlDoc{"": {}}
	table := ""
	for !p.eof() {
		p.skipSpace()
		switch c := p.peek(); {
		case c == '#' || c == '\n' || c == '\r' || c == 0:
			if err := p.endOfLine(); err != nil {
				return nil, err
			}
		case c == '[':
			p.pos++
			if p.peek() == '[' {
				return nil, p.errf("arrays of tables ([[...]]) are not supported")
			}
			p.skipSpace()
			name, err := p.key()
			if err != nil {
				return nil, err
			}
			p.skipSpace()
			if p.peek() != ']' {
				return nil, p.errf("expected ] after table name %q", name)
			}
			p.pos++
			if _, dup := doc[name]; dup && name != "" {
				return nil, p.errf("table [%s] defined twice", name)
			}
			doc[name] = map[string]tomlValue{}
			table = name
			if err := p.endOfLine(); err != nil {
				return nil, err
			}
		default:
			line := p.line
			k, err := p.key()
			if err != nil {
				return nil, err
			}
			p.skipSpace()
			if p.peek() != '=' {
				return nil, p.errf("expected = after key %q", k)
			}
			p.pos++
			p.skipSpace()
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			v.line = line
			if _, dup := doc[table][k]; dup {
				return nil, &tomlError{file: p.file, line: line, msg: fmt.Sprintf("key %q defined twice", k)}
			}
			doc[table][k] = v
			if err := p.endOfLine(); err != nil {
				return nil, err
			}
		}
	}
	return doc, nil
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// key parses a bare or quoted key. Dotted keys are not supported.
func (p *tomlParser) key() (string, error) {
	switch p.peek() {
	case '"':
		return p.basicString()
	case '\'':
		return p.literalString()
	}
	start := p.pos
	for !p.eof() && isBareKeyChar(p.src[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return "", p.errf("expected a key, found %q", p.rest())
	}
	if p.peek() == '.' {
		return "", p.errf("dotted keys are not supported")
	}
	return p.src[start:p.pos], nil
}

func (p *tomlParser) value() (tomlValue, error) {
	c := p.peek()
	switch {
	case c == '"' || c == '\'':
		s, err := p.stringValue()
		return tomlValue{kind: tomlString, str: s}, err
	case c == '[':
		a, err := p.array()
		return tomlValue{kind: tomlStringArray, strs: a}, err
	case c == '+' || c == '-' || c >= '0' && c <= '9':
		return p.integer()
	case c == 0 || c == '\n' || c == '\r' || c == '#':
		return tomlValue{}, p.errf("missing value")
	}
	word := p.rest()
	if strings.HasPrefix(word, "true") || strings.HasPrefix(word, "false") {
		return tomlValue{}, p.errf("booleans are not supported here (found %q)", word)
	}
	return tomlValue{}, p.errf("unsupported value %q (want a string, an integer or an array of strings)", word)
}

func (p *tomlParser) integer() (tomlValue, error) {
	start := p.pos
	for !p.eof() {
		c := p.src[p.pos]
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '#' || c == ',' || c == ']' {
			break
		}
		p.pos++
	}
	lit := p.src[start:p.pos]
	clean := strings.ReplaceAll(lit, "_", "")
	if strings.Contains(lit, "__") || strings.HasPrefix(lit, "_") || strings.HasSuffix(lit, "_") {
		return tomlValue{}, p.errf("invalid integer %q", lit)
	}
	digits := strings.TrimLeft(clean, "+-")
	if len(digits) > 1 && digits[0] == '0' && digits[1] >= '0' && digits[1] <= '9' {
		return tomlValue{}, p.errf("invalid integer %q: leading zeros are not allowed (write mode as a string, e.g. \"0644\")", lit)
	}
	n, err := strconv.ParseInt(clean, 0, 64)
	if err != nil {
		return tomlValue{}, p.errf("invalid integer %q", lit)
	}
	return tomlValue{kind: tomlInt, num: n}, nil
}

func (p *tomlParser) stringValue() (string, error) {
	if strings.HasPrefix(p.src[p.pos:], `"""`) {
		return p.multiBasic()
	}
	if strings.HasPrefix(p.src[p.pos:], `'''`) {
		return p.multiLiteral()
	}
	if p.peek() == '"' {
		return p.basicString()
	}
	return p.literalString()
}

// array parses ["a", "b", ...] possibly over several lines with comments.
func (p *tomlParser) array() ([]string, error) {
	p.pos++ // [
	out := []string{}
	for {
		if err := p.skipArraySpace(); err != nil {
			return nil, err
		}
		if p.peek() == ']' {
			p.pos++
			return out, nil
		}
		c := p.peek()
		if c != '"' && c != '\'' {
			if p.eof() {
				return nil, p.errf("unterminated array")
			}
			return nil, p.errf("arrays may only hold strings, found %q", p.rest())
		}
		s, err := p.stringValue()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		if err := p.skipArraySpace(); err != nil {
			return nil, err
		}
		switch p.peek() {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return out, nil
		default:
			if p.eof() {
				return nil, p.errf("unterminated array")
			}
			return nil, p.errf("expected , or ] in array, found %q", p.rest())
		}
	}
}

// skipArraySpace skips blanks, newlines and comments inside an array.
func (p *tomlParser) skipArraySpace() error {
	for !p.eof() {
		switch p.src[p.pos] {
		case ' ', '\t', '\r':
			p.pos++
		case '\n':
			p.pos++
			p.line++
		case '#':
			p.skipComment()
		default:
			return nil
		}
	}
	return nil
}

func (p *tomlParser) basicString() (string, error) {
	p.pos++ // "
	var b strings.Builder
	for {
		if p.eof() || p.src[p.pos] == '\n' {
			return "", p.errf("unterminated string")
		}
		c := p.src[p.pos]
		switch c {
		case '"':
			p.pos++
			return b.String(), nil
		case '\\':
			if err := p.escape(&b); err != nil {
				return "", err
			}
		default:
			if c < 0x20 && c != '\t' || c == 0x7f {
				return "", p.errf("control character %#x in string", c)
			}
			b.WriteByte(c)
			p.pos++
		}
	}
}

// escape handles a backslash escape at p.pos and writes the result.
func (p *tomlParser) escape(b *strings.Builder) error {
	p.pos++ // backslash
	if p.eof() {
		return p.errf("unterminated escape")
	}
	c := p.src[p.pos]
	p.pos++
	switch c {
	case 'b':
		b.WriteByte('\b')
	case 't':
		b.WriteByte('\t')
	case 'n':
		b.WriteByte('\n')
	case 'f':
		b.WriteByte('\f')
	case 'r':
		b.WriteByte('\r')
	case 'e':
		b.WriteByte(0x1b)
	case '"':
		b.WriteByte('"')
	case '\\':
		b.WriteByte('\\')
	case 'u', 'U':
		n := 4
		if c == 'U' {
			n = 8
		}
		if p.pos+n > len(p.src) {
			return p.errf("short unicode escape")
		}
		v, err := strconv.ParseUint(p.src[p.pos:p.pos+n], 16, 32)
		if err != nil || !utf8.ValidRune(rune(v)) {
			return p.errf("invalid unicode escape \\%c%s", c, p.src[p.pos:p.pos+n])
		}
		b.WriteRune(rune(v))
		p.pos += n
	default:
		return p.errf("invalid escape \\%c", c)
	}
	return nil
}

func (p *tomlParser) literalString() (string, error) {
	p.pos++ // '
	start := p.pos
	for {
		if p.eof() || p.src[p.pos] == '\n' {
			return "", p.errf("unterminated string")
		}
		if p.src[p.pos] == '\'' {
			s := p.src[start:p.pos]
			p.pos++
			return s, nil
		}
		p.pos++
	}
}

// skipFirstNewline drops a newline right after the opening delimiter of a
// multi-line string.
func (p *tomlParser) skipFirstNewline() {
	if strings.HasPrefix(p.src[p.pos:], "\r\n") {
		p.pos += 2
		p.line++
	} else if p.peek() == '\n' {
		p.pos++
		p.line++
	}
}

func (p *tomlParser) multiBasic() (string, error) {
	p.pos += 3
	p.skipFirstNewline()
	var b strings.Builder
	for {
		if p.eof() {
			return "", p.errf("unterminated multi-line string")
		}
		if strings.HasPrefix(p.src[p.pos:], `"""`) {
			p.pos += 3
			// Up to two extra quotes belong to the content.
			for i := 0; i < 2 && p.peek() == '"'; i++ {
				b.WriteByte('"')
				p.pos++
			}
			return b.String(), nil
		}
		c := p.src[p.pos]
		switch {
		case c == '\\':
			// Line-ending backslash trims the newline and following whitespace.
			j := p.pos + 1
			for j < len(p.src) && (p.src[j] == ' ' || p.src[j] == '\t' || p.src[j] == '\r') {
				j++
			}
			if j < len(p.src) && p.src[j] == '\n' {
				p.pos = j
				for !p.eof() && strings.ContainsRune(" \t\r\n", rune(p.src[p.pos])) {
					if p.src[p.pos] == '\n' {
						p.line++
					}
					p.pos++
				}
				continue
			}
			if err := p.escape(&b); err != nil {
				return "", err
			}
		case c == '\n':
			b.WriteByte(c)
			p.pos++
			p.line++
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
}

func (p *tomlParser) multiLiteral() (string, error) {
	p.pos += 3
	p.skipFirstNewline()
	start := p.pos
	end := strings.Index(p.src[p.pos:], `'''`)
	if end < 0 {
		return "", p.errf("unterminated multi-line string")
	}
	end += p.pos
	// Up to two extra quotes belong to the content.
	extra := 0
	for extra < 2 && end+3+extra < len(p.src) && p.src[end+3+extra] == '\'' {
		extra++
	}
	s := p.src[start : end+extra]
	p.line += strings.Count(s, "\n")
	p.pos = end + 3 + extra
	return s, nil
}
