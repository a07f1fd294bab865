package unitfile

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/fleetd/fleet/internal/fleet"
)

// MaxSize is the largest unit file Parse accepts, in bytes.
const MaxSize = 1 << 20

// MaxLineLength is the longest physical line Parse accepts, in bytes,
// excluding the line terminator. go-systemd rejects lines of 2048 bytes and
// more ("line too long (max 2048 bytes)"), but only when its read buffer
// happens to hold that much; Parse applies the limit to every line so the
// outcome does not depend on where a line falls in the file.
const MaxLineLength = unit.SYSTEMD_LINE_MAX - 1

// utf8BOM is the byte order mark some editors put at the start of a file.
const utf8BOM = "\uFEFF"

// ParseError is the error Parse returns for a malformed unit file. Line is
// the 1-based line the problem is on, or 0 when it concerns the whole file.
type ParseError struct {
	Line int
	Msg  string
	Err  error // go-systemd's error, when it found the problem
}

// Unwrap returns go-systemd's error, if any.
func (e *ParseError) Unwrap() error { return e.Err }

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

func fileErr(format string, args ...any) error {
	return &ParseError{Msg: fmt.Sprintf(format, args...)}
}

func lineErr(line int, format string, args ...any) error {
	return &ParseError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// Parse parses a unit file into its options, in file order (duplicate keys
// and repeated sections are kept as they appear). Values are exactly what
// go-systemd's unit.DeserializeOptions returns for the file (continuation
// lines keep their backslash and newline), so Hash gives fleet's hash. See
// the package documentation for the rules.
func Parse(data []byte) ([]fleet.UnitOption, error) {
	if len(data) > MaxSize {
		return nil, fileErr("unit file is %d bytes; the limit is %d", len(data), MaxSize)
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, lineErr(lineOf(data, i), "unit file contains a NUL byte (binary data is not a unit file)")
	}
	if !utf8.Valid(data) {
		return nil, lineErr(lineOf(data, invalidUTF8At(data)), "unit file is not valid UTF-8 (binary data is not a unit file)")
	}
	text := strings.TrimPrefix(string(data), utf8BOM)
	if strings.TrimSpace(text) == "" {
		return nil, fileErr("unit file is empty")
	}
	clean, err := preprocess(text)
	if err != nil {
		return nil, err
	}
	raw, err := unit.DeserializeOptions(strings.NewReader(clean))
	if err != nil {
		// preprocess rejects everything go-systemd is known to reject, with
		// a line number; this is a safety net.
		return nil, &ParseError{Msg: "unit file: " + err.Error(), Err: err}
	}
	if len(raw) == 0 {
		return nil, fileErr("unit file has no options (sections without Key=Value lines)")
	}
	opts := make([]fleet.UnitOption, len(raw))
	for i, o := range raw {
		opts[i] = fleet.UnitOption{Section: o.Section, Name: o.Name, Value: o.Value}
	}
	return opts, nil
}

// preprocess checks text line by line the way go-systemd's lexer will read
// it, reporting problems with their line number, and returns what go-systemd
// should see: CRLF line ends turned into LF, comment lines removed (also
// those inside a backslash continuation, which systemd skips), and a final
// newline.
func preprocess(text string) (string, error) {
	var out strings.Builder
	out.Grow(len(text) + 1)
	lines := strings.Split(text, "\n")
	if lines[len(lines)-1] == "" {
		// text ended with a newline; there is no line after it.
		lines = lines[:len(lines)-1]
	}
	inSection := false
	continuation := false
	for i, line := range lines {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if len(line) > MaxLineLength {
			return "", lineErr(n, "line is %d bytes; the limit is %d", len(line), MaxLineLength)
		}
		content := strings.TrimLeftFunc(line, unicode.IsSpace)
		if isComment(content) {
			// systemd ignores comment lines everywhere, also inside a
			// continuation, and a comment never continues onto the next line.
			continue
		}
		switch {
		case continuation:
			// A value line: anything goes. A blank line ends the value, as
			// does a line not ending in a backslash.
			if content == "" {
				continuation = false
				break
			}
			continuation = strings.HasSuffix(line, `\`)
			if !continuation && danglingBackslash(line) {
				return "", lineErr(n, danglingBackslashMsg)
			}
		case content == "":
			// blank line
		case content[0] == '[':
			end := strings.IndexByte(content, ']')
			if end < 0 {
				return "", lineErr(n, "unable to find end of section header %s (missing ']')", excerpt(content))
			}
			name := content[1:end]
			if rest := strings.TrimSpace(content[end+1:]); rest != "" {
				return "", lineErr(n, "found garbage after section header [%s]: %s", name, excerpt(rest))
			}
			if strings.TrimSpace(name) == "" {
				return "", lineErr(n, "empty section name %s", excerpt(content))
			}
			inSection = true
		case !inSection:
			return "", lineErr(n, "%s comes before the first [Section] header", excerpt(content))
		default:
			eq := strings.IndexByte(content, '=')
			if eq < 0 {
				return "", lineErr(n, "%s is not a Key=Value line (missing '=')", excerpt(content))
			}
			key := strings.TrimSpace(content[:eq])
			if key == "" {
				return "", lineErr(n, "option without a name: %s", excerpt(content))
			}
			if strings.ContainsRune(key, '\r') {
				return "", lineErr(n, "option name %q contains a carriage return", key)
			}
			rest := content[eq+1:]
			continuation = strings.TrimSpace(rest) != "" && strings.HasSuffix(rest, `\`)
			if !continuation && danglingBackslash(rest) {
				return "", lineErr(n, danglingBackslashMsg)
			}
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	if !inSection {
		return "", fileErr("unit file has no [Section] header")
	}
	return out.String(), nil
}

// danglingBackslashMsg explains a danglingBackslash.
const danglingBackslashMsg = "the line ends in a backslash followed by white space: remove the white space to continue the value on the next line, or remove the backslash"

// danglingBackslash reports whether the last line of a value ends in a
// backslash followed by white space. go-systemd ends the value there and
// trims the white space; the value would then end in a backslash, which
// Serialize writes as a continuation swallowing the next line.
func danglingBackslash(s string) bool {
	return strings.HasSuffix(strings.TrimRightFunc(s, unicode.IsSpace), `\`)
}

// isComment reports whether a line, with its leading white space removed, is
// a comment.
func isComment(content string) bool {
	return content != "" && (content[0] == '#' || content[0] == ';')
}

// excerpt quotes s for an error message, shortened to 60 bytes.
func excerpt(s string) string {
	const max = 60
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q...", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}

// lineOf returns the 1-based line number of byte offset off in data.
func lineOf(data []byte, off int) int {
	return bytes.Count(data[:off], []byte{'\n'}) + 1
}

// invalidUTF8At returns the offset of the first invalid UTF-8 sequence.
func invalidUTF8At(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(data)
}
