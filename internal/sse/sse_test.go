package sse

import (
	"bufio"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestWriter(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("X-Accel-Buffering", "no")
	s := Start(rec)
	if rec.Code != http.StatusOK || !rec.Flushed || rec.Body.String() != "retry: 2000\n\n" {
		t.Fatalf("code %d, flushed %v, body %q", rec.Code, rec.Flushed, rec.Body)
	}
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	steps := []struct {
		write func() error
		want  string
	}{
		{func() error { return s.Event("fleet", "42", `{"a":1}`) }, "id: 42\nevent: fleet\ndata: {\"a\":1}\n\n"},
		{func() error { return s.Event("line", "", "one\ntwo\n") }, "event: line\ndata: one\ndata: two\ndata: \n\n"},
		{func() error { return s.Event("reset", "", "") }, "event: reset\ndata: \n\n"},
		{func() error { return s.Event("", "", "x") }, "data: x\n\n"},
		{func() error { return s.Comment("ping") }, ": ping\n\n"},
		{func() error { return s.Event("big", "", strings.Repeat("b", maxKeptBuf)) }, "event: big\ndata: " + strings.Repeat("b", maxKeptBuf) + "\n\n"},
		{func() error { return s.Event("after", "7", "small") }, "id: 7\nevent: after\ndata: small\n\n"},
	}
	for _, st := range steps {
		rec.Body.Reset()
		rec.Flushed = false
		if err := st.write(); err != nil {
			t.Fatal(err)
		}
		if got := rec.Body.String(); got != st.want || !rec.Flushed {
			t.Errorf("wrote %q (flushed %v), want %q", got, rec.Flushed, st.want)
		}
	}
}

type failingWriter struct {
	*httptest.ResponseRecorder
	err error
}

func (f failingWriter) Write(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	return f.ResponseRecorder.Write(p)
}

func TestWriterError(t *testing.T) {
	boom := errors.New("gone")
	s := Start(failingWriter{httptest.NewRecorder(), boom})
	if err := s.Event("fleet", "1", "{}"); err != boom {
		t.Fatalf("Event: %v", err)
	}
	if err := s.Comment("ping"); err != boom {
		t.Fatalf("Comment: %v", err)
	}
}

// TestWriterStreams checks that each event reaches the client while the
// handler still runs, whole, with concurrent writers.
func TestWriterStreams(t *testing.T) {
	next := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := Start(w)
		<-next
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { _ = s.Event("e", "", "a\nb") })
		}
		wg.Wait()
		<-r.Context().Done()
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	read := func(n int) string {
		var b strings.Builder
		for range n {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(l)
		}
		return b.String()
	}
	if got := read(2); got != "retry: 2000\n\n" {
		t.Fatalf("got %q", got)
	}
	close(next)
	for i := range 4 {
		if got := read(4); got != "event: e\ndata: a\ndata: b\n\n" {
			t.Fatalf("event %d: %q", i, got)
		}
	}
}
