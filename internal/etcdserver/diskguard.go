package etcdserver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/server/v3/storage"
	"google.golang.org/grpc/metadata"
)

// The disk guard: etcd does not watch the free space of its file system. When
// the disk fills, it fails to preallocate its next 64 MB log segment or to
// write a snapshot, and exits ("failed to read WAL", "no space left on
// device"), often mid-write. The guard stops writes well before that: below a
// low-water mark of free space it raises etcd's NOSPACE alarm on its member,
// which makes every member of the cluster refuse puts, put transactions and
// lease grants ("etcdserver: mvcc: database space exceeded") while reads,
// deletes, watches and lease renewals go on. Once free space is back above a
// high-water mark, it disarms the alarm it raised, and writes resume.
//
// Before it raises the alarm, the guard writes a record (noSpaceRecord, JSON)
// under Config.NoSpaceKeyPrefix + the member's hex ID, which ExplainNoSpace
// turns into an error message naming the machine, the directory and the free
// space; it deletes the record when it disarms the alarm. The record also
// tells a restarted guard that the alarm is its own.

const (
	// DefaultMinFreeSpace is the low-water mark of free space under the
	// data dir: room for etcd's next log segment (64 MB, preallocated), a
	// snapshot of the database, and the writes of the seconds before the
	// guard notices.
	DefaultMinFreeSpace = 256 << 20
	// DiskResumeMargin is how far above the low-water mark free space must
	// climb before writes resume (one log segment), so that the alarm does
	// not flap around the mark.
	DiskResumeMargin = 64 << 20
	// DefaultDiskCheckInterval is how often the guard looks (statfs).
	DefaultDiskCheckInterval = 2 * time.Second
	// DefaultNoSpaceKeyPrefix is where the guard records why it raised the
	// alarm, when Config.NoSpaceKeyPrefix is empty.
	DefaultNoSpaceKeyPrefix = "/_fleetd/etcd/nospace/"

	// diskReminder is how often the guard repeats its warning while the
	// disk stays full.
	diskReminder = 5 * time.Minute
	// diskRequestTimeout bounds each of the guard's requests to etcd.
	diskRequestTimeout = 10 * time.Second
)

// diskAction is what the guard does after one look at the disk.
type diskAction int

const (
	diskKeep   diskAction = iota // nothing changes
	diskRaise                    // record, then raise the NOSPACE alarm
	diskClear                    // disarm the guard's alarm, delete the record
	diskForget                   // the guard's alarm was disarmed by someone else
)

func (a diskAction) String() string {
	return [...]string{"keep", "raise", "clear", "forget"}[a]
}

// diskView is what the guard sees.
type diskView struct {
	free uint64 // bytes available to unprivileged users
	// low and high are the marks; both 0 when the guard is disabled (it
	// then only clears an alarm it raised before).
	low, high uint64
	alarm     bool // this member has a NOSPACE alarm, whoever raised it
	ours      bool // the guard raised it
	overQuota bool // the database is at or over etcd's backend quota
}

// decideDisk is the guard's rule. Below the low-water mark it raises the
// alarm unless this member already has one (its own or etcd's quota alarm:
// writes are refused either way). It disarms only its own alarm, only once
// free space is at the high-water mark, and never while the database is over
// etcd's quota (etcd would have raised the alarm itself). An alarm of its own
// that someone else disarmed is forgotten; if the disk is still below the
// low-water mark, the next look raises it again.
func decideDisk(v diskView) diskAction {
	switch {
	case v.free < v.low:
		if !v.alarm {
			return diskRaise
		}
		return diskKeep
	case v.ours && v.alarm:
		if v.free >= v.high && !v.overQuota {
			return diskClear
		}
		return diskKeep
	case v.ours:
		return diskForget
	}
	return diskKeep
}

// noSpaceRecord is what the guard writes before raising the alarm.
type noSpaceRecord struct {
	Member   string `json:"member"`
	MemberID string `json:"memberID"`
	Machine  string `json:"machine,omitempty"`
	DataDir  string `json:"dataDir"`
	// Free is the free space when the alarm was raised; Min and Resume
	// the marks, in bytes.
	Free   uint64    `json:"freeBytes"`
	Min    uint64    `json:"minFreeBytes"`
	Resume uint64    `json:"resumeFreeBytes"`
	Time   time.Time `json:"time"`
}

// diskGuard watches the free space of one member's data dir.
type diskGuard struct {
	s         *Server
	dir       string
	low, high uint64
	interval  time.Duration
	key       string // of the record
	member    string
	machine   string
	password  string // root's, when authentication is on
	log       *slog.Logger

	ours     bool
	warned   time.Time // last warning while the disk stays full
	statErr  bool      // statfs failed at the last look (logged once)
	failures int       // consecutive failed raises or clears (logged at the first)
}

