package lb

import (
	"bytes"
	"strconv"
	"strings"
)

// This file parses and writes HTTP/1.x message heads for the fast path
// (fast.go). Parsed heads point into the reader's buffer: they are valid
// until the buffer is advanced, so every head is written out (rewritten)
// before its bytes are discarded.

// headerField is one header line, both parts trimmed.
type headerField struct{ name, value []byte }

// headVerdict is what the fast path does with a request head.
type headVerdict int

const (
	headOK       headVerdict = iota
	headFallback             // valid, or possibly so, but for net/http (the ReverseProxy path)
	headBad                  // malformed: answer 400 and close
)

// fieldSet is what request and response heads share: the header fields
// and what they say of the body's framing and of the connection.
type fieldSet struct {
	fields        []headerField
	contentLength int64 // -1: no Content-Length
	chunked       bool  // Transfer-Encoding: chunked
	connClose     bool  // Connection: close
	connKeepAlive bool  // Connection: keep-alive
	connUpgrade   bool  // Connection: upgrade
	connNames     bool  // Connection lists other header names (dropped when forwarding)
}

// fieldKind is what addField made of a header line.
type fieldKind int

const (
	fieldOther     fieldKind = iota // a field addField does not read: the caller's
	fieldRead                       // Content-Length or Connection, recorded
	fieldChunked                    // the first Transfer-Encoding, "chunked"
	fieldOddTE                      // another Transfer-Encoding: repeated, or not "chunked"
	fieldMalformed                  // not a field, or a Content-Length malformed or differing from an earlier one
)

// addField parses a header line, appends it to s.fields and records what
// Content-Length, Transfer-Encoding (s.chunked for any) and Connection say.
// The name must be a token, the value (trimmed) without forbidden bytes.
func (s *fieldSet) addField(line []byte) (headerField, fieldKind) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		return headerField{}, fieldMalformed
	}
	f := headerField{name: line[:colon], value: trimOWS(line[colon+1:])}
	if !validFieldValue(f.value) {
		return f, fieldMalformed
	}
	s.fields = append(s.fields, f)
	switch {
	case eqFold(f.name, "content-length"):
		n, ok := parseContentLength(f.value)
		if !ok || (s.contentLength >= 0 && n != s.contentLength) {
			return f, fieldMalformed
		}
		s.contentLength = n
	case eqFold(f.name, "transfer-encoding"):
		kind := fieldChunked
		if s.chunked || !eqFold(f.value, "chunked") {
			kind = fieldOddTE
		}
		s.chunked = true
		return f, kind
	case eqFold(f.name, "connection"):
		forEachToken(f.value, func(tok []byte) {
			switch {
			case eqFold(tok, "close"):
				s.connClose = true
			case eqFold(tok, "keep-alive"):
				s.connKeepAlive = true
			case eqFold(tok, "upgrade"):
				s.connUpgrade = true
			default:
				s.connNames = true
			}
		})
	default:
		return f, fieldOther
	}
	return f, fieldRead
}

// reqHead is a parsed request head.
type reqHead struct {
	method, target []byte
	minor          int // HTTP/1.minor
	fieldSet
	host       []byte
	hasHost    bool
	teTrailers bool // TE lists "trailers"
	isHead     bool
}

// keepAlive reports whether the client wants the connection kept open.
func (h *reqHead) keepAlive() bool {
	if h.minor >= 1 {
		return !h.connClose
	}
	return h.connKeepAlive && !h.connClose
}

// findHeadEnd returns the length of the head at the start of b (through the
// empty line ending it) or -1 when b does not hold a whole head yet. from is
// where the previous, unsuccessful call stopped looking.
func findHeadEnd(b []byte, from int) int {
	i := max(from, 0)
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		}
	}
}

