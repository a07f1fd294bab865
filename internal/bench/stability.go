package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/fleetd/fleet/internal/config"
	"github.com/fleetd/fleet/internal/procutil"
	"github.com/fleetd/fleet/internal/store"
)

// runStability checks the default agent_ttl against false moves: three
// fleetd, units running, then CPU-burning processes for a while; no unit
// may move and no machine may lose its lease meanwhile.
func runStability(ctx context.Context, e *env, args []string) (map[string]any, error) {
	fs := newFlags(e, "stability", "three fleetd (each with a member of one 3-member embedded etcd), N units; then B CPU-burning processes for a while: counts unit moves (schedule/ writes) and machine leases lost meanwhile, which must both be 0")
	units := fs.Int("units", 30, "units to spread over the machines")
	burners := fs.Int("burners", 8, "CPU-burning processes (busy shell loops) during the hold")
	hold := fs.Duration("hold", 5*time.Minute, "how long the burners run")
	ttl := fs.Duration("agent-ttl", 0, "fleetd's agent_ttl (0: fleetd's default, "+config.DefaultAgentTTL.String()+")")
	bin := fs.String("fleetd", "", "fleetd binary (default: build ./cmd/fleetd)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *units < 1 || *burners < 0 || *hold <= 0 || *ttl < 0 {
		return nil, errors.New("--units must be positive, --burners not negative, --hold positive, --agent-ttl not negative")
	}
	effTTL := *ttl
	if effTTL == 0 {
		effTTL = config.DefaultAgentTTL
	}
	res := map[string]any{
		"units": *units, "machines": 3, "etcd_members": 3,
		"agent_ttl_s": effTTL.Seconds(), "agent_ttl_default": *ttl == 0,
		"burners": *burners, "hold_s": hold.Seconds(),
	}
	dir, path, err := fleetdWorkdir(ctx, e, "stability", *bin)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	e.printf("-- agent_ttl %v: starting 3 fleetd\n", effTTL)
	c, err := startCluster(ctx, path, filepath.Join(dir, "cluster"), clusterOpts{n: 3, agentTTL: *ttl, members: true})
	if err != nil {
		return res, err
	}
	defer c.stop()
	cli := c.cli
	aw := watchActive(ctx, cli, store.DefaultPrefix)
	api, err := c.client(0)
	if err != nil {
		return res, err
	}
	names := make([]string, *units)
	for i := range names {
		names[i] = fmt.Sprintf("stability-%02d.service", i)
		if err := api.CreateUnit(ctx, sleepUnit(names[i])); err != nil {
			return res, err
		}
	}
	allActive := func(a map[string]map[string]time.Time) bool {
		for _, u := range names {
			if len(a[u]) == 0 {
				return false
			}
		}
		return true
	}
	if _, ok := aw.await(ctx, 120*time.Second, allActive); !ok {
		return res, fmt.Errorf("units never all active; end of fleetd logs:\n%s", c.logTails(1500))
	}
	e.printf("   %d units active; settling\n", *units)
	time.Sleep(2 * time.Second)

	hw, err := watchHold(ctx, cli, store.DefaultPrefix, effTTL)
	if err != nil {
		return res, err
	}
	defer hw.stop()
	fleetdStart := make([]procStat, len(c.procs))
	logMark := make([]int, len(c.procs))
	for i, p := range c.procs {
		fleetdStart[i] = readProc(p.pid())
		logMark[i] = len(p.logText())
	}
	bs, err := startBurners(*burners)
	defer bs.stop() // also on errors and ctx cancel; fine to call twice
	if err != nil {
		return res, err
	}
	e.printf("   %d burners started (loadavg %s); holding %v\n", *burners, loadAvg(), *hold)
	burnStart := bs.cpu()

	t0 := time.Now()
	maxLoad := 0.0
	var loadEnd string
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	deadline := time.NewTimer(*hold)
	defer deadline.Stop()
	var holdErr error
hold:
	for {
		select {
		case <-ctx.Done():
			holdErr = ctx.Err()
			break hold
		case <-deadline.C:
			break hold
		case <-tick.C:
			la := loadAvg()
			if f := strings.Fields(la); len(f) > 0 {
				if v, err := strconv.ParseFloat(f[0], 64); err == nil {
					maxLoad = max(maxLoad, v)
				}
			}
			s := hw.snapshot()
			e.printf("   %4.0fs  loadavg %s  schedule writes %d  leases lost %d  max renewal gap %.2fs\n",
				time.Since(t0).Seconds(), la, s.scheduleWrites, s.leasesLost, s.maxGap.Seconds())
			for _, p := range c.procs {
				if !p.alive() {
					holdErr = fmt.Errorf("fleetd %d exited during the hold:\n%s", p.idx, tail(p.logText(), 3000))
					break hold
				}
			}
		}
	}
	held := time.Since(t0)
	loadEnd = loadAvg()
	burnCPU := bs.cpu() - burnStart
	var fleetdCPU []float64
	for i, p := range c.procs {
		fleetdCPU = append(fleetdCPU, round(cpuPercent(fleetdStart[i], readProc(p.pid())), 1))
	}
	bs.stop()
	// Moves decided during the hold may land just after it: look 2 s more.
	time.Sleep(2 * time.Second)
	hw.stop()
	s := hw.snapshot()

	// What fleetd said about leases and leaders meanwhile: the cause of
	// a lost lease or a move.
	warnings := 0
	for i, p := range c.procs {
		lines := holdLogLines(p.logText()[logMark[i]:])
		warnings += len(lines)
		if len(lines) > 0 {
			e.printf("-- fleetd %d during the hold (%d lease/leader/slow lines; the first %d):\n", i, len(lines), min(len(lines), 12))
			for _, l := range lines[:min(len(lines), 12)] {
				e.printf("   %s\n", tail(l, 300))
			}
		}
	}
	res["fleetd_lease_leader_log_lines"] = warnings
	res["held_s"] = round(held.Seconds(), 1)
	res["schedule_writes_during_hold"] = s.scheduleWrites
	res["units_moved"] = len(s.moved)
	if len(s.moved) > 0 {
		res["moved"] = s.moved
	}
	res["machine_leases_lost"] = s.leasesLost
	if s.gaps > 0 {
		res["max_lease_renewal_gap_s"] = round(s.maxGap.Seconds(), 2)
		res["lease_renewals_seen"] = s.gaps
	}
	if s.polls > 0 {
		res["min_lease_remaining_s"] = s.minRemaining
		res["lease_polls"] = s.polls
		res["lease_poll_errors"] = s.pollErrors
	}
	res["loadavg_hold_end"] = loadEnd
	res["loadavg_hold_max_1m"] = maxLoad
	res["burners_cpu_s"] = round(burnCPU.Seconds(), 1)
	res["fleetd_cpu_pct"] = fleetdCPU
	_, allOK := aw.await(ctx, 5*time.Second, allActive)
	res["all_units_active_after"] = allOK
	res["stable"] = s.scheduleWrites == 0 && s.leasesLost == 0 && allOK
	e.summary(fmt.Sprintf("stability: %d burners for %v, agent_ttl %v", *burners, *hold, effTTL), res)
	if holdErr != nil {
		return res, holdErr
	}
	return res, nil
}

