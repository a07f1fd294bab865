package journal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults for Options.
const (
	DefaultMaxFileBytes = 8 << 20
	DefaultMaxFiles     = 3
	// LineMax is the longest line Writer emits as one entry; longer lines
	// are split (systemd's LineMax= default is 48K too).
	LineMax = 48 * 1024
)

// Streams an Entry can come from.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
	StreamFleet  = "fleet" // lifecycle lines written by the supervisor itself
)

// ErrClosed is returned by operations on a closed Journal.
var ErrClosed = errors.New("journal closed")

// Entry is one log line of a unit.
type Entry struct {
	Time   time.Time `json:"time"`
	Unit   string    `json:"unit"`
	Host   string    `json:"host,omitempty"`
	Ident  string    `json:"ident,omitempty"`
	PID    int       `json:"pid,omitempty"`
	Stream string    `json:"stream,omitempty"` // stdout, stderr or fleet
	Line   string    `json:"line"`
}

// Options configure a Journal. Zero values mean the defaults.
type Options struct {
	MaxFileBytes int64            // rotate the active file beyond this size (default 8 MiB)
	MaxFiles     int              // files kept per unit, active one included (default 3)
	Hostname     string           // Entry.Host when an appended entry has none (default os.Hostname)
	Now          func() time.Time // clock for entries without a time (default time.Now)
}

// Journal is a directory of per-unit logs.
type Journal struct {
	dir  string
	opts Options

	mu     sync.Mutex
	units  map[string]*unitLog
	closed bool
}

type unitLog struct {
	mu   sync.Mutex
	f    *os.File
	size int64
	subs map[*follower]struct{}
}