func newDiskGuard(s *Server, c Config, member string) *diskGuard {
	g := &diskGuard{s: s, dir: c.DataDir, interval: c.DiskCheckInterval, member: member,
		machine: c.Machine, password: c.RootPassword, log: c.Logger}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.MinFreeSpace == 0:
		g.low = DefaultMinFreeSpace
	case c.MinFreeSpace > 0:
		g.low = uint64(c.MinFreeSpace)
	}
	if g.low > 0 {
		g.high = g.low + DiskResumeMargin
	}
	if g.interval <= 0 {
		g.interval = DefaultDiskCheckInterval
	}
	prefix := c.NoSpaceKeyPrefix
	if prefix == "" {
		prefix = DefaultNoSpaceKeyPrefix
	}
	g.key = prefix + s.etcd.Server.MemberID().String()
	return g
}

// start looks once (adopting an alarm a previous run raised), then every
// interval until ctx ends, and closes done. A disabled guard only looks once.
func (g *diskGuard) start(ctx context.Context, done chan<- struct{}) {
	g.adopt(ctx)
	g.check(ctx)
	go func() {
		defer close(done)
		if g.low == 0 {
			return
		}
		t := time.NewTicker(g.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				g.check(ctx)
			}
		}
	}()
}

// adopt finds out whether the NOSPACE alarm of this member, if any, is one a
// previous run of the guard raised: its record is still there.
func (g *diskGuard) adopt(ctx context.Context) {
	if !g.hasAlarm() {
		return
	}
	rctx, cancel, err := g.rootCtx(ctx)
	if err != nil {
		g.log.Warn("disk guard: cannot read its record", "key", g.key, "err", err)
		return
	}
	defer cancel()
	resp, err := g.s.etcd.Server.Range(rctx, &pb.RangeRequest{Key: []byte(g.key), CountOnly: true})
	if err != nil {
		g.log.Warn("disk guard: cannot read its record", "key", g.key, "err", err)
		return
	}
	g.ours = resp.Count > 0
}

// check looks at the disk once and acts.
func (g *diskGuard) check(ctx context.Context) {
	g.s.guardLooks.Add(1)
	free, err := freeSpace(g.dir)
	if err != nil {
		if !g.statErr {
			g.log.Warn("disk guard: cannot read the free space of etcd's data dir; not guarding it", "data_dir", g.dir, "err", err)
		}
		g.statErr = true
		return
	}
	g.statErr = false
	v := diskView{free: free, low: g.low, high: g.high, alarm: g.hasAlarm(), ours: g.ours, overQuota: g.overQuota()}
	switch decideDisk(v) {
	case diskRaise:
		g.raise(ctx, free)
	case diskClear:
		g.clear(ctx, free)
	case diskForget:
		g.ours = false
		g.deleteRecord(ctx)
		g.log.Warn("disk guard: etcd's NOSPACE alarm of this member was disarmed by someone else", "data_dir", g.dir, "free_mb", free>>20)
	case diskKeep:
		switch {
		case time.Since(g.warned) < diskReminder:
		case v.alarm && v.ours:
			g.warned = time.Now()
			g.log.Warn(fmt.Sprintf("the disk under %s is still nearly full: %d MB free; etcd keeps refusing writes until %d MB are free",
				g.dir, free>>20, g.high>>20), "data_dir", g.dir, "free_mb", free>>20, "resume_mb", g.high>>20)
		case v.alarm && free < g.low:
			// etcd's own quota alarm already stops writes.
			g.warned = time.Now()
			g.log.Warn(fmt.Sprintf("the disk under %s is nearly full: %d MB free, below the %d MB kept free for etcd; "+
				"etcd already refuses writes (its NOSPACE alarm is up: the database reached its quota); free space on that file system too",
				g.dir, free>>20, g.low>>20), "data_dir", g.dir, "free_mb", free>>20, "min_free_mb", g.low>>20)
		}
	}
}

