package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// V1 controllers a unit cgroup may use.
const (
	V1Memory  = "memory"
	V1CPU     = "cpu"
	V1CPUAcct = "cpuacct"
	V1Pids    = "pids"
	V1Freezer = "freezer"
	V1Blkio   = "blkio"
)

var v1Wanted = []string{V1Memory, V1CPU, V1CPUAcct, V1Pids, V1Freezer, V1Blkio}

// System is what this process may use: its own cgroup in the cgroup v2
// hierarchy (with the controllers available there) and in each writable
// v1 hierarchy of interest.
type System struct {
	// V2 is this process's own cgroup directory in the v2 hierarchy, ""
	// when there is no writable one.
	V2 string
	// V1 maps a v1 controller to this process's own cgroup directory in
	// its hierarchy, for the writable ones only (co-mounted controllers,
	// cpu,cpuacct, share one directory).
	V1 map[string]string
	// Why explains, per hierarchy, why it is missing (for warnings).
	Why []string
}

type mount struct {
	point, root string
	opts        []string
	v2          bool
}

func readMounts() []mount {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts ... - fstype source superopts
		line := sc.Text()
		sep := strings.Index(line, " - ")
		if sep < 0 {
			continue
		}
		pre, post := strings.Fields(line[:sep]), strings.Fields(line[sep+3:])
		if len(pre) < 5 || len(post) < 3 {
			continue
		}
		switch post[0] {
		case "cgroup2":
			out = append(out, mount{point: unescape(pre[4]), root: unescape(pre[3]), v2: true})
		case "cgroup":
			out = append(out, mount{point: unescape(pre[4]), root: unescape(pre[3]), opts: strings.Split(post[2], ",")})
		}
	}
	return out
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// selfPaths reads /proc/self/cgroup: controller (or "" for v2) -> path.
func selfPaths() map[string]string {
	out := map[string]string{}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return out
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" {
			out[""] = f[2]
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			out[c] = f[2]
		}
	}
	return out
}

func join(m mount, self string) string {
	rel := self
	if m.root != "/" && strings.HasPrefix(self, m.root) {
		rel = strings.TrimPrefix(self, m.root)
	}
	return filepath.Join(m.point, rel)
}

func writable(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
		return false
	}
	return unix.Access(dir, unix.W_OK) == nil
}

