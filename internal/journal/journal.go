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
	"syscall"
	"time"
)

// Defaults for Options.
const (
	DefaultMaxFileBytes = 8 << 20
	DefaultMaxFiles     = 3
	// DefaultMaxUnloaded and DefaultMaxUnloadedAge bound the journals
	// kept of units no longer loaded here (see Options and Prune).
	DefaultMaxUnloaded    = 256
	DefaultMaxUnloadedAge = 24 * time.Hour
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
	Now          func() time.Time // clock for entries without a time and for retention (default time.Now)

	// Retention of the journals of units no longer in use (released, or
	// found on disk and not loaded; see Prune): at most MaxUnloaded of them
	// are kept, the ones unused the longest removed first (default 256;
	// < 0: no count limit), and none unused for more than MaxUnloadedAge
	// (default 24 h; < 0: no age limit). A journal is unused from its
	// unit's release (Release), or for one found on disk at startup, from
	// its last write. Journals of units in use are never removed.
	MaxUnloaded    int
	MaxUnloadedAge time.Duration
}

// Journal is a directory of per-unit logs.
type Journal struct {
	dir  string
	opts Options

	mu     sync.Mutex
	units  map[string]*unitLog // units in use, read or followed; idle ones are dropped
	closed bool
	ret    retention // journals of units not in use (j.mu)
}