func (g *diskGuard) raise(ctx context.Context, free uint64) {
	srv := g.s.etcd.Server
	rec := noSpaceRecord{Member: g.member, MemberID: srv.MemberID().String(), Machine: g.machine, DataDir: g.dir,
		Free: free, Min: g.low, Resume: g.high, Time: time.Now().UTC()}
	b, _ := json.Marshal(rec)
	// The record first: once the alarm is up, nothing can be put.
	if rctx, cancel, err := g.rootCtx(ctx); err != nil {
		g.log.Warn("disk guard: cannot record why it stops writes", "key", g.key, "err", err)
	} else {
		if _, err := srv.Put(rctx, &pb.PutRequest{Key: []byte(g.key), Value: b}); err != nil {
			g.log.Warn("disk guard: cannot record why it stops writes", "key", g.key, "err", err)
		}
		cancel()
	}
	actx, cancel := context.WithTimeout(ctx, diskRequestTimeout)
	defer cancel()
	_, err := srv.Alarm(actx, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: uint64(srv.MemberID()), Alarm: pb.AlarmType_NOSPACE})
	if err != nil {
		g.failed(ctx, "cannot raise etcd's NOSPACE alarm; etcd may run out of space", err)
		return
	}
	g.failures = 0
	g.ours = true
	g.warned = time.Now()
	g.log.Warn(fmt.Sprintf("the disk under %s is nearly full: %d MB free, below the %d MB kept free for etcd; etcd now refuses writes "+
		"(cluster-wide: puts, new units, new leases) so that its log and database stay intact; reads, deletes and lease renewals go on "+
		"and running units are not touched. Free space on that file system: writes resume by themselves once %d MB are free",
		g.dir, free>>20, g.low>>20, g.high>>20),
		"data_dir", g.dir, "free_mb", free>>20, "min_free_mb", g.low>>20, "resume_mb", g.high>>20)
}

func (g *diskGuard) clear(ctx context.Context, free uint64) {
	srv := g.s.etcd.Server
	actx, cancel := context.WithTimeout(ctx, diskRequestTimeout)
	defer cancel()
	_, err := srv.Alarm(actx, &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, MemberID: uint64(srv.MemberID()), Alarm: pb.AlarmType_NOSPACE})
	if err != nil {
		g.failed(ctx, "cannot disarm etcd's NOSPACE alarm; writes stay refused", err)
		return
	}
	g.failures = 0
	g.ours = false
	g.deleteRecord(ctx)
	g.log.Info(fmt.Sprintf("the disk under %s has %d MB free again: etcd accepts writes again", g.dir, free>>20),
		"data_dir", g.dir, "free_mb", free>>20)
}

func (g *diskGuard) failed(ctx context.Context, msg string, err error) {
	if ctx.Err() != nil {
		return // closing
	}
	if g.failures == 0 {
		g.log.Warn("disk guard: "+msg+"; retrying", "data_dir", g.dir, "err", err)
	}
	g.failures++
}

func (g *diskGuard) deleteRecord(ctx context.Context) {
	rctx, cancel, err := g.rootCtx(ctx)
	if err == nil {
		_, err = g.s.etcd.Server.DeleteRange(rctx, &pb.DeleteRangeRequest{Key: []byte(g.key)})
		cancel()
	}
	if err != nil && ctx.Err() == nil {
		// Harmless: ExplainNoSpace reads records of alarmed members only.
		g.log.Debug("disk guard: cannot delete its record", "key", g.key, "err", err)
	}
}

// hasAlarm reports whether this member has a NOSPACE alarm.
func (g *diskGuard) hasAlarm() bool {
	srv := g.s.etcd.Server
	id := uint64(srv.MemberID())
	for _, a := range srv.Alarms() {
		if a.MemberID == id && a.Alarm == pb.AlarmType_NOSPACE {
			return true
		}
	}
	return false
}

// overQuota reports whether the database is at or over etcd's backend quota.
func (g *diskGuard) overQuota() bool {
	srv := g.s.etcd.Server
	quota := srv.Cfg.QuotaBackendBytes
	switch {
	case quota < 0:
		return false
	case quota == 0:
		quota = storage.DefaultQuotaBytes
	}
	return srv.Backend().Size() >= quota
}

// rootCtx is ctx with a timeout and, when authentication is on, root's token
// as the server's own API expects it (incoming gRPC metadata).
func (g *diskGuard) rootCtx(ctx context.Context) (context.Context, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(ctx, diskRequestTimeout)
	srv := g.s.etcd.Server
	if g.password == "" || !srv.AuthStore().IsAuthEnabled() {
		return ctx, cancel, nil
	}
	resp, err := srv.Authenticate(ctx, &pb.AuthenticateRequest{Name: RootUser, Password: g.password})
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("authenticate as %s: %w", RootUser, err)
	}
	return metadata.NewIncomingContext(ctx, metadata.Pairs(rpctypes.TokenFieldNameGRPC, resp.Token)), cancel, nil
}

// freeSpace returns the bytes available to unprivileged users on the file
// system of dir, or of its closest existing parent.
func freeSpace(dir string) (uint64, error) {
	probe := dir
	for {
		if _, err := os.Stat(probe); err == nil {
			break
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			break
		}
		probe = parent
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(probe, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}
