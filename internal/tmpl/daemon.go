package tmpl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// Options configures a Daemon.
type Options struct {
	// ConfDir holds conf.d/*.toml and templates/.
	ConfDir string
	// Prefix is prepended to every resource's prefix and keys.
	Prefix string
	// Noop renders and compares but never writes Dest or runs commands.
	Noop bool
	// SyncOnly writes Dest but skips check_cmd and reload_cmd.
	SyncOnly bool
	// KeepStageFile keeps staged files that would otherwise be deleted (a
	// failed check, a noop change).
	KeepStageFile bool
	// WaitMin and WaitMax coalesce change bursts in watch mode: render once
	// the watch has been quiet for WaitMin, and at most WaitMax after the
	// first change of a burst. WaitMax < WaitMin is treated as WaitMin.
	WaitMin, WaitMax time.Duration
	// Interval is the polling period in Poll, and the period of a full
	// resync in Watch (0: none).
	Interval time.Duration
	// Env is the environment for getenv and the commands; nil means
	// os.Environ().
	Env []string
	// Logger receives progress and errors; nil means slog.Default().
	Logger *slog.Logger
}

// ResourceStatus is the state of one template resource, as served on
// /status.
type ResourceStatus struct {
	Name string   `json:"name"`
	File string   `json:"file"`
	Src  string   `json:"src"`
	Dest string   `json:"dest"`
	Keys []string `json:"keys"`
	// OK is whether the most recent run succeeded.
	OK bool `json:"ok"`
	// Revision is the etcd revision of the most recent render.
	Revision int64 `json:"revision"`
	// LastRender is when the template was last executed; LastChange is when
	// Dest was last replaced.
	LastRender time.Time `json:"last_render,omitzero"`
	LastChange time.Time `json:"last_change,omitzero"`
	// LastError is the most recent error (kept after later successes, see OK).
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
	// CheckOutput and ReloadOutput are the combined output of the most recent
	// check_cmd and reload_cmd runs.
	CheckOutput  string `json:"check_output,omitempty"`
	ReloadOutput string `json:"reload_output,omitempty"`
	// Renders counts template executions; Changes counts replacements of Dest.
	Renders int64 `json:"renders"`
	Changes int64 `json:"changes"`
}

// Daemon renders the template resources of one confdir from etcd.
type Daemon struct {
	kv   *etcdkv.Client
	opts Options
	log  *slog.Logger
	res  []*resource

	mu sync.Mutex // guards every resource's st

	// afterRender, if set (by tests), runs in Watch between a resource's
	// full render and the start of its watches.
	afterRender func(rev int64)
}

type resource struct {
	cfg     *ResourceConfig
	tmpl    string   // template file path
	prefix  string   // absolute key prefix stripped for templates
	keys    []string // absolute etcd keys, each read with everything below it
	process sync.Mutex
	st      ResourceStatus
}

// New loads opts.ConfDir and returns a daemon reading etcd through kv.
func New(kv *etcdkv.Client, opts Options) (*Daemon, error) {
	cfgs, err := LoadConfDir(opts.ConfDir)
	if err != nil {
		return nil, err
	}
	return NewWithResources(kv, opts, cfgs)
}

// NewWithResources returns a daemon for already parsed resources; template
// sources are still read from opts.ConfDir/templates.
func NewWithResources(kv *etcdkv.Client, opts Options, cfgs []*ResourceConfig) (*Daemon, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Env == nil {
		opts.Env = os.Environ()
	}
	if opts.WaitMin < 0 {
		opts.WaitMin = 0
	}
	if opts.WaitMax < opts.WaitMin {
		opts.WaitMax = opts.WaitMin
	}
	d := &Daemon{kv: kv, opts: opts, log: opts.Logger}
	for _, c := range cfgs {
		r := &resource{cfg: c, prefix: joinKey(opts.Prefix, c.Prefix)}
		r.tmpl = c.Src
		if !filepath.IsAbs(r.tmpl) {
			r.tmpl = filepath.Join(opts.ConfDir, "templates", c.Src)
		}
		for _, k := range c.Keys {
			r.keys = append(r.keys, joinKey(r.prefix, k))
		}
		if _, _, err := resolveIDs(c.Owner, c.Group); err != nil {
			return nil, fmt.Errorf("%s: %w", c.File, err)
		}
		r.st = ResourceStatus{Name: c.Name(), File: c.File, Src: c.Src, Dest: c.Dest, Keys: c.Keys}
		d.res = append(d.res, r)
	}
	return d, nil
}

