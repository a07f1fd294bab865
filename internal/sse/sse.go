// Package sse writes server-sent events (text/event-stream, as the HTML
// standard's EventSource reads them) for the API's event stream and the
// dashboard's streams: the response head, events of "id:", "event:" and
// "data:" lines, and comment lines as keep-alives, each flushed as soon as
// it is written.
package sse

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RetryMillis is the reconnection delay Start asks of the client, in ms.
const RetryMillis = 2000

// maxKeptBuf is the largest buffer a Writer keeps between events.
const maxKeptBuf = 64 << 10

// Writer writes the events of one response. It is safe for concurrent use:
// each event or comment goes out whole.
type Writer struct {
	mu  sync.Mutex
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf []byte
}

// Start answers 200 with Content-Type text/event-stream and Cache-Control
// no-store (with the headers already set on w), lifts the server's write
// deadline for the stream, then writes and flushes the "retry:" field.
func Start(w http.ResponseWriter) *Writer {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	s := &Writer{w: w, rc: http.NewResponseController(w)}
	_ = s.rc.SetWriteDeadline(time.Time{})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf[:0], "retry: "...)
	s.buf = strconv.AppendInt(s.buf, RetryMillis, 10)
	s.buf = append(s.buf, '\n')
	_ = s.flushLocked()
	return s
}

// Event writes one event and flushes it: an "id:" line when id is not
// empty, an "event:" line when event is not empty, and one "data:" line
// for each line of data (one empty one for empty data).
func (s *Writer) Event(event, id, data string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = s.buf[:0]
	if id != "" {
		s.buf = append(s.buf, "id: "...)
		s.buf = append(s.buf, id...)
		s.buf = append(s.buf, '\n')
	}
	if event != "" {
		s.buf = append(s.buf, "event: "...)
		s.buf = append(s.buf, event...)
		s.buf = append(s.buf, '\n')
	}
	s.appendLines("data: ", data)
	return s.flushLocked()
}

// Comment writes comment lines (": text"), which clients ignore, and
// flushes them: a keep-alive on an idle stream.
func (s *Writer) Comment(text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = s.buf[:0]
	s.appendLines(": ", text)
	return s.flushLocked()
}

// appendLines appends one line, prefix first, for each line of text.
func (s *Writer) appendLines(prefix, text string) {
	for {
		line, rest, more := strings.Cut(text, "\n")
		s.buf = append(s.buf, prefix...)
		s.buf = append(s.buf, line...)
		s.buf = append(s.buf, '\n')
		if !more {
			return
		}
		text = rest
	}
}

// flushLocked ends the lines in s.buf with an empty line, writes them and
// flushes.
func (s *Writer) flushLocked() error {
	s.buf = append(s.buf, '\n')
	_, err := s.w.Write(s.buf)
	if cap(s.buf) > maxKeptBuf {
		s.buf = nil // a rare long event: not kept for the stream's life
	}
	if err != nil {
		return err
	}
	return s.rc.Flush()
}