// nextLine splits the first line off b; the line excludes its LF and an
// optional CR before it.
func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// parseRequestHead parses head (as delimited by findHeadEnd; leading empty
// lines already skipped) into h.
func parseRequestHead(head []byte, h *reqHead) headVerdict {
	*h = reqHead{fieldSet: fieldSet{fields: h.fields[:0], contentLength: -1}}
	line, rest := nextLine(head)
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return headBad
	}
	h.method = line[:sp]
	if !isToken(h.method) {
		return headBad
	}
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return headBad
	}
	h.target = line[:sp]
	switch v := line[sp+1:]; {
	case string(v) == "HTTP/1.1":
		h.minor = 1
	case string(v) == "HTTP/1.0":
		h.minor = 0
	case len(v) == 8 && string(v[:5]) == "HTTP/" && isDigit(v[5]) && v[6] == '.' && isDigit(v[7]):
		return headFallback // HTTP/2 preface, HTTP/0.9-or-2+ claims: net/http answers
	default:
		return headBad
	}
	fallback := false
	inPath := true
	for i, c := range h.target {
		switch {
		case c <= ' ' || c == 0x7f:
			return headBad
		case c >= 0x80:
			fallback = true
		case c == '?':
			inPath = false
		case c == '%' && inPath:
			// net/http refuses invalid escapes in the path (400).
			if i+2 >= len(h.target) || !isHex(h.target[i+1]) || !isHex(h.target[i+2]) {
				return headBad
			}
		}
	}
	// Only origin-form targets ("/path?query"); "*", absolute and
	// authority forms, CONNECT and PRI go to net/http.
	if h.target[0] != '/' || string(h.method) == "CONNECT" || string(h.method) == "PRI" {
		fallback = true
	}
	h.isHead = string(h.method) == "HEAD"
	for {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			fallback = true // obsolete line folding
			continue
		}
		f, kind := h.addField(line)
		switch kind {
		case fieldOther:
			switch {
			case eqFold(f.name, "host"):
				if h.hasHost || !validHost(f.value) {
					return headBad
				}
				h.host, h.hasHost = f.value, true
			case eqFold(f.name, "upgrade"), eqFold(f.name, "expect"):
				fallback = true
			case eqFold(f.name, "te"):
				forEachToken(f.value, func(tok []byte) {
					if eqFold(tok, "trailers") {
						h.teTrailers = true
					}
				})
			}
		case fieldMalformed:
			return headBad
		case fieldOddTE:
			fallback = true // net/http answers 501
		case fieldChunked:
			fallback = fallback || h.minor == 0 // net/http ignores it (HTTP/1.0)
		}
	}
	fallback = fallback || h.connUpgrade
	if h.chunked && h.contentLength >= 0 {
		return headBad // request smuggling shape: refuse rather than guess
	}
	if h.minor == 1 && !h.hasHost {
		return headBad
	}
	if fallback {
		return headFallback
	}
	return headOK
}

// dropRules are what a head drops besides the hop-by-hop headers.
type dropRules uint8

const (
	dropTrailer   dropRules = 1 << iota // Trailer (no chunked body passed on)
	dropForwarded                       // X-Forwarded-For, -Host and -Proto: the proxy sets them
	dropLength                          // Content-Length (a chunked body)
	keepHost                            // not Host, even when the Connection header names it
)

// drop reports whether a header of s is not forwarded as is: the
// hop-by-hop headers, the ones rules drop, and the ones the Connection
// header names. Content-Length is never dropped on the Connection header's
// word: the body's framing must arrive unchanged.
func (s *fieldSet) drop(name []byte, rules dropRules) bool {
	switch len(name) {
	case 2:
		return eqFold(name, "te")
	case 7:
		return eqFold(name, "upgrade") || (eqFold(name, "trailer") && rules&dropTrailer != 0)
	case 10:
		if eqFold(name, "connection") || eqFold(name, "keep-alive") {
			return true
		}
	case 14:
		if rules&dropLength != 0 && eqFold(name, "content-length") {
			return true
		}
	case 15:
		if rules&dropForwarded != 0 && eqFold(name, "x-forwarded-for") {
			return true
		}
	case 16:
		if eqFold(name, "proxy-connection") || (rules&dropForwarded != 0 && eqFold(name, "x-forwarded-host")) {
			return true
		}
	case 17:
		if eqFold(name, "transfer-encoding") || (rules&dropForwarded != 0 && eqFold(name, "x-forwarded-proto")) {
			return true
		}
	case 18:
		if eqFold(name, "proxy-authenticate") {
			return true
		}
	case 19:
		if eqFold(name, "proxy-authorization") {
			return true
		}
	}
	return s.connNames && !eqFold(name, "content-length") && (rules&keepHost == 0 || !eqFold(name, "host")) &&
		namedByConnection(s.fields, name)
}

// dropRules are the rules of the request headers not forwarded as is:
// besides the hop-by-hop ones, those the proxy sets itself; Host is kept
// even when the Connection header names it.
func (h *reqHead) dropRules() dropRules {
	rules := dropForwarded | keepHost
	if !h.chunked {
		rules |= dropTrailer
	}
	return rules
}

// namedByConnection reports whether a Connection header in fields lists
// name.
func namedByConnection(fields []headerField, name []byte) bool {
	found := false
	for _, f := range fields {
		if eqFold(f.name, "connection") {
			forEachToken(f.value, func(tok []byte) {
				if bytes.EqualFold(tok, name) {
					found = true
				}
			})
		}
	}
	return found
}