// Status returns a copy of every resource's status, in confdir order.
func (d *Daemon) Status() []ResourceStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]ResourceStatus, len(d.res))
	for i, r := range d.res {
		out[i] = r.st
	}
	return out
}

func (d *Daemon) update(r *resource, f func(st *ResourceStatus)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(&r.st)
}

// Once processes every resource once and returns the joined errors.
func (d *Daemon) Once(ctx context.Context) error {
	var errs []error
	for _, r := range d.res {
		if _, err := d.process(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Poll processes every resource now and then every opts.Interval until ctx
// is done. Errors are logged and reported in Status.
func (d *Daemon) Poll(ctx context.Context) error {
	if d.opts.Interval <= 0 {
		return errors.New("poll: interval must be positive")
	}
	t := time.NewTicker(d.opts.Interval)
	defer t.Stop()
	for {
		_ = d.Once(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// underKey reports whether etcd key k is key itself or below it.
func underKey(k, key string) bool {
	if key == "/" {
		return strings.HasPrefix(k, "/")
	}
	return k == key || strings.HasPrefix(k, key+"/")
}

// rel strips the resource prefix from an absolute key.
func (r *resource) rel(k string) string {
	if r.prefix == "/" {
		return k
	}
	return cleanKey(strings.TrimPrefix(k, r.prefix))
}

// fetch reads every key of r at one etcd revision.
func (d *Daemon) fetch(ctx context.Context, r *resource) (*snapshot, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		snap, err := d.fetchOnce(ctx, r)
		if err == nil || !etcdkv.IsCompacted(err) {
			return snap, err
		}
		lastErr = err // compacted between reads: start again at the head
	}
	return nil, lastErr
}

// fetchOnce reads r's first key at the newest revision and every other key
// at that same revision, so the snapshot is consistent. (One List per key
// rather than one transaction: a transaction is capped at etcd's
// --max-txn-ops, a resource's keys are not.)
func (d *Daemon) fetchOnce(ctx context.Context, r *resource) (*snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var rev int64
	kv := map[string]string{}
	for _, key := range r.keys {
		res, err := d.kv.List(ctx, key, etcdkv.ListOptions{Rev: rev})
		if err != nil {
			return nil, fmt.Errorf("%w (etcd at %s)", err, strings.Join(d.kv.Endpoints(), ","))
		}
		if rev == 0 {
			rev = res.Rev
		}
		for _, e := range res.KVs {
			if underKey(e.Key, key) {
				kv[r.rel(e.Key)] = string(e.Value)
			}
		}
	}
	return newSnapshot(rev, kv), nil
}

// render executes r's template on snap.
func (d *Daemon) render(ctx context.Context, r *resource, snap *snapshot) ([]byte, error) {
	text, err := os.ReadFile(r.tmpl)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", r.cfg.Src, err)
	}
	t, err := template.New(r.cfg.Src).Funcs(funcMap(ctx, snap, d.opts.Env)).Parse(string(text))
	if err != nil {
		return nil, err // "template: <src>:<line>: ..."
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, nil); err != nil {
		return nil, err // "template: <src>:<line>:<col>: executing ..."
	}
	return buf.Bytes(), nil
}

// process renders r once at the current etcd revision and, if the output
// differs from Dest, stages, checks, installs and reloads it. It returns the
// revision rendered (0 when etcd could not be read).
func (d *Daemon) process(ctx context.Context, r *resource) (int64, error) {
	r.process.Lock()
	defer r.process.Unlock()
	lg := d.log.With("resource", r.cfg.Name())
	fail := func(rev int64, err error) (int64, error) {
		err = fmt.Errorf("%s: %w", r.cfg.Name(), err)
		if ctx.Err() != nil {
			// Shutting down: not worth an error line, nor a status change.
			lg.Debug("template resource interrupted", "err", err)
			return rev, err
		}
		lg.Error("template resource failed", "dest", r.cfg.Dest, "revision", rev, "err", err)
		d.update(r, func(st *ResourceStatus) {
			st.OK = false
			st.LastError = err.Error()
			st.LastErrorTime = time.Now()
		})
		return rev, err
	}
	snap, err := d.fetch(ctx, r)
	if err != nil {
		return fail(0, err)
	}
	out, err := d.render(ctx, r, snap)
	d.update(r, func(st *ResourceStatus) {
		st.Renders++
		st.LastRender = time.Now()
		st.Revision = snap.rev
	})
	if err != nil {
		return fail(snap.rev, err)
	}
	changed, err := d.apply(ctx, r, out, lg)
	if err != nil {
		return fail(snap.rev, err)
	}
	d.update(r, func(st *ResourceStatus) {
		st.OK = true
		if changed {
			st.Changes++
			st.LastChange = time.Now()
		}
	})
	if changed {
		lg.Info("updated", "dest", r.cfg.Dest, "revision", snap.rev)
	} else {
		lg.Debug("in sync", "dest", r.cfg.Dest, "revision", snap.rev)
	}
	return snap.rev, nil
}

// resolveIDs turns owner/group names or numbers into ids; -1 means unset.
func resolveIDs(owner, group string) (uid, gid int, err error) {
	uid, gid = -1, -1
	if owner != "" {
		if n, err := strconv.Atoi(owner); err == nil {
			uid = n
		} else {
			u, err := user.Lookup(owner)
			if err != nil {
				return 0, 0, fmt.Errorf("owner %q: %w", owner, err)
			}
			uid, _ = strconv.Atoi(u.Uid)
		}
	}
	if group != "" {
		if n, err := strconv.Atoi(group); err == nil {
			gid = n
		} else {
			g, err := user.LookupGroup(group)
			if err != nil {
				return 0, 0, fmt.Errorf("group %q: %w", group, err)
			}
			gid, _ = strconv.Atoi(g.Gid)
		}
	}
	return uid, gid, nil
}

const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// sameMeta reports whether fi already has mode and (when set) uid/gid.
func sameMeta(fi fs.FileInfo, mode fs.FileMode, uid, gid int) bool {
	if fi.Mode()&modeBits != mode {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	return (uid < 0 || int(st.Uid) == uid) && (gid < 0 || int(st.Gid) == gid)
}

// apply installs content at r's Dest unless it is already there. It
// reports whether Dest was replaced.
func (d *Daemon) apply(ctx context.Context, r *resource, content []byte, lg *slog.Logger) (bool, error) {
	dest := r.cfg.Dest
	uid, gid, err := resolveIDs(r.cfg.Owner, r.cfg.Group)
	if err != nil {
		return false, err
	}
	mode := r.cfg.Mode
	fi, statErr := os.Stat(dest)
	if mode == 0 {
		mode = 0o644
		if statErr == nil {
			mode = fi.Mode() & modeBits
		}
	}
	if statErr == nil && fi.Mode().IsRegular() && sameMeta(fi, mode, uid, gid) {
		cur, err := os.ReadFile(dest)
		if err == nil && bytes.Equal(cur, content) {
			return false, nil
		}
	}

	stage, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".fleetd-stage-")
	if err != nil {
		return false, fmt.Errorf("stage: %w", err)
	}
	stageName := stage.Name()
	installed := false
	defer func() {
		if !installed && !d.opts.KeepStageFile {
			os.Remove(stageName)
		}
	}()
	if _, err := stage.Write(content); err != nil {
		stage.Close()
		return false, fmt.Errorf("stage: %w", err)
	}
	if err := stage.Sync(); err != nil {
		stage.Close()
		return false, fmt.Errorf("stage: %w", err)
	}
	if err := stage.Close(); err != nil {
		return false, fmt.Errorf("stage: %w", err)
	}
	if uid >= 0 || gid >= 0 {
		if err := os.Chown(stageName, uid, gid); err != nil {
			return false, fmt.Errorf("stage: %w", err)
		}
	}
	// chmod after chown: chown may clear setuid/setgid.
	if err := os.Chmod(stageName, mode); err != nil {
		return false, fmt.Errorf("stage: %w", err)
	}

	if d.opts.Noop {
		msg := "noop: would update"
		if d.opts.KeepStageFile {
			lg.Info(msg, "dest", dest, "staged", stageName)
		} else {
			lg.Info(msg, "dest", dest)
		}
		return false, nil
	}

	if !d.opts.SyncOnly && r.cfg.CheckCmd != "" {
		out, err := d.runCmd(ctx, r.cfg.CheckCmd, stageName, dest)
		d.update(r, func(st *ResourceStatus) { st.CheckOutput = out })
		if err != nil {
			msg := fmt.Sprintf("check_cmd failed, %s not replaced: %v", dest, err)
			if out != "" {
				msg += ": " + out
			}
			if d.opts.KeepStageFile {
				msg += " (staged file kept at " + stageName + ")"
			}
			return false, errors.New(msg)
		}
	}

	if err := replaceFile(stageName, dest, lg); err != nil {
		return false, err
	}
	installed = true

	if !d.opts.SyncOnly && r.cfg.ReloadCmd != "" {
		out, err := d.runCmd(ctx, r.cfg.ReloadCmd, dest, dest)
		d.update(r, func(st *ResourceStatus) { st.ReloadOutput = out })
		if err != nil {
			msg := fmt.Sprintf("%s replaced but reload_cmd failed: %v", dest, err)
			if out != "" {
				msg += ": " + out
			}
			// Dest changed, so count it even though the run failed.
			d.update(r, func(st *ResourceStatus) {
				st.Changes++
				st.LastChange = time.Now()
			})
			return false, errors.New(msg)
		}
	}
	return true, nil
}

// replaceFile renames stage over dest. A dest that cannot be renamed over
// because it is a mount point (EBUSY, a bind-mounted file in a container) is
// rewritten in place instead.
func replaceFile(stage, dest string, lg *slog.Logger) error {
	err := os.Rename(stage, dest)
	if err == nil {
		return nil
	}
	if !errors.Is(err, syscall.EBUSY) {
		return fmt.Errorf("install: %w", err)
	}
	lg.Warn("dest is busy (a mount point?): rewriting it in place, not atomically", "dest", dest)
	defer os.Remove(stage)
	data, rerr := os.ReadFile(stage)
	if rerr != nil {
		return fmt.Errorf("install: %w", rerr)
	}
	fi, serr := os.Stat(stage)
	if serr != nil {
		return fmt.Errorf("install: %w", serr)
	}
	if werr := os.WriteFile(dest, data, fi.Mode()&modeBits); werr != nil {
		return fmt.Errorf("install: %w", werr)
	}
	return nil
}

const maxCmdOutput = 16 << 10

// runCmd runs command (with {{.src}} and {{.dest}} expanded) under /bin/sh
// and returns its combined output, trimmed and capped. The output goes to a
// file, not a pipe, so a command that leaves a daemon behind (haproxy -D)
// does not keep us waiting.
func (d *Daemon) runCmd(ctx context.Context, command, src, dest string) (string, error) {
	t, err := template.New("cmd").Option("missingkey=error").Parse(command)
	if err != nil {
		return "", fmt.Errorf("command %q: %w", command, err)
	}
	var line strings.Builder
	if err := t.Execute(&line, map[string]string{"src": src, "dest": dest}); err != nil {
		return "", fmt.Errorf("command %q: %w", command, err)
	}
	outf, err := os.CreateTemp("", "fleetd-confd-cmd-")
	if err != nil {
		return "", err
	}
	defer os.Remove(outf.Name())
	defer outf.Close()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", line.String())
	cmd.Env = d.opts.Env
	cmd.Stdout = outf
	cmd.Stderr = outf
	runErr := cmd.Run()
	if _, err := outf.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	out, _ := io.ReadAll(io.LimitReader(outf, maxCmdOutput+1))
	s := string(out)
	if len(s) > maxCmdOutput {
		s = s[:maxCmdOutput] + "\n[output truncated]"
	}
	s = strings.TrimSpace(s)
	if runErr != nil {
		return s, fmt.Errorf("%q: %w", line.String(), runErr)
	}
	return s, nil
}
