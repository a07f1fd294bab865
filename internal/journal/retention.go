package journal

import (
	"container/heap"
	"errors"
	"os"
	"slices"
	"strings"
	"time"
)

// Work done by one Release or Prune call at most, so that unloading a unit
// stays cheap however many journals wait to be pruned.
const (
	pruneBatch   = 16 // units whose files are removed
	resolveBatch = 64 // journals found on disk checked against loaded
	scanChunk    = 512
)

// retained is the journal of a unit not in use.
type retained struct {
	unit    string
	last    time.Time // unused since: released here, else last written
	seq     uint64    // tie-break between equal times: order of indexing
	idx     int       // index in retention.heap; -1 when not in it
	unknown bool      // found by the scan, not yet checked against loaded
}

// retention indexes the journals of units not in use (guarded by
// Journal.mu). Journals of units released here are in heap, oldest first,
// and are what the limits count; journals found on disk by the scan of
// the directory are in unknown (oldest first) until a Prune call checks
// them against its loaded predicate and moves them to heap or drops them.
type retention struct {
	entries  map[string]*retained
	heap     retainedHeap
	unknown  []*retained
	seq      uint64
	scan     chan struct{} // closed when the scan is done; nil before it started
	byCaller bool          // Prune was given a loaded predicate: Release leaves pruning to it
}

func (r *retention) init() { r.entries = make(map[string]*retained) }

func (r *retention) pushLocked(e *retained) {
	r.seq++
	e.seq = r.seq
	heap.Push(&r.heap, e)
}

// dropLocked takes unit out of the index: it is in use again, or its
// files are gone.
func (r *retention) dropLocked(unit string) {
	e := r.entries[unit]
	if e == nil {
		return
	}
	delete(r.entries, unit)
	if e.idx >= 0 {
		heap.Remove(&r.heap, e.idx)
	}
}

// releasedLocked indexes unit, unused since now.
func (r *retention) releasedLocked(unit string, now time.Time) {
	r.dropLocked(unit)
	e := &retained{unit: unit, last: now, idx: -1}
	r.entries[unit] = e
	r.pushLocked(e)
}

// dueLocked returns the oldest indexed journal if a limit says it must go.
func (r *retention) dueLocked(opts Options, now time.Time) *retained {
	if len(r.heap) == 0 {
		return nil
	}
	e := r.heap[0]
	if opts.MaxUnloaded >= 0 && len(r.heap) > opts.MaxUnloaded {
		return e
	}
	if opts.MaxUnloadedAge > 0 && now.Sub(e.last) > opts.MaxUnloadedAge {
		return e
	}
	return nil
}

type retainedHeap []*retained

func (h retainedHeap) Len() int { return len(h) }
func (h retainedHeap) Less(a, b int) bool {
	if !h[a].last.Equal(h[b].last) {
		return h[a].last.Before(h[b].last)
	}
	return h[a].seq < h[b].seq
}
func (h retainedHeap) Swap(a, b int) {
	h[a], h[b] = h[b], h[a]
	h[a].idx, h[b].idx = a, b
}
func (h *retainedHeap) Push(x any) {
	e := x.(*retained)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *retainedHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.idx = -1
	return e
}

// released indexes unit as no longer in use from now on, if it has files
// (u.mu held if unit has a state in j.units). A unit not written through
// this Journal since Open (loaded before a restart, or run by its shim
// alone) counts too: its journal is as recent as its unloading.
func (j *Journal) released(unit string, wasActive bool) {
	exists := wasActive
	for _, p := range []string{j.fileName(unit, 0), j.lockName(unit)} {
		if exists {
			break
		}
		_, err := os.Lstat(p)
		exists = err == nil
	}
	if !exists {
		j.mu.Lock()
		j.ret.dropLocked(unit)
		j.mu.Unlock()
		return
	}
	now := j.opts.Now()
	j.mu.Lock()
	defer j.mu.Unlock()
	if u := j.units[unit]; u != nil && u.active {
		return // written again meanwhile
	}
	j.ret.releasedLocked(unit, now)
}

// Prune applies the retention limits (Options.MaxUnloaded,
// MaxUnloadedAge) to the journals of units not in use: those released
// (Release) and not written since, and those found on disk (a scan of the
// directory starts with the first call, in the background) and not written
// through this Journal since Open. Those unused the longest go first; a
// unit's active and rotated files and its lock file are removed together,
// holding its lock, so no appender (of any process) or Follow is raced.
//
// loaded, if not nil, reports the units loaded on this machine (e.g. by
// the runner): their journals are kept whatever the limits, and taken out
// of the index (Release puts them back). It is called without the
// journal's locks held. Once Prune has been given a loaded predicate,
// Release no longer prunes by itself, so that no journal is removed
// without asking it. A nil loaded treats every journal found on disk and
// not written since Open as unloaded.
//
// One call does a bounded amount of work (it removes at most 16 units'
// files and checks at most 64 journals found on disk); repeated calls
// catch up with a backlog.
func (j *Journal) Prune(loaded func(unit string) bool) error {
	if loaded != nil {
		j.mu.Lock()
		j.ret.byCaller = true
		j.mu.Unlock()
	}
	return j.prune(loaded, true)
}