// appendRequestHead appends the head sent to the backend: the request line
// in HTTP/1.1, the client's headers without the hop-by-hop ones, the Host
// kept (the backend's address when it is empty or, in HTTP/1.0, missing), the
// chunked framing when the body is chunked, and X-Forwarded-For (appended
// to the client's), -Host and -Proto.
func appendRequestHead(out []byte, h *reqHead, clientIP, backendAddr string) []byte {
	out = append(out, h.method...)
	out = append(out, ' ')
	out = append(out, h.target...)
	out = append(out, " HTTP/1.1\r\n"...)
	rules := h.dropRules()
	for _, f := range h.fields {
		if h.drop(f.name, rules) || (len(f.value) == 0 && eqFold(f.name, "host")) {
			continue
		}
		out = appendField(out, f.name, f.value)
	}
	if len(h.host) == 0 {
		out = append(out, "Host: "...)
		out = append(out, backendAddr...)
		out = append(out, "\r\n"...)
	}
	if h.chunked {
		out = append(out, "Transfer-Encoding: chunked\r\n"...)
	}
	if h.teTrailers {
		out = append(out, "Te: trailers\r\n"...)
	}
	out = append(out, "X-Forwarded-For: "...)
	for _, f := range h.fields {
		if eqFold(f.name, "x-forwarded-for") {
			out = append(out, f.value...)
			out = append(out, ", "...)
		}
	}
	out = append(out, clientIP...)
	out = append(out, "\r\n"...)
	if len(h.host) > 0 {
		out = appendField(out, []byte("X-Forwarded-Host"), h.host)
	}
	out = append(out, "X-Forwarded-Proto: http\r\n\r\n"...)
	return out
}

func appendField(out, name, value []byte) []byte {
	out = append(out, name...)
	out = append(out, ": "...)
	out = append(out, value...)
	return append(out, "\r\n"...)
}

// respHead is a parsed response head.
type respHead struct {
	minor      int
	status     int
	statusText []byte // "200 OK": the status line after the version
	fieldSet
}

// errBadResponse is a response head the fast path cannot forward.
const errBadResponse = constError("malformed or unsupported response head from backend")

// parseResponseHead parses a response head as delimited by findHeadEnd.
func parseResponseHead(head []byte, h *respHead) error {
	*h = respHead{fieldSet: fieldSet{fields: h.fields[:0], contentLength: -1}}
	line, rest := nextLine(head)
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
		!isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) || (len(line) > 12 && line[12] != ' ') {
		return errBadResponse
	}
	h.minor = int(line[7] - '0')
	h.status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	if h.status < 100 {
		return errBadResponse
	}
	h.statusText = line[9:]
	if !validFieldValue(h.statusText) {
		return errBadResponse
	}
	for {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		if _, kind := h.addField(line); kind == fieldMalformed || kind == fieldOddTE {
			return errBadResponse
		}
	}
	// Connection's "upgrade" (connUpgrade) is not in connNames: the
	// Upgrade header is dropped anyway.
	if h.chunked {
		h.contentLength = -1 // Transfer-Encoding wins (RFC 9112 6.3)
	}
	return nil
}

// reusable reports whether the backend keeps the connection open after
// this response.
func (h *respHead) reusable() bool {
	if h.connClose {
		return false
	}
	return h.minor >= 1 || h.connKeepAlive
}

// dropRules are the rules of the response headers not forwarded as is:
// besides the hop-by-hop ones, Content-Length with a chunked body, and
// Trailer unless the chunked body is passed on (passChunked).
func (h *respHead) dropRules(passChunked bool) dropRules {
	var rules dropRules
	if !passChunked {
		rules |= dropTrailer
	}
	if h.chunked {
		rules |= dropLength
	}
	return rules
}

// parseContentLength accepts 1 to 18 decimal digits.
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseChunkSize parses a chunk-size line without its line end: hex
// digits, optional white space and an optional extension (ignored).
func parseChunkSize(line []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			goto rest
		}
		if i >= 15 {
			return 0, false
		}
		n = n<<4 | int64(d)
	}
rest:
	if i == 0 {
		return 0, false
	}
	for ; i < len(line) && (line[i] == ' ' || line[i] == '\t'); i++ {
	}
	if i < len(line) && (line[i] != ';' || !validFieldValue(line[i:])) {
		return 0, false
	}
	return n, true
}

func appendChunkSize(out []byte, n int64) []byte {
	out = strconv.AppendInt(out, n, 16)
	return append(out, "\r\n"...)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') }

// isTokenChar reports whether c is an RFC 9110 tchar.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTokenChar(c) {
			return false
		}
	}
	return true
}

// validFieldValue rejects control characters other than HTAB.
func validFieldValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost accepts the characters of a URI host[:port], as net/http does.
func validHost(b []byte) bool {
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!$%&'()*+,-.:;=[]_~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// forEachToken calls f with every non-empty, trimmed element of a
// comma-separated list.
func forEachToken(v []byte, f func([]byte)) {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		if tok = trimOWS(tok); len(tok) > 0 {
			f(tok)
		}
	}
}

// eqFold compares b with the lower-case ASCII string s, ignoring case.
func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