// Detect finds the hierarchies this process may create cgroups in.
func Detect() *System {
	s := &System{V1: map[string]string{}}
	self := selfPaths()
	sawV2, sawV1 := false, map[string]bool{}
	for _, m := range readMounts() {
		if m.v2 {
			if sawV2 {
				continue
			}
			sawV2 = true
			dir := join(m, self[""])
			if writable(dir) {
				s.V2 = dir
			} else {
				s.Why = append(s.Why, fmt.Sprintf("cgroup v2 at %s is not writable", dir))
			}
			continue
		}
		for _, c := range m.opts {
			if !contains(v1Wanted, c) || sawV1[c] {
				continue
			}
			sawV1[c] = true
			p, ok := self[c]
			if !ok {
				continue
			}
			dir := join(m, p)
			if writable(dir) {
				s.V1[c] = dir
			} else {
				s.Why = append(s.Why, fmt.Sprintf("cgroup v1 %s hierarchy at %s is not writable", c, dir))
			}
		}
	}
	if !sawV2 && len(sawV1) == 0 {
		s.Why = append(s.Why, "no cgroup hierarchy is mounted")
	}
	return s
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Root is a supervisor's own directory in each hierarchy it uses; unit
// cgroups are created inside.
type Root struct {
	V2     string          // "" none
	V2Ctrl map[string]bool // controllers enabled for the V2 root's children
	V1     map[string]string
	Why    []string
}

// NewRoot creates the directory name in every usable hierarchy of s
// (v2 unless noV2, v1 unless noV1). It fails only if none is usable.
func (s *System) NewRoot(name string, noV2, noV1 bool) (*Root, error) {
	r := &Root{V2Ctrl: map[string]bool{}, V1: map[string]string{}, Why: append([]string(nil), s.Why...)}
	if s.V2 != "" && !noV2 {
		dir := filepath.Join(s.V2, name)
		if err := os.Mkdir(dir, 0o755); err == nil || errors.Is(err, os.ErrExist) {
			r.V2 = dir
			// Delegate what we can. Our own cgroup may hold processes
			// (then only the root cgroup can enable controllers): best
			// effort, what ends up enabled is what counts.
			avail := readWords(filepath.Join(s.V2, "cgroup.controllers"))
			for _, c := range []string{CPU, IO, Memory, Pids} {
				if contains(avail, c) {
					_ = os.WriteFile(filepath.Join(s.V2, "cgroup.subtree_control"), []byte("+"+c), 0)
					_ = os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+c), 0)
				}
			}
			for _, c := range readWords(filepath.Join(dir, "cgroup.subtree_control")) {
				r.V2Ctrl[c] = true
			}
			var missing []string
			for _, c := range []string{CPU, IO, Memory, Pids} {
				if !r.V2Ctrl[c] {
					missing = append(missing, c)
				}
			}
			if len(missing) > 0 {
				r.Why = append(r.Why, fmt.Sprintf("cgroup v2 at %s has no %s controller", s.V2, strings.Join(missing, ", ")))
			}
		} else {
			r.Why = append(r.Why, fmt.Sprintf("cgroup v2: %v", err))
		}
	}
	if !noV1 {
		made := map[string]string{}
		for _, c := range sortedKeys(s.V1) {
			base := s.V1[c]
			if d, ok := made[base]; ok {
				r.V1[c] = d
				continue
			}
			dir := filepath.Join(base, name)
			if err := os.Mkdir(dir, 0o755); err == nil || errors.Is(err, os.ErrExist) {
				r.V1[c] = dir
				made[base] = dir
			} else {
				r.Why = append(r.Why, fmt.Sprintf("cgroup v1 %s: %v", c, err))
			}
		}
	}
	if r.V2 == "" && len(r.V1) == 0 {
		return nil, errors.New(strings.Join(append([]string{"no writable cgroup hierarchy"}, r.Why...), "; "))
	}
	return r, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func readWords(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// Remove removes the root's directories with every empty unit cgroup in
// them; populated ones (and so the root) stay.
func (r *Root) Remove() {
	dirs := map[string]bool{}
	if r.V2 != "" {
		dirs[r.V2] = true
	}
	for _, d := range r.V1 {
		dirs[d] = true
	}
	for d := range dirs {
		removeTree(d)
	}
}

// removeTree removes dir and its sub-cgroups, deepest first; it stops at
// populated ones.
func removeTree(dir string) error {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			removeTree(filepath.Join(dir, e.Name()))
		}
	}
	return os.Remove(dir)
}

// RemoveDead removes the directories named prefix<PID>-... (roots made by
// NewRoot) directly under the hierarchies of s whose PID no longer runs:
// left by a supervisor that exited without cleaning up. Populated cgroups
// cannot be removed, so nothing that still runs is touched.
func (s *System) RemoveDead(prefix string) {
	parents := map[string]bool{}
	if s.V2 != "" {
		parents[s.V2] = true
	}
	for _, d := range s.V1 {
		parents[d] = true
	}
	for p := range parents {
		dirs, _ := filepath.Glob(filepath.Join(p, prefix+"*"))
		for _, d := range dirs {
			f := strings.SplitN(strings.TrimPrefix(filepath.Base(d), prefix), "-", 2)
			pid, err := strconv.Atoi(f[0])
			if err != nil {
				continue
			}
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
				continue
			}
			removeTree(d)
		}
	}
}

// Group is one unit cgroup: a v2 cgroup, or a cgroup in each of several
// v1 hierarchies, or both. It is recorded as JSON for adoption.
type Group struct {
	V2 string            `json:"v2,omitempty"`
	V1 map[string]string `json:"v1,omitempty"` // controller -> directory
}

// Plan says where a unit cgroup goes and what is not enforced.
type Plan struct {
	V2         bool
	V1         []string // v1 controllers to create it in
	Unenforced []string // options not enforced
	Why        string   // why they are not
}