func (j *Journal) prune(loaded func(string) bool, resolve bool) error {
	if resolve {
		j.resolve(loaded)
	}
	now := j.opts.Now()
	var errs []error
	removed := 0
	for i := 0; i < 4*pruneBatch && removed < pruneBatch; i++ {
		j.mu.Lock()
		if j.closed {
			j.mu.Unlock()
			break
		}
		e := j.ret.dueLocked(j.opts, now)
		if e == nil {
			j.mu.Unlock()
			break
		}
		heap.Remove(&j.ret.heap, e.idx) // still in entries until removed
		j.mu.Unlock()
		if loaded != nil && loaded(e.unit) {
			j.mu.Lock()
			if j.ret.entries[e.unit] == e {
				delete(j.ret.entries, e.unit)
			}
			j.mu.Unlock()
			continue
		}
		ok, err := j.pruneUnit(e)
		if ok {
			removed++
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// pruneUnit removes the files of e's unit unless it was written again or
// indexed anew since e was picked.
func (j *Journal) pruneUnit(e *retained) (bool, error) {
	u, err := j.lockUnit(e.unit)
	if err != nil {
		return false, err
	}
	defer u.mu.Unlock()
	j.mu.Lock()
	ok := j.ret.entries[e.unit] == e && !u.active
	if ok {
		delete(j.ret.entries, e.unit)
	}
	j.mu.Unlock()
	if !ok {
		j.forgetLocked(e.unit, u)
		return false, nil
	}
	unlock, err := j.flockLocked(e.unit, u)
	if err != nil {
		u.closeFilesLocked()
		j.forgetLocked(e.unit, u)
		return false, err
	}
	err = j.removeLogsLocked(e.unit, u)
	// Removed while held: a process waiting for this lock finds its file
	// gone from the path and opens a new one (flockLocked).
	if lerr := os.Remove(j.lockName(e.unit)); lerr != nil && !errors.Is(lerr, os.ErrNotExist) {
		err = errors.Join(err, lerr)
	}
	unlock()
	u.closeFilesLocked()
	j.forgetLocked(e.unit, u)
	return true, err
}

// resolve starts the scan of the directory if needed and checks a batch
// of the journals it found against loaded.
func (j *Journal) resolve(loaded func(string) bool) {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return
	}
	if j.ret.scan == nil {
		j.ret.scan = make(chan struct{})
		go j.scanDir(j.ret.scan)
	}
	var batch []*retained
	for len(j.ret.unknown) > 0 && len(batch) < resolveBatch {
		e := j.ret.unknown[0]
		j.ret.unknown = j.ret.unknown[1:]
		if j.ret.entries[e.unit] == e && e.unknown {
			batch = append(batch, e)
		}
	}
	if len(j.ret.unknown) == 0 {
		j.ret.unknown = nil
	}
	j.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	isLoaded := make([]bool, len(batch))
	if loaded != nil {
		for i, e := range batch {
			isLoaded[i] = loaded(e.unit)
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for i, e := range batch {
		if j.ret.entries[e.unit] != e || !e.unknown {
			continue // written or released meanwhile
		}
		if isLoaded[i] {
			j.ret.dropLocked(e.unit)
			continue
		}
		e.unknown = false
		j.ret.pushLocked(e)
	}
}

// scanDir indexes the journals on disk of units not in use here, oldest
// first, as unknown: they may belong to units loaded but not written to
// since Open (after a restart of fleetd).
func (j *Journal) scanDir(done chan struct{}) {
	defer close(done)
	ents, err := os.ReadDir(j.dir)
	if err != nil {
		return
	}
	last := make(map[string]time.Time)
	for _, d := range ents {
		if d.IsDir() {
			continue
		}
		unit, ok := unitOfFile(d.Name())
		if !ok {
			continue
		}
		fi, err := d.Info()
		if err != nil {
			continue
		}
		if t, seen := last[unit]; !seen || fi.ModTime().After(t) {
			last[unit] = fi.ModTime()
		}
	}
	found := make([]*retained, 0, len(last))
	for unit, t := range last {
		found = append(found, &retained{unit: unit, last: t, idx: -1, unknown: true})
	}
	slices.SortFunc(found, func(a, b *retained) int {
		if c := a.last.Compare(b.last); c != 0 {
			return c
		}
		return strings.Compare(a.unit, b.unit)
	})
	for len(found) > 0 {
		chunk := found[:min(scanChunk, len(found))]
		found = found[len(chunk):]
		j.mu.Lock()
		if j.closed {
			j.mu.Unlock()
			return
		}
		for _, e := range chunk {
			if _, ok := j.ret.entries[e.unit]; ok {
				continue // released meanwhile
			}
			if u := j.units[e.unit]; u != nil && u.active {
				continue // in use
			}
			j.ret.entries[e.unit] = e
			j.ret.unknown = append(j.ret.unknown, e)
		}
		j.mu.Unlock()
	}
}

// unitOfFile returns the unit a file of the directory belongs to:
// <unit>.log, <unit>.log.<k> or .<unit>.lock.
func unitOfFile(name string) (string, bool) {
	var unit string
	switch {
	case strings.HasSuffix(name, ".log"):
		unit = strings.TrimSuffix(name, ".log")
	case strings.HasPrefix(name, ".") && strings.HasSuffix(name[1:], ".lock"):
		unit = strings.TrimSuffix(name[1:], ".lock")
	default:
		i := strings.LastIndexByte(name, '.')
		if i < 0 || i == len(name)-1 || strings.Trim(name[i+1:], "0123456789") != "" {
			return "", false
		}
		base, ok := strings.CutSuffix(name[:i], ".log")
		if !ok {
			return "", false
		}
		unit = base
	}
	return unit, ValidUnitName(unit) == nil
}
