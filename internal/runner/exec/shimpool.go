package exec

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// defaultShimUnits is how many units one shim process supervises at most
// over its life (Options.ShimUnits): few enough that a shim lost (a bug,
// an OOM kill) loses the supervision of few units, enough that shim
// starts (several milliseconds of CPU and about a megabyte each) are rare.
const defaultShimUnits = 64

// shimPool hands units to shim processes (`fleet-shim --serve`, see
// shimserve.go): the current one until it has had its share of units,
// then a new one. A shim that had its share is retired: its stdin is
// closed, so it takes no more and exits once its units have ended.
type shimPool struct {
	r      *Runner
	max    int
	mu     sync.Mutex
	cur    *shimProc
	all    map[*shimProc]bool
	nextID uint64
	closed bool
}

// shimProc is one shim process as the runner sees it.
type shimProc struct {
	pid   int
	in    *os.File // its stdin; nil once retired
	given int

	mu      sync.Mutex
	pending map[uint64]chan string
	gone    bool // its stdout reached EOF: it answers no more
}

func newShimPool(r *Runner, max int) *shimPool {
	if max <= 0 {
		max = defaultShimUnits
	}
	return &shimPool{r: r, max: max, all: map[*shimProc]bool{}}
}

// errShimGone: the shim process ended (or closed its stdout) before it
// answered.
var errShimGone = errors.New("shim exited before it reported")

// start asks a shim process to start the unit of spec, whose files go in
// dir, and returns its report ("ok PID" or "err ERRNO MESSAGE") and the shim
// process's PID.
func (p *shimPool) start(dir string, spec shimSpec, timeout time.Duration) (string, int, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return "", 0, ErrClosed
	}
	p.nextID++
	id := p.nextID
	req, err := json.Marshal(shimRequest{ID: id, Dir: dir, Spec: spec})
	if err != nil {
		p.mu.Unlock()
		return "", 0, err
	}
	ch := make(chan string, 1)
	var sp *shimProc
	// A request that could not be written was never read: it goes to a
	// new shim (the current one died, and its reader may not know yet).
	for attempt := 0; ; attempt++ {
		sp = p.cur
		if sp == nil || sp.isGone() {
			if sp, err = p.spawn(); err != nil {
				p.mu.Unlock()
				return "", 0, err
			}
			p.cur = sp
		}
		sp.mu.Lock()
		sp.pending[id] = ch
		sp.mu.Unlock()
		_, werr := sp.in.Write(append(req, '\n'))
		sp.given++
		if werr != nil || sp.given >= p.max {
			p.retireLocked(sp)
		}
		if werr == nil {
			break
		}
		sp.mu.Lock()
		delete(sp.pending, id)
		sp.mu.Unlock()
		if attempt == 1 {
			p.mu.Unlock()
			return "", 0, fmt.Errorf("shim (pid %d): %w", sp.pid, werr)
		}
	}
	p.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line, ok := <-ch:
		if !ok {
			return "", 0, fmt.Errorf("shim (pid %d): %w", sp.pid, errShimGone)
		}
		return line, sp.pid, nil
	case <-t.C:
		sp.mu.Lock()
		delete(sp.pending, id)
		sp.mu.Unlock()
		// A shim that does not answer is given nothing more.
		p.mu.Lock()
		p.retireLocked(sp)
		p.mu.Unlock()
		return "", 0, fmt.Errorf("shim (pid %d) did not report within %v", sp.pid, timeout)
	}
}

// retireLocked closes sp's stdin (p.mu held): it takes no more units.
func (p *shimPool) retireLocked(sp *shimProc) {
	if sp.in != nil {
		sp.in.Close()
		sp.in = nil
	}
	if p.cur == sp {
		p.cur = nil
	}
}

func (sp *shimProc) isGone() bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.gone || sp.in == nil
}

// spawn starts a shim process (p.mu held).
func (p *shimPool) spawn() (*shimProc, error) {
	r := p.r
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, &spawnError{208, err}
	}
	defer devnull.Close()
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, &spawnError{209, err}
	}
	defer inR.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		inW.Close()
		return nil, &spawnError{209, err}
	}
	defer outW.Close()
	attr := &os.ProcAttr{
		Dir:   "/",
		Env:   append([]string{"PATH=" + defaultPath}, r.opts.ShimEnv...),
		Files: []*os.File{inR, outW, devnull},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	}
	rp := r.rp
	rp.mu.Lock()
	proc, err := os.StartProcess(r.opts.Shim[0], append(append([]string(nil), r.opts.Shim...), shimServeArg), attr)
	if err == nil {
		rp.managed[proc.Pid] = struct{}{}
	}
	rp.mu.Unlock()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, &spawnError{203, fmt.Errorf("start shim: %w", err)}
	}
	sp := &shimProc{pid: proc.Pid, in: inW, pending: map[uint64]chan string{}}
	// Reap the shim when it exits, without a thread blocked meanwhile.
	c := rp.watch(proc)
	go rp.wait(c)
	go sp.read(outR)
	p.all[sp] = true
	return sp, nil
}

// read delivers the shim's answers to their callers until its stdout
// ends; then whoever still waits learns that it is gone.
func (sp *shimProc) read(out io.ReadCloser) {
	defer out.Close()
	br := bufio.NewReader(out)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			if id, rest, perr := shimReply(line); perr == nil {
				sp.mu.Lock()
				ch := sp.pending[id]
				delete(sp.pending, id)
				sp.mu.Unlock()
				if ch != nil {
					ch <- rest
				}
			}
		}
		if err != nil {
			break
		}
	}
	sp.mu.Lock()
	sp.gone = true
	for id, ch := range sp.pending {
		close(ch)
		delete(sp.pending, id)
	}
	sp.mu.Unlock()
}

// close retires every shim process: they take no more units and exit
// once their units have ended (the units keep running).
func (p *shimPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for sp := range p.all {
		p.retireLocked(sp)
	}
	p.all = map[*shimProc]bool{}
}