// Plan decides where a unit with limits l goes: v2 when it has every
// controller l needs; otherwise the v1 hierarchies (freezer for tracking
// plus the controllers l needs); otherwise whatever tracks processes.
// v1Only and v2Only restrict the choice.
func (r *Root) Plan(l Limits, v1Only, v2Only bool) Plan {
	needs := l.Controllers()
	v2ok := r.V2 != "" && !v1Only
	for _, c := range needs {
		if !r.V2Ctrl[c] {
			v2ok = false
		}
	}
	if v2ok {
		return Plan{V2: true}
	}
	if len(r.V1) > 0 && !v2Only {
		p := Plan{}
		set := map[string]bool{}
		var missing []string
		for _, c := range needs {
			var hs []string
			switch c {
			case Memory:
				hs = []string{V1Memory}
			case CPU:
				hs = []string{V1CPU, V1CPUAcct}
			case Pids:
				hs = []string{V1Pids}
			case IO:
				hs = []string{V1Blkio}
			}
			if _, ok := r.V1[hs[0]]; !ok {
				missing = append(missing, hs[0])
				p.Unenforced = append(p.Unenforced, l.Options(c)...)
				continue
			}
			for _, h := range hs {
				if _, ok := r.V1[h]; ok {
					set[h] = true
				}
			}
		}
		if _, ok := r.V1[V1Freezer]; ok {
			set[V1Freezer] = true
		} else if len(set) == 0 {
			// Something to track the processes with.
			for _, h := range []string{V1Pids, V1Memory, V1CPUAcct, V1CPU, V1Blkio} {
				if _, ok := r.V1[h]; ok {
					set[h] = true
					break
				}
			}
		}
		for h := range set {
			p.V1 = append(p.V1, h)
		}
		sort.Strings(p.V1)
		if len(missing) > 0 {
			p.Why = fmt.Sprintf("no writable cgroup v1 %s hierarchy", strings.Join(missing, ", "))
			if r.V2 != "" {
				p.Why += " and no such controller in cgroup v2"
			}
		}
		return p
	}
	if r.V2 != "" && !v1Only {
		p := Plan{V2: true}
		var missing []string
		for _, c := range needs {
			if !r.V2Ctrl[c] {
				missing = append(missing, c)
				p.Unenforced = append(p.Unenforced, l.Options(c)...)
			}
		}
		if len(missing) > 0 {
			p.Why = fmt.Sprintf("cgroup v2 at %s lacks the %s controller and no cgroup v1 hierarchy is writable", filepath.Dir(r.V2), strings.Join(missing, ", "))
		}
		return p
	}
	p := Plan{}
	for _, c := range needs {
		p.Unenforced = append(p.Unenforced, l.Options(c)...)
	}
	p.Why = "no usable cgroup hierarchy"
	return p
}

// Create makes the unit cgroup name as planned.
func (r *Root) Create(name string, p Plan) (*Group, error) {
	g := &Group{}
	if p.V2 {
		if r.V2 == "" {
			return nil, errors.New("no cgroup v2 root")
		}
		dir := filepath.Join(r.V2, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, err
		}
		g.V2 = dir
	}
	made := map[string]bool{}
	for _, c := range p.V1 {
		base, ok := r.V1[c]
		if !ok {
			continue
		}
		dir := filepath.Join(base, name)
		if g.V1 == nil {
			g.V1 = map[string]string{}
		}
		g.V1[c] = dir
		if made[dir] {
			continue
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			g.Remove()
			return nil, err
		}
		made[dir] = true
	}
	if g.V2 == "" && len(g.V1) == 0 {
		return nil, errors.New("no cgroup hierarchy planned")
	}
	return g, nil
}