type unitLog struct {
	mu   sync.Mutex
	f    *os.File
	lock *os.File // .<unit>.lock: flock(2) shared with other processes appending to this unit
	subs map[*follower]struct{}

	// active (j.mu): appended to through this Journal since Open or the
	// last Release, so in use: its files are never pruned.
	active bool
	// dead (set holding u.mu and j.mu): dropped from Journal.units; whoever
	// locked it meanwhile looks the unit up again.
	dead bool
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
	if opts.MaxUnloaded == 0 {
		opts.MaxUnloaded = DefaultMaxUnloaded
	}
	if opts.MaxUnloadedAge == 0 {
		opts.MaxUnloadedAge = DefaultMaxUnloadedAge
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	j := &Journal{dir: dir, opts: opts, units: make(map[string]*unitLog)}
	j.ret.init()
	return j, nil
}

// Dir returns the journal directory.
func (j *Journal) Dir() string { return j.dir }

// Options returns the options in effect (defaults filled in), for another
// process that appends to the same directory.
func (j *Journal) Options() Options { return j.opts }

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

// lockUnit returns the state of unit with its mu held.
func (j *Journal) lockUnit(name string) (*unitLog, error) {
	for {
		u, err := j.unit(name)
		if err != nil {
			return nil, err
		}
		u.mu.Lock()
		if !u.dead {
			return u, nil
		}
		u.mu.Unlock()
	}
}

// forgetLocked drops u from j.units if nothing refers to it any more: no
// open file, no follower, not in use (u.mu held). A unit name that was
// used once then costs no memory.
func (j *Journal) forgetLocked(unit string, u *unitLog) {
	if len(u.subs) > 0 || u.f != nil || u.lock != nil {
		return
	}
	j.mu.Lock()
	if !u.active && !j.closed && j.units[unit] == u {
		delete(j.units, unit)
		u.dead = true
	}
	j.mu.Unlock()
}

// doneReadingLocked ends a read of unit (u.mu and the flock held; unlock
// releases the flock). A unit not in use gives back its lock file's fd,
// and the lock file itself if the unit has no logs (reading a unit that
// never ran here leaves nothing behind).
func (j *Journal) doneReadingLocked(unit string, u *unitLog, hasLogs bool, unlock func()) {
	j.mu.Lock()
	active := u.active
	j.mu.Unlock()
	if active {
		unlock()
		return
	}
	if !hasLogs {
		os.Remove(j.lockName(unit))
	}
	unlock()
	u.closeFilesLocked()
	j.forgetLocked(unit, u)
}

func (j *Journal) lockName(unit string) string {
	return filepath.Join(j.dir, "."+unit+".lock")
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
	if err := ValidUnitName(e.Unit); err != nil {
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

	u, err := j.lockUnit(e.Unit)
	if err != nil {
		return err
	}
	defer u.mu.Unlock()
	j.mu.Lock()
	closed := j.closed
	if !closed {
		// Written again (reloaded): in use, out of the retention index.
		u.active = true
		j.ret.dropLocked(e.Unit)
	}
	j.mu.Unlock()
	if closed {
		return ErrClosed
	}
	unlock, err := j.flockLocked(e.Unit, u)
	if err != nil {
		return err
	}
	err = j.writeLocked(e.Unit, u, b)
	unlock()
	if err != nil {
		return err
	}
	for f := range u.subs {
		f.poke()
	}
	return nil
}

// flockLocked takes the unit's cross-process lock (u.mu held); the result
// releases it.
//
// The lock file may be removed (by pruning, see Prune) by whoever holds the
// lock: a lock taken on a file no longer at the path excludes no one, so
// it is dropped and the path opened again.
func (j *Journal) flockLocked(unit string, u *unitLog) (func(), error) {
	path := j.lockName(unit)
	for {
		if u.lock == nil {
			lf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
			if err != nil {
				return nil, fmt.Errorf("journal: lock: %w", err)
			}
			u.lock = lf
		}
		fd := int(u.lock.Fd())
		for {
			err := syscall.Flock(fd, syscall.LOCK_EX)
			if err == nil {
				break
			}
			if !errors.Is(err, syscall.EINTR) {
				return nil, fmt.Errorf("journal: lock: %w", err)
			}
		}
		fst, ferr := u.lock.Stat()
		pst, perr := os.Stat(path)
		if ferr == nil && perr == nil && os.SameFile(fst, pst) {
			return func() { _ = syscall.Flock(fd, syscall.LOCK_UN) }, nil
		}
		_ = syscall.Flock(fd, syscall.LOCK_UN)
		u.lock.Close()
		u.lock = nil
		if ferr != nil {
			return nil, fmt.Errorf("journal: lock: %w", ferr)
		}
		if perr != nil && !errors.Is(perr, os.ErrNotExist) {
			return nil, fmt.Errorf("journal: lock: %w", perr)
		}
	}
}

// writeLocked appends b to the active file (u.mu and the flock held). The
// active file may have been rotated or removed by another process: the
// open file is checked against the path first.
func (j *Journal) writeLocked(unit string, u *unitLog, b []byte) error {
	var size int64
	if u.f != nil {
		fst, ferr := u.f.Stat()
		pst, perr := os.Stat(j.fileName(unit, 0))
		if ferr != nil || perr != nil || !os.SameFile(fst, pst) {
			u.f.Close()
			u.f = nil
		} else {
			size = fst.Size()
		}
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
		u.f, size = f, st.Size()
	}
	if size > 0 && size+int64(len(b)) > j.opts.MaxFileBytes {
		if err := j.rotateLocked(unit, u); err != nil {
			return err
		}
	}
	if _, err := u.f.Write(b); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

func (j *Journal) rotateLocked(unit string, u *unitLog) error {
	if u.f != nil {
		u.f.Close()
		u.f = nil
	}
	// Followers of this process read what is left of the active file
	// before it is renamed away (a second rotation would hide it), and
	// move to the new file once it exists.
	for f := range u.subs {
		f.mu.Lock()
		f.refreshLocked()
	}
	defer func() {
		for f := range u.subs {
			f.moveLocked()
			f.mu.Unlock()
			f.poke()
		}
	}()
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
	u.f = f
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
	u, err := j.lockUnit(unit)
	if err != nil {
		return nil, err
	}
	defer u.mu.Unlock()
	unlock, err := j.flockLocked(unit, u)
	if err != nil {
		return nil, err
	}
	es, err := j.tailLocked(unit, n)
	j.doneReadingLocked(unit, u, err != nil || len(es) > 0 || j.hasLogs(unit), unlock)
	return es, err
}

// hasLogs reports whether unit has an active or rotated file.
func (j *Journal) hasLogs(unit string) bool {
	for k := range 2 {
		if _, err := os.Lstat(j.fileName(unit, k)); !errors.Is(err, os.ErrNotExist) {
			return true
		}
	}
	return false
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
	u, err := j.lockUnit(unit)
	if err != nil {
		return err
	}
	defer u.mu.Unlock()
	unlock, err := j.flockLocked(unit, u)
	if err != nil {
		return err
	}
	err = j.removeLogsLocked(unit, u)
	j.mu.Lock()
	j.ret.dropLocked(unit)
	j.mu.Unlock()
	j.doneReadingLocked(unit, u, false, unlock)
	return err
}

// removeLogsLocked deletes unit's active and rotated files (u.mu and the
// flock held).
func (j *Journal) removeLogsLocked(unit string, u *unitLog) error {
	if u.f != nil {
		u.f.Close()
		u.f = nil
	}
	var errs []error
	for k := 0; k < j.opts.MaxFiles+8; k++ {
		if err := os.Remove(j.fileName(unit, k)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Release closes unit's open file and lock, kept open between appends; the
// next append or read opens them again. A journal that saw many unit names
// then holds open files only for those still in use.
//
// Release also marks unit as no longer in use (unloaded): its files stay,
// subject to the retention limits (Options.MaxUnloaded, MaxUnloadedAge),
// until it is written again. Then, unless pruning was left to Prune calls
// with a loaded predicate, it prunes (a bounded amount of work, see Prune).
func (j *Journal) Release(unit string) error {
	if err := ValidUnitName(unit); err != nil {
		return err
	}
	var err error
	for {
		j.mu.Lock()
		u := j.units[unit]
		j.mu.Unlock()
		if u == nil {
			j.released(unit, false)
			break
		}
		u.mu.Lock()
		if u.dead {
			u.mu.Unlock()
			continue
		}
		err = u.closeFilesLocked()
		j.mu.Lock()
		wasActive := u.active
		u.active = false
		j.mu.Unlock()
		// Indexed before u.mu goes: an append cannot slip in between and
		// find its unit in the index.
		j.released(unit, wasActive)
		j.forgetLocked(unit, u)
		u.mu.Unlock()
		break
	}
	j.mu.Lock()
	byCaller := j.ret.byCaller
	j.mu.Unlock()
	if !byCaller {
		err = errors.Join(err, j.prune(nil, false))
	}
	return err
}

// closeFilesLocked closes the unit's active file and lock (u.mu held); the
// next append or read opens them again.
func (u *unitLog) closeFilesLocked() error {
	var errs []error
	if u.f != nil {
		errs = append(errs, u.f.Close())
		u.f = nil
	}
	if u.lock != nil {
		errs = append(errs, u.lock.Close())
		u.lock = nil
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
	scan := j.ret.scan
	j.mu.Unlock()
	if scan != nil {
		<-scan
	}
	var errs []error
	for _, u := range units {
		u.mu.Lock()
		errs = append(errs, u.closeFilesLocked())
		u.mu.Unlock()
	}
	return errors.Join(errs...)
}

// follower reads one unit's files from where it left off, so it sees
// entries appended by any process. Appends through this Journal wake it at
// once; other processes' appends are noticed by polling. Rotation by this
// Journal makes it read the rest of the old file first; a rotation by
// another process is noticed through the inode of the active file's path,
// and the file it was reading is then looked for among the rotated files
// (by identity), so that it reads the rest of it, then every newer file in
// order, however many rotations happened between two polls.
type follower struct {
	name     func(k int) string // the k-th file of the unit (0 = active)
	maxFiles int
	wake     chan struct{}

	mu  sync.Mutex
	f   *os.File    // file being read; nil: none yet, or id read to its end
	id  os.FileInfo // identity of the file being (or last) read; nil: none yet
	pos int64       // offset in f after the last complete line read
	// skip: rotated files that existed when the follower started without
	// an active file (their entries are older than the follow).
	skip  []os.FileInfo
	queue []Entry
}

// FollowPoll is how often followers look for entries written by other
// processes.
const FollowPoll = 200 * time.Millisecond

func (f *follower) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// readLocked queues the complete lines of f.f past f.pos.
func (f *follower) readLocked() {
	if f.f == nil {
		return
	}
	buf := make([]byte, 64*1024)
	var pending []byte
	for {
		n, err := f.f.ReadAt(buf, f.pos+int64(len(pending)))
		pending = append(pending, buf[:n]...)
		for {
			i := bytes.IndexByte(pending, '\n')
			if i < 0 {
				break
			}
			var e Entry
			if json.Unmarshal(pending[:i+1], &e) == nil {
				f.queue = append(f.queue, e)
			}
			f.pos += int64(i + 1)
			pending = pending[i+1:]
		}
		if err != nil || n == 0 {
			return
		}
	}
}

// moveLocked switches to the file at the path, from its start, after a
// rotation by this Journal (the flock held, the old file read to its end
// by refreshLocked before the rotation). If that fails, the next refresh
// finds the successor of f.id.
func (f *follower) moveLocked() {
	if f.f != nil {
		f.readLocked()
		f.f.Close()
		f.f = nil
	}
	if f.id == nil {
		return // no file yet: refresh finds them all
	}
	nf, err := os.Open(f.name(0))
	if err != nil {
		return
	}
	st, err := nf.Stat()
	if err != nil || os.SameFile(st, f.id) {
		nf.Close()
		return
	}
	f.f, f.id, f.pos, f.skip = nf, st, 0, nil
}

// findLocked returns k >= 1 such that the unit's k-th file is fi, or -1.
func (f *follower) findLocked(fi os.FileInfo) int {
	for k := 1; ; k++ {
		st, err := os.Stat(f.name(k))
		if err != nil {
			if k >= f.maxFiles {
				return -1
			}
			continue
		}
		if os.SameFile(st, fi) {
			return k
		}
	}
}

// successorLocked opens the file that came after f.id (or the first file,
// without f.id): the next newer rotated file or the active one. If f.id no
// longer exists (rotated out, or removed), it is the oldest existing file
// not in f.skip. Nil if there is none yet.
func (f *follower) successorLocked() (*os.File, os.FileInfo) {
	if f.id != nil {
		for range 8 {
			k := f.findLocked(f.id)
			if k < 0 {
				break
			}
			nf, err := os.Open(f.name(k - 1))
			// Renames go from the oldest file to the newest: if f.id is
			// still k-th, the (k-1)-th was not renamed in between.
			st, serr := os.Stat(f.name(k))
			still := serr == nil && os.SameFile(st, f.id)
			if err != nil {
				if still {
					return nil, nil // e.g. the active file mid-rotation: next poll
				}
				continue
			}
			if still {
				if nst, err := nf.Stat(); err == nil {
					return nf, nst
				}
				nf.Close()
				return nil, nil
			}
			nf.Close()
		}
		if f.findLocked(f.id) > 0 {
			return nil, nil // racing rotations: next poll
		}
	}
	last := f.maxFiles - 1
	for k := last + 1; ; k++ { // files kept by another process's longer MaxFiles
		if _, err := os.Stat(f.name(k)); err != nil {
			break
		}
		last = k
	}
next:
	for k := last; k >= 0; k-- {
		nf, err := os.Open(f.name(k))
		if err != nil {
			continue
		}
		st, err := nf.Stat()
		if err != nil {
			nf.Close()
			continue
		}
		for _, s := range f.skip {
			if os.SameFile(st, s) {
				nf.Close()
				continue next
			}
		}
		return nf, st
	}
	return nil, nil
}

// refresh reads new entries, following the unit's files across rotations
// and removals.
func (f *follower) refresh() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshLocked()
}

func (f *follower) refreshLocked() {
	for range 64 { // bounded: a writer rotating without end is caught up with by later polls
		f.readLocked()
		if f.id != nil {
			pst, err := os.Stat(f.name(0))
			if err == nil && os.SameFile(f.id, pst) {
				if f.f != nil {
					return
				}
				// Read to its end yet still active: reopen it.
				nf, err := os.Open(f.name(0))
				if err != nil {
					return
				}
				f.f = nf
				continue
			}
		}
		if f.f != nil {
			// Rotated or removed: what was appended to it before that
			// is still ours.
			f.readLocked()
			f.f.Close()
			f.f = nil
		}
		nf, st := f.successorLocked()
		if nf == nil {
			return
		}
		f.f, f.id, f.pos, f.skip = nf, st, 0, nil
	}
}

func (f *follower) close() {
	f.mu.Lock()
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
	f.mu.Unlock()
}

// Follow returns a channel carrying the last n entries of unit followed by
// every entry appended later (by this or another process), until ctx is
// done, when the channel is closed. n < 0 means all existing entries;
// n == 0 means only new ones (as journalctl -f -n 0).
func (j *Journal) Follow(ctx context.Context, unit string, n int) (<-chan Entry, error) {
	if err := ValidUnitName(unit); err != nil {
		return nil, err
	}
	f := &follower{
		name:     func(k int) string { return j.fileName(unit, k) },
		maxFiles: j.opts.MaxFiles,
		wake:     make(chan struct{}, 1),
	}
	u, err := j.lockUnit(unit)
	if err != nil {
		return nil, err
	}
	unlock, err := j.flockLocked(unit, u)
	if err != nil {
		u.closeFilesLocked()
		j.forgetLocked(unit, u)
		u.mu.Unlock()
		return nil, err
	}
	if n != 0 {
		tail, err := j.tailLocked(unit, max(n, 0))
		if err != nil {
			j.doneReadingLocked(unit, u, true, unlock)
			u.mu.Unlock()
			return nil, err
		}
		f.queue = tail
	}
	if af, err := os.Open(f.name(0)); err == nil {
		if st, err := af.Stat(); err == nil {
			f.f, f.id, f.pos = af, st, st.Size()
		} else {
			af.Close()
		}
	}
	if f.f == nil {
		// Files that exist without an active one are older than the
		// follow (in the tail): not to be read again once it appears.
		for k := 1; k < j.opts.MaxFiles+8; k++ {
			if st, err := os.Stat(j.fileName(unit, k)); err == nil {
				f.skip = append(f.skip, st)
			}
		}
	}
	u.subs[f] = struct{}{}
	j.doneReadingLocked(unit, u, f.f != nil || len(f.queue) > 0 || j.hasLogs(unit), unlock)
	u.mu.Unlock()

	out := make(chan Entry)
	go func() {
		defer close(out)
		defer f.close()
		defer func() {
			u.mu.Lock()
			delete(u.subs, f)
			j.forgetLocked(unit, u)
			u.mu.Unlock()
		}()
		tick := time.NewTicker(FollowPoll)
		defer tick.Stop()
		for {
			f.refresh()
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
			case <-tick.C:
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