// burners are CPU-burning processes: busy shell loops, each killed when
// fleet-bench dies (Pdeathsig) and ending by itself once its parent is gone.
type burners struct {
	mu    sync.Mutex
	procs []*procutil.Proc
}

// burnScript spins in shell arithmetic and, every 20,000 rounds, checks that
// its parent (fleet-bench) still lives.
const burnScript = `p=$PPID; while kill -0 $p 2>/dev/null; do i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; done`

func startBurners(n int) (*burners, error) {
	b := &burners{}
	for range n {
		cmd := exec.Command("/bin/sh", "-c", burnScript)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		p, err := procutil.Start(cmd, nil)
		if err != nil {
			return b, fmt.Errorf("start burner: %w", err)
		}
		b.mu.Lock()
		b.procs = append(b.procs, p)
		b.mu.Unlock()
	}
	return b, nil
}

// cpu is the CPU time the burners have used.
func (b *burners) cpu() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	var d time.Duration
	for _, p := range b.procs {
		if st := readProc(p.Pid()); st.Valid {
			d += st.CPU
		}
	}
	return d
}

// stop kills the burners and waits for them.
func (b *burners) stop() {
	if b == nil {
		return
	}
	b.mu.Lock()
	ps := b.procs
	b.procs = nil
	b.mu.Unlock()
	for _, p := range ps {
		p.Signal(syscall.SIGKILL)
	}
	for _, p := range ps {
		<-p.Done()
	}
}

// holdWatch counts, from its start, the schedule/ writes (a unit moving)
// and machines/ deletions (a lease lost), and polls every machine lease's
// remaining TTL to see how long renewals take under load.
type holdWatch struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu             sync.Mutex
	scheduleWrites int
	moved          map[string]bool
	leasesLost     int
	leases         map[string]clientv3.LeaseID // machine -> lease
	// From polling TimeToLive (whole seconds, truncated):
	polls        int
	pollErrors   int
	minRemaining int64
	last         map[clientv3.LeaseID]int64     // last remaining seen
	renewedAt    map[clientv3.LeaseID]time.Time // when a renewal was last seen
	maxGap       time.Duration
	gaps         int
}

type holdStats struct {
	scheduleWrites, leasesLost, polls, gaps int
	pollErrors                              int
	moved                                   []string
	minRemaining                            int64
	maxGap                                  time.Duration
}