func write(dir, file, val string) error {
	err := os.WriteFile(filepath.Join(dir, file), []byte(val), 0)
	if err != nil {
		return fmt.Errorf("%s=%s: %w", file, val, unwrapPath(err))
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func maxOr(v int64, inf string) string {
	if v == Infinity {
		return inf
	}
	return strconv.FormatInt(v, 10)
}

// Apply writes the limits. It returns one warning per limit that could
// not be set (the unit still runs).
func (g *Group) Apply(l Limits) []string {
	var warns []string
	warn := func(opt string, err error) {
		if err != nil {
			warns = append(warns, fmt.Sprintf("%s not enforced: %v", opt, err))
		}
	}
	if d := g.V2; d != "" {
		if l.MemoryMax != Unset {
			warn("MemoryMax=", write(d, "memory.max", maxOr(l.MemoryMax, "max")))
		}
		if l.MemoryHigh != Unset {
			warn("MemoryHigh=", write(d, "memory.high", maxOr(l.MemoryHigh, "max")))
		}
		if l.CPUQuota != Unset {
			warn("CPUQuota=", write(d, "cpu.max", fmt.Sprintf("%s %d", maxOr(l.CPUQuota, "max"), CPUPeriod)))
		}
		if l.CPUWeight != Unset {
			warn("CPUWeight=", write(d, "cpu.weight", strconv.FormatInt(l.CPUWeight, 10)))
		}
		if l.TasksMax != Unset {
			warn("TasksMax=", write(d, "pids.max", maxOr(l.TasksMax, "max")))
		}
		if l.IOWeight != Unset {
			warn("IOWeight=", write(d, "io.weight", "default "+strconv.FormatInt(l.IOWeight, 10)))
		}
		return warns
	}
	if d, ok := g.V1[V1Memory]; ok {
		if l.MemoryMax != Unset {
			warn("MemoryMax=", write(d, "memory.limit_in_bytes", maxOr(l.MemoryMax, "-1")))
		}
		if l.MemoryHigh != Unset {
			warn("MemoryHigh=", write(d, "memory.soft_limit_in_bytes", maxOr(l.MemoryHigh, "-1")))
		}
	}
	if d, ok := g.V1[V1CPU]; ok {
		if l.CPUQuota != Unset {
			err := write(d, "cpu.cfs_period_us", strconv.Itoa(CPUPeriod))
			if err == nil {
				err = write(d, "cpu.cfs_quota_us", maxOr(l.CPUQuota, "-1"))
			}
			warn("CPUQuota=", err)
		}
		if l.CPUWeight != Unset {
			warn("CPUWeight=", write(d, "cpu.shares", strconv.FormatInt(V1Shares(l.CPUWeight), 10)))
		}
	}
	if d, ok := g.V1[V1Pids]; ok && l.TasksMax != Unset {
		warn("TasksMax=", write(d, "pids.max", maxOr(l.TasksMax, "max")))
	}
	if d, ok := g.V1[V1Blkio]; ok && l.IOWeight != Unset {
		v := strconv.FormatInt(V1BlkioWeight(l.IOWeight), 10)
		switch {
		case exists(filepath.Join(d, "blkio.weight")):
			warn("IOWeight=", write(d, "blkio.weight", v))
		case exists(filepath.Join(d, "blkio.bfq.weight")):
			warn("IOWeight=", write(d, "blkio.bfq.weight", v))
		default:
			warns = append(warns, "IOWeight= not enforced: the cgroup v1 blkio controller has no blkio.weight here (no proportional-weight I/O scheduler such as BFQ)")
		}
	}
	return warns
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// trackDir is where the group's processes are listed: the v2 cgroup, else
// the v1 freezer, else any of its v1 cgroups.
func (g *Group) trackDir() string {
	if g.V2 != "" {
		return g.V2
	}
	if d, ok := g.V1[V1Freezer]; ok {
		return d
	}
	for _, c := range []string{V1Pids, V1Memory, V1CPUAcct, V1CPU, V1Blkio} {
		if d, ok := g.V1[c]; ok {
			return d
		}
	}
	for _, d := range g.V1 {
		return d
	}
	return ""
}

// Path is the directory that stands for the group (its tracking cgroup).
func (g *Group) Path() string { return g.trackDir() }

// Dirs lists every directory of the group, deduplicated, sorted.
func (g *Group) Dirs() []string {
	set := map[string]bool{}
	if g.V2 != "" {
		set[g.V2] = true
	}
	for _, d := range g.V1 {
		set[d] = true
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// ProcsFiles lists the cgroup.procs files a process writes its PID into
// to join the group.
func (g *Group) ProcsFiles() []string {
	var out []string
	for _, d := range g.Dirs() {
		out = append(out, filepath.Join(d, "cgroup.procs"))
	}
	return out
}

// Exists reports whether the group's tracking cgroup still exists.
func (g *Group) Exists() bool {
	d := g.trackDir()
	return d != "" && exists(filepath.Join(d, "cgroup.procs"))
}

// Procs lists the PIDs in the group (zombies included).
func (g *Group) Procs() []int {
	d := g.trackDir()
	if d == "" {
		return nil
	}
	var out []int
	for _, f := range readWords(filepath.Join(d, "cgroup.procs")) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// Join moves pid into every cgroup of the group.
func (g *Group) Join(pid int) error {
	var errs []error
	for _, f := range g.ProcsFiles() {
		if err := os.WriteFile(f, []byte(strconv.Itoa(pid)), 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Signal sends sig to every process of the group. With a v1 freezer the
// group is frozen first, so that no process forks away while the signal
// goes out, and thawed afterwards. A SIGKILL to a v2 group uses
// cgroup.kill (usedKill: the kernel then kills whatever is spawned into
// that cgroup later too). It returns the PIDs it signalled.
func (g *Group) Signal(sig syscall.Signal) (pids []int, usedKill bool) {
	if g.V2 != "" && sig == syscall.SIGKILL && len(g.Procs()) > 0 {
		if os.WriteFile(filepath.Join(g.V2, "cgroup.kill"), []byte("1"), 0) == nil {
			return g.Procs(), true
		}
	}
	if fz, ok := g.V1[V1Freezer]; ok && g.V2 == "" {
		frozen := freeze(fz)
		defer thaw(fz, frozen)
	}
	seen := map[int]bool{}
	// Without a freezer, new processes may appear while we signal: go
	// round until none is new.
	for range 10 {
		added := false
		for _, pid := range g.Procs() {
			if seen[pid] {
				continue
			}
			seen[pid] = true
			added = true
			pids = append(pids, pid)
			syscall.Kill(pid, sig)
		}
		if !added {
			break
		}
	}
	return pids, false
}

// freeze freezes a v1 freezer cgroup, waiting (a little) until it is.
func freeze(dir string) bool {
	if write(dir, "freezer.state", "FROZEN") != nil {
		return false
	}
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		st := readWords(filepath.Join(dir, "freezer.state"))
		if len(st) > 0 && st[0] == "FROZEN" {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

func thaw(dir string, frozen bool) {
	if frozen {
		_ = write(dir, "freezer.state", "THAWED")
	}
}

// OOMKills returns how many processes of the group the kernel OOM-killed
// (v2 memory.events oom_kill, v1 memory.oom_control oom_kill). exact is
// false when the kernel has no such counter and n is memory.failcnt > 0
// instead (the limit was hit).
func (g *Group) OOMKills() (n int64, exact bool) {
	if g.V2 != "" {
		return readKey(filepath.Join(g.V2, "memory.events"), "oom_kill"), true
	}
	d, ok := g.V1[V1Memory]
	if !ok {
		return 0, true
	}
	b, err := os.ReadFile(filepath.Join(d, "memory.oom_control"))
	if err == nil && strings.Contains(string(b), "oom_kill ") {
		return readKey(filepath.Join(d, "memory.oom_control"), "oom_kill"), true
	}
	if fc, err := readInt(filepath.Join(d, "memory.failcnt")); err == nil && fc > 0 {
		return 1, false
	}
	return 0, false
}

// CPUUsage returns the CPU time the group's processes used (v2 cpu.stat
// usage_usec, v1 cpuacct.usage).
func (g *Group) CPUUsage() (time.Duration, error) {
	if g.V2 != "" {
		b, err := os.ReadFile(filepath.Join(g.V2, "cpu.stat"))
		if err != nil {
			return 0, err
		}
		if !strings.Contains(string(b), "usage_usec") {
			return 0, errors.New("no usage_usec in cpu.stat")
		}
		return time.Duration(readKey(filepath.Join(g.V2, "cpu.stat"), "usage_usec")) * time.Microsecond, nil
	}
	d, ok := g.V1[V1CPUAcct]
	if !ok {
		return 0, errors.New("no cpuacct cgroup")
	}
	n, err := readInt(filepath.Join(d, "cpuacct.usage"))
	return time.Duration(n), err
}

func readKey(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == key {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// Remove removes every directory of the group; it fails (and keeps what
// it could not remove) while processes remain.
func (g *Group) Remove() error {
	var errs []error
	for _, d := range g.Dirs() {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ThreadHome returns the directories of the calling thread's own cgroups
// in the v1 hierarchies of controllers (deduplicated, in order): where a
// thread that joined a unit's v1 cgroups through their tasks files goes
// back to. Call it on a locked OS thread (runtime.LockOSThread).
func ThreadHome(controllers []string) ([]string, error) {
	b, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		return nil, err
	}
	paths := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 || f[1] == "" {
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			paths[c] = f[2]
		}
	}
	mounts := readMounts()
	var out []string
	seen := map[string]bool{}
	for _, c := range controllers {
		p, ok := paths[c]
		if !ok {
			return nil, fmt.Errorf("cgroup: this thread is in no %s hierarchy", c)
		}
		var dir string
		for _, m := range mounts {
			if !m.v2 && contains(m.opts, c) {
				dir = join(m, p)
				break
			}
		}
		if dir == "" {
			return nil, fmt.Errorf("cgroup: the %s hierarchy is not mounted", c)
		}
		if !seen[dir] {
			seen[dir] = true
			out = append(out, dir)
		}
	}
	return out, nil
}
