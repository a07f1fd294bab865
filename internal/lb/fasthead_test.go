package lb

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
)

// FuzzParseRequestHead checks the fast path's request-head parser against
// net/http: whatever it accepts, net/http reads the same way (method,
// target, Host, body framing), and the head it forwards is valid, frames
// the body the same way and carries no hop-by-hop header.
func FuzzParseRequestHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"GET /a?b=%zz HTTP/1.1\r\nHost: x:80\r\nUser-Agent: wrk\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
		"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive, X-A\r\nX-A: 1\r\nKeep-Alive: 5\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nConnection: content-length\r\nContent-Length: 2\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\nTE: trailers, gzip\r\n\r\n",
		"GET / HTTP/1.1\nHost: x\n\n",
		"GET /%41 HTTP/1.1\r\nHost: [::1]:80\r\nProxy-Authorization: x\r\nUpgrade: h2c\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		end := findHeadEnd(data, 0)
		if end < 0 {
			return
		}
		head := data[:end]
		var h reqHead
		if parseRequestHead(head, &h) != headOK {
			return
		}
		if !isToken(h.method) || len(h.target) == 0 || h.target[0] != '/' || (h.chunked && h.contentLength >= 0) {
			t.Fatalf("accepted an invalid head: %q", head)
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("accepted %q, net/http refuses it: %v", head, err)
		}
		checkSame(t, "client head", head, &h, req)
		if h.hasHost && req.Host != string(h.host) {
			t.Fatalf("%q: Host %q, net/http %q", head, h.host, req.Host)
		}

		out := appendRequestHead(nil, &h, "192.0.2.1", "10.0.0.1:80")
		fwd, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(out)))
		if err != nil {
			t.Fatalf("forwarded head of %q does not parse: %v\n%q", head, err, out)
		}
		checkSame(t, "forwarded head", out, &h, fwd)
		if fwd.ProtoMinor != 1 || fwd.Host == "" {
			t.Fatalf("forwarded %q: %s, Host %q", out, fwd.Proto, fwd.Host)
		}
		if len(h.host) > 0 && fwd.Host != string(h.host) {
			t.Fatalf("forwarded %q: Host %q, want %q", out, fwd.Host, h.host)
		}
		for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Upgrade", "Proxy-Authorization"} {
			if _, ok := fwd.Header[k]; ok {
				t.Fatalf("forwarded %q keeps %s", out, k)
			}
		}
		if xff := fwd.Header.Get("X-Forwarded-For"); !strings.HasSuffix(xff, "192.0.2.1") || len(fwd.Header["X-Forwarded-For"]) != 1 {
			t.Fatalf("forwarded %q: X-Forwarded-For %q", out, fwd.Header["X-Forwarded-For"])
		}
	})
}

// checkSame compares what net/http read from head with the parsed h.
func checkSame(t *testing.T, what string, head []byte, h *reqHead, req *http.Request) {
	t.Helper()
	if req.Method != string(h.method) || req.RequestURI != string(h.target) {
		t.Fatalf("%s %q: %s %s, net/http %s %s", what, head, h.method, h.target, req.Method, req.RequestURI)
	}
	chunked := len(req.TransferEncoding) == 1 && req.TransferEncoding[0] == "chunked"
	if chunked != h.chunked {
		t.Fatalf("%s %q: chunked %v, net/http %v", what, head, h.chunked, req.TransferEncoding)
	}
	if !h.chunked && req.ContentLength != max(h.contentLength, 0) {
		t.Fatalf("%s %q: Content-Length %d, net/http %d", what, head, h.contentLength, req.ContentLength)
	}
}

func TestParseRequestHeadVerdicts(t *testing.T) {
	for _, c := range []struct {
		head string
		want headVerdict
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", headOK},
		{"GET / HTTP/1.0\r\n\r\n", headOK},
		{"GET /a%2Fb?q=%zz HTTP/1.1\r\nHost: x\r\n\r\n", headOK},
		{"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", headBad},
		{"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", headFallback},
		{"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", headFallback},
		{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", headFallback},
		{"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", headFallback},
		{"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", headFallback},
		{"PRI * HTTP/2.0\r\n\r\n", headFallback},
		{"GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", headFallback},
		{"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", headFallback},
		{"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", headBad},
		{"GET / HTTP/1.1\r\nHost : x\r\n\r\n", headBad},
	} {
		var h reqHead
		if got := parseRequestHead([]byte(c.head), &h); got != c.want {
			t.Errorf("%q: verdict %d, want %d", c.head, got, c.want)
		}
	}
	// Connection may not strip the body's framing.
	var h reqHead
	head := "POST / HTTP/1.1\r\nHost: x\r\nConnection: Content-Length, X-A\r\nX-A: 1\r\nContent-Length: 2\r\n\r\n"
	if parseRequestHead([]byte(head), &h) != headOK {
		t.Fatal("not parsed")
	}
	out := string(appendRequestHead(nil, &h, "192.0.2.1", "b:80"))
	if !strings.Contains(out, "Content-Length: 2\r\n") || strings.Contains(out, "X-A") {
		t.Fatalf("forwarded %q", out)
	}
}

func BenchmarkParseRequestHead(b *testing.B) {
	head := []byte("GET /index.html?x=1 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: bench\r\nAccept: */*\r\nAccept-Encoding: gzip\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n")
	var h reqHead
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		if parseRequestHead(head, &h) != headOK {
			b.Fatal("not ok")
		}
		out = appendRequestHead(out[:0], &h, "127.0.0.1", "10.0.0.1:80")
	}
}

// BenchmarkParseResponseHead parses a backend's head and picks the fields
// forwarded to the client, as writeRespHead does.
func BenchmarkParseResponseHead(b *testing.B) {
	head := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1024\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nServer: bench\r\n\r\n")
	var h respHead
	b.ReportAllocs()
	kept := 0
	for b.Loop() {
		if err := parseResponseHead(head, &h); err != nil {
			b.Fatal(err)
		}
		rules := h.dropRules(false)
		for _, f := range h.fields {
			if !h.drop(f.name, rules) {
				kept++
			}
		}
	}
	if kept == 0 {
		b.Fatal("every field dropped")
	}
}

// FuzzCopyChunked checks the chunked re-framing against net/http's
// decoder: what copyChunked accepts, net/http decodes to the same data, and
// the re-framed copy decodes to that data too (stripped: is that data).
func FuzzCopyChunked(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"3;ext=\"x\"\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
		"a \r\n0123456789\r\n0\n\n",
		"1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
		"fffffffffffffff\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		bw := bufio.NewWriter(&out)
		src := bufio.NewReaderSize(bytes.NewReader(data), 64)
		if err := copyChunked(bw, src, false); err != nil {
			return
		}
		bw.Flush()
		want, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(data)))
		if err != nil {
			t.Fatalf("accepted %q, net/http's decoder says %v", data, err)
		}
		got, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(out.Bytes())))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("re-framed %q as %q: decodes to %q (%v), want %q", data, out.Bytes(), got, err, want)
		}
		var raw bytes.Buffer
		rw := bufio.NewWriter(&raw)
		if err := copyChunked(rw, bufio.NewReaderSize(bytes.NewReader(data), 64), true); err != nil {
			t.Fatalf("strip mode refuses what copy mode took: %v", err)
		}
		rw.Flush()
		if !bytes.Equal(raw.Bytes(), want) {
			t.Fatalf("stripped %q to %q, want %q", data, raw.Bytes(), want)
		}
	})
}