// Open opens (creating it if needed) a journal directory.
func Open(dir string, opts Options) (*Journal, error) {
	if dir == "" {
		return nil, errors.New("journal: empty directory")
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = DefaultMaxFileBytes
	}
	if opts.MaxFiles <= 0 {
		opts.MaxFiles = DefaultMaxFiles
	}
	if opts.Hostname == "" {
		if h, err := os.Hostname(); err == nil {
			opts.Hostname = h
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return &Journal{dir: dir, opts: opts, units: make(map[string]*unitLog)}, nil
}

// Dir returns the journal directory.
func (j *Journal) Dir() string { return j.dir }

// ValidUnitName reports why name cannot be used as a journal unit name.
func ValidUnitName(name string) error {
	switch {
	case name == "":
		return errors.New("journal: empty unit name")
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("journal: invalid unit name %q: contains '/' or NUL", name)
	case name == "." || strings.Contains(name, ".."):
		return fmt.Errorf("journal: invalid unit name %q: contains '..'", name)
	case len(name) > 240:
		return fmt.Errorf("journal: unit name too long (%d bytes)", len(name))
	}
	return nil
}

func (j *Journal) unit(name string) (*unitLog, error) {
	if err := ValidUnitName(name); err != nil {
		return nil, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil, ErrClosed
	}
	u := j.units[name]
	if u == nil {
		u = &unitLog{subs: make(map[*follower]struct{})}
		j.units[name] = u
	}
	return u, nil
}

// fileName returns the k-th file of unit (0 = active).
func (j *Journal) fileName(unit string, k int) string {
	if k == 0 {
		return filepath.Join(j.dir, unit+".log")
	}
	return filepath.Join(j.dir, unit+".log."+strconv.Itoa(k))
}

// Append writes one entry. Missing Time, Host and Stream are filled in.
func (j *Journal) Append(e Entry) error {
	u, err := j.unit(e.Unit)
	if err != nil {
		return err
	}
	if e.Time.IsZero() {
		e.Time = j.opts.Now()
	}
	if e.Host == "" {
		e.Host = j.opts.Hostname
	}
	if e.Stream == "" {
		e.Stream = StreamStdout
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	b = append(b, '\n')

	u.mu.Lock()
	defer u.mu.Unlock()
	if err := j.writeLocked(e.Unit, u, b); err != nil {
		return err
	}
	for f := range u.subs {
		f.push(e)
	}
	return nil
}

func (j *Journal) writeLocked(unit string, u *unitLog, b []byte) error {
	j.mu.Lock()
	closed := j.closed
	j.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if u.f == nil {
		f, err := os.OpenFile(j.fileName(unit, 0), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return fmt.Errorf("journal: %w", err)
		}
		u.f, u.size = f, st.Size()
	}
	if u.size > 0 && u.size+int64(len(b)) > j.opts.MaxFileBytes {
		if err := j.rotateLocked(unit, u); err != nil {
			return err
		}
	}
	n, err := u.f.Write(b)
	u.size += int64(n)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

func (j *Journal) rotateLocked(unit string, u *unitLog) error {
	if u.f != nil {
		u.f.Close()
		u.f = nil
	}
	last := j.opts.MaxFiles - 1
	if err := os.Remove(j.fileName(unit, last)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("journal: rotate: %w", err)
	}
	for k := last - 1; k >= 0; k-- {
		err := os.Rename(j.fileName(unit, k), j.fileName(unit, k+1))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("journal: rotate: %w", err)
		}
	}
	f, err := os.OpenFile(j.fileName(unit, 0), os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	u.f, u.size = f, 0
	return nil
}

// Log appends a lifecycle line (Stream "fleet") for unit, e.g.
// "Started Hello World.".
func (j *Journal) Log(unit, ident string, pid int, line string) error {
	return j.Append(Entry{Unit: unit, Ident: ident, PID: pid, Stream: StreamFleet, Line: line})
}

// Tail returns the last n entries of unit, oldest first, across rotated
// files. n <= 0 returns everything. A unit without logs yields no entries.
func (j *Journal) Tail(unit string, n int) ([]Entry, error) {
	u, err := j.unit(unit)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return j.tailLocked(unit, n)
}

func (j *Journal) tailLocked(unit string, n int) ([]Entry, error) {
	var chunks [][]Entry // newest file first
	total := 0
	for k := 0; k < j.opts.MaxFiles; k++ {
		es, err := readEntries(j.fileName(unit, k))
		if errors.Is(err, os.ErrNotExist) {
			if k == 0 {
				continue // active file may be missing right after Remove
			}
			break
		}
		if err != nil {
			return nil, err
		}
		chunks = append(chunks, es)
		total += len(es)
		if n > 0 && total >= n {
			break
		}
	}
	out := make([]Entry, 0, total)
	for i := len(chunks) - 1; i >= 0; i-- {
		out = append(out, chunks[i]...)
	}
	if n > 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out, nil
}

func readEntries(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Entry
	r := bufio.NewReaderSize(f, 64*1024)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			var e Entry
			if json.Unmarshal(line, &e) == nil {
				out = append(out, e)
			}
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
	}
}

// Remove deletes every file of unit. Followers stay subscribed.
func (j *Journal) Remove(unit string) error {
	u, err := j.unit(unit)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.f != nil {
		u.f.Close()
		u.f, u.size = nil, 0
	}
	var errs []error
	for k := 0; k < j.opts.MaxFiles+8; k++ {
		if err := os.Remove(j.fileName(unit, k)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close closes open files. Later appends fail with ErrClosed; followers'
// channels are closed when their contexts end.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	units := make([]*unitLog, 0, len(j.units))
	for _, u := range j.units {
		units = append(units, u)
	}
	j.mu.Unlock()
	var errs []error
	for _, u := range units {
		u.mu.Lock()
		if u.f != nil {
			errs = append(errs, u.f.Close())
			u.f = nil
		}
		u.mu.Unlock()
	}
	return errors.Join(errs...)
}

// follower buffers entries for one Follow call so appenders never block.
type follower struct {
	mu    sync.Mutex
	queue []Entry
	wake  chan struct{}
}

func (f *follower) push(es ...Entry) {
	f.mu.Lock()
	f.queue = append(f.queue, es...)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Follow returns a channel carrying the last n entries of unit followed by
// every entry appended later through j, until ctx is done, when the
// channel is closed. n < 0 means all existing entries; n == 0 means only
// new ones (as journalctl -f -n 0).
func (j *Journal) Follow(ctx context.Context, unit string, n int) (<-chan Entry, error) {
	u, err := j.unit(unit)
	if err != nil {
		return nil, err
	}
	f := &follower{wake: make(chan struct{}, 1)}
	u.mu.Lock()
	if n != 0 {
		tail, err := j.tailLocked(unit, max(n, 0))
		if err != nil {
			u.mu.Unlock()
			return nil, err
		}
		f.queue = tail
	}
	u.subs[f] = struct{}{}
	u.mu.Unlock()

	out := make(chan Entry)
	go func() {
		defer close(out)
		defer func() {
			u.mu.Lock()
			delete(u.subs, f)
			u.mu.Unlock()
		}()
		for {
			f.mu.Lock()
			batch := f.queue
			f.queue = nil
			f.mu.Unlock()
			for _, e := range batch {
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
			if len(batch) > 0 {
				continue
			}
			select {
			case <-f.wake:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// Writer returns a writer that appends one stdout Entry per line written.
func (j *Journal) Writer(unit, ident string, pid int) io.WriteCloser {
	return j.StreamWriter(unit, ident, pid, StreamStdout)
}

// StreamWriter is Writer with an explicit stream name (stdout, stderr).
func (j *Journal) StreamWriter(unit, ident string, pid int, stream string) io.WriteCloser {
	w := &lineWriter{j: j, unit: unit, ident: ident, pid: pid, stream: stream}
	w.err = ValidUnitName(unit)
	return w
}

type lineWriter struct {
	j      *Journal
	unit   string
	ident  string
	stream string
	pid    int

	mu     sync.Mutex
	buf    []byte
	err    error
	closed bool
}

func (w *lineWriter) emit(line []byte) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	err := w.j.Append(Entry{Unit: w.unit, Ident: w.ident, PID: w.pid, Stream: w.stream, Line: string(line)})
	if err != nil && w.err == nil {
		w.err = err
	}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, errors.New("journal: write on closed writer")
	}
	if w.err != nil {
		return 0, w.err
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		if i > LineMax {
			w.emit(w.buf[:LineMax])
			w.buf = w.buf[LineMax:]
			continue
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	for len(w.buf) >= LineMax {
		w.emit(w.buf[:LineMax])
		w.buf = w.buf[LineMax:]
	}
	// Keep the backing array from growing without bound.
	if len(w.buf) == 0 {
		w.buf = w.buf[:0:0]
	}
	return len(p), w.err
}

func (w *lineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if len(w.buf) > 0 && w.err == nil {
		w.emit(w.buf)
	}
	w.buf = nil
	return w.err
}