// leasePoll is how often every machine lease's TimeToLive is asked.
const leasePoll = 200 * time.Millisecond

func watchHold(ctx context.Context, cli *clientv3.Client, prefix string, ttl time.Duration) (*holdWatch, error) {
	ctx, cancel := context.WithCancel(ctx)
	h := &holdWatch{
		cancel: cancel, moved: map[string]bool{}, leases: map[string]clientv3.LeaseID{},
		minRemaining: -1, last: map[clientv3.LeaseID]int64{}, renewedAt: map[clientv3.LeaseID]time.Time{},
	}
	mdir, sdir := prefix+"machines/", prefix+"schedule/"
	gctx, gcancel := context.WithTimeout(ctx, 5*time.Second)
	resp, err := cli.Get(gctx, mdir, clientv3.WithPrefix())
	gcancel()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("read machines: %w", err)
	}
	for _, kv := range resp.Kvs {
		h.leases[strings.TrimPrefix(string(kv.Key), mdir)] = clientv3.LeaseID(kv.Lease)
	}
	// Both watches start right after the read: nothing is missed.
	rev := resp.Header.Revision + 1
	sch := cli.Watch(ctx, sdir, clientv3.WithPrefix(), clientv3.WithRev(rev))
	mch := cli.Watch(ctx, mdir, clientv3.WithPrefix(), clientv3.WithRev(rev))
	h.wg.Go(func() {
		for resp := range sch {
			h.mu.Lock()
			for _, ev := range resp.Events {
				h.scheduleWrites++
				if _, unit, ok := strings.Cut(strings.TrimPrefix(string(ev.Kv.Key), sdir), "/"); ok {
					h.moved[unit] = true
				}
			}
			h.mu.Unlock()
		}
	})
	h.wg.Go(func() {
		for resp := range mch {
			h.mu.Lock()
			for _, ev := range resp.Events {
				id := strings.TrimPrefix(string(ev.Kv.Key), mdir)
				switch {
				case ev.Type == clientv3.EventTypeDelete:
					h.leasesLost++
					delete(h.leases, id)
				case clientv3.LeaseID(ev.Kv.Lease) != h.leases[id]:
					h.leases[id] = clientv3.LeaseID(ev.Kv.Lease) // re-registered
				}
			}
			h.mu.Unlock()
		}
	})
	// A renewal shows as the remaining TTL going up. etcd answers in whole
	// seconds (truncated), so a renewal is seen only if at least a second
	// has passed since the previous one: with renewals every agent_ttl/4,
	// that needs agent_ttl >= 4s; the gaps are then measured to a poll.
	measureGaps := ttl >= 4*time.Second
	h.wg.Go(func() {
		t := time.NewTicker(leasePoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			h.mu.Lock()
			var ls []clientv3.LeaseID
			for _, l := range h.leases {
				ls = append(ls, l)
			}
			h.mu.Unlock()
			for _, l := range ls {
				rctx, cancel := context.WithTimeout(ctx, time.Second)
				r, err := cli.TimeToLive(rctx, l)
				cancel()
				now := time.Now()
				h.mu.Lock()
				if err != nil || r.TTL < 0 {
					if ctx.Err() == nil {
						h.pollErrors++
					}
					h.mu.Unlock()
					continue
				}
				h.polls++
				if h.minRemaining < 0 || r.TTL < h.minRemaining {
					h.minRemaining = r.TTL
				}
				if prev, ok := h.last[l]; ok && r.TTL > prev && measureGaps {
					if at, ok := h.renewedAt[l]; ok {
						h.gaps++
						h.maxGap = max(h.maxGap, now.Sub(at))
					}
					h.renewedAt[l] = now
				}
				h.last[l] = r.TTL
				h.mu.Unlock()
			}
		}
	})
	return h, nil
}

func (h *holdWatch) snapshot() holdStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := holdStats{
		scheduleWrites: h.scheduleWrites, leasesLost: h.leasesLost, polls: h.polls, gaps: h.gaps, pollErrors: h.pollErrors,
		minRemaining: h.minRemaining, maxGap: h.maxGap,
	}
	for u := range h.moved {
		s.moved = append(s.moved, u)
	}
	sort.Strings(s.moved)
	return s
}

// stop ends the watches and the poller; safe to call more than once.
func (h *holdWatch) stop() {
	h.cancel()
	h.wg.Wait()
}

// holdLogLines are the lines of a fleetd's log about leases, leaders and
// slow etcd requests.
func holdLogLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		ll := strings.ToLower(l)
		if strings.Contains(ll, "lease") || strings.Contains(ll, "leader") || strings.Contains(ll, "took too long") || strings.Contains(ll, "slow") {
			out = append(out, l)
		}
	}
	return out
}
