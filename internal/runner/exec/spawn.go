package exec

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/fleetd/fleet/internal/journal"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// environ is an ordered environment.
type environ struct {
	keys []string
	vals map[string]string
}

func newEnviron() *environ { return &environ{vals: map[string]string{}} }

func (e *environ) set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

func (e *environ) setAssign(a string) {
	if i := strings.IndexByte(a, '='); i > 0 {
		e.set(a[:i], a[i+1:])
	}
}

func (e *environ) lookup(k string) (string, bool) {
	v, ok := e.vals[k]
	return v, ok
}

func (e *environ) clone() *environ {
	c := newEnviron()
	for _, k := range e.keys {
		c.set(k, e.vals[k])
	}
	return c
}

func (e *environ) list() []string {
	out := make([]string, 0, len(e.keys))
	for _, k := range e.keys {
		out = append(out, k+"="+e.vals[k])
	}
	return out
}

// spawnError is a failure to start a process, with systemd's exit status
// for that step (200/CHDIR, 203/EXEC, 217/USER ...).
type spawnError struct {
	status int
	err    error
}

func (e *spawnError) Error() string { return e.err.Error() }

// account is the user a unit runs as.
type account struct {
	name, uid, home, shell string
	cred                   *syscall.Credential // nil: run as ourselves
}

func passwdShell(name string) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), ":")
		if len(fs) >= 7 && fs[0] == name {
			return fs[6]
		}
	}
	return ""
}

func lookupUser(name string) (*user.User, error) {
	if _, err := strconv.Atoi(name); err == nil {
		return user.LookupId(name)
	}
	return user.Lookup(name)
}

func lookupGroup(name string) (uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(g.Gid, 10, 32)
	return uint32(n), err
}

// resolveAccount looks up User= and Group=.
func resolveAccount(userName, groupName string) (*account, error) {
	var u *user.User
	var err error
	if userName != "" {
		u, err = lookupUser(userName)
		if err != nil {
			return nil, &spawnError{217, fmt.Errorf("failed to determine user credentials: %w", err)}
		}
	} else {
		u, err = user.Current()
		if err != nil {
			u = &user.User{Username: "root", Uid: strconv.Itoa(os.Getuid()), Gid: strconv.Itoa(os.Getgid()), HomeDir: "/root"}
		}
	}
	a := &account{name: u.Username, uid: u.Uid, home: u.HomeDir, shell: passwdShell(u.Username)}
	if a.shell == "" {
		a.shell = "/bin/sh"
	}
	if userName == "" && groupName == "" {
		return a, nil
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if groupName != "" {
		g, err := lookupGroup(groupName)
		if err != nil {
			return nil, &spawnError{216, fmt.Errorf("failed to determine group credentials: %w", err)}
		}
		cred.Gid = g
	}
	if userName != "" {
		if ids, err := u.GroupIds(); err == nil {
			for _, id := range ids {
				if n, err := strconv.ParseUint(id, 10, 32); err == nil && uint32(n) != cred.Gid {
					cred.Groups = append(cred.Groups, uint32(n))
				}
			}
		}
	}
	a.cred = cred
	return a, nil
}

func invocationID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// prepare computes what every process of one start shares: specifiers,
// environment, working directory and credentials.
func (u *unit) prepare(rc *runCtx) error {
	cfg := rc.cfg
	base := specifiers{
		name:      u.name,
		hostname:  u.r.opts.Hostname,
		machineID: u.r.opts.MachineID,
		bootID:    u.r.opts.BootID,
	}
	acct, err := resolveAccount(base.expand(cfg.user), base.expand(cfg.group))
	if err != nil {
		return err
	}
	base.user, base.uid, base.home, base.shell = acct.name, acct.uid, acct.home, acct.shell
	rc.sp, rc.cred = base, acct.cred

	env := newEnviron()
	env.set("PATH", defaultPath)
	if lang := os.Getenv("LANG"); lang != "" {
		env.set("LANG", lang)
	}
	env.set("HOME", acct.home)
	env.set("LOGNAME", acct.name)
	env.set("USER", acct.name)
	env.set("SHELL", acct.shell)
	env.set("INVOCATION_ID", invocationID())
	for _, a := range u.r.opts.Env {
		env.setAssign(a)
	}
	if rc.cred == nil {
		for _, a := range u.r.opts.PrivilegedEnv {
			env.setAssign(a)
		}
	}
	for _, v := range cfg.environment {
		assign, bad, err := parseEnvironment(rc.sp.expand(v))
		if err != nil {
			return fmt.Errorf("invalid Environment=%s: %w", v, err)
		}
		for _, b := range bad {
			u.logf("Ignoring invalid environment assignment '%s'.", b)
		}
		for _, a := range assign {
			env.setAssign(a)
		}
	}
	for _, f := range cfg.envFiles {
		path := rc.sp.expand(f.path)
		paths := []string{path}
		if strings.ContainsAny(path, "*?[") {
			paths, _ = filepath.Glob(path)
		}
		if len(paths) == 0 && !f.optional {
			return &spawnError{0, fmt.Errorf("failed to load environment file %s: no such file", path)}
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				if f.optional && errors.Is(err, os.ErrNotExist) {
					continue
				}
				return fmt.Errorf("failed to load environment file %s: %w", p, err)
			}
			assign, err := parseEnvFile(string(data))
			if err != nil {
				return fmt.Errorf("failed to load environment file %s: %w", p, err)
			}
			for _, a := range assign {
				env.setAssign(a)
			}
		}
	}
	rc.env = env

	rc.dir = "/"
	if cfg.workingDir != "" {
		dir := rc.sp.expand(cfg.workingDir)
		switch {
		case dir == "~":
			dir = acct.home
		case strings.HasPrefix(dir, "~/"):
			dir = filepath.Join(acct.home, dir[2:])
		}
		st, err := os.Stat(dir)
		switch {
		case err == nil && st.IsDir():
			rc.dir = dir
		case cfg.wdOptional:
		case err == nil:
			return &spawnError{200, fmt.Errorf("changing to the requested working directory failed: %s: not a directory", dir)}
		default:
			return &spawnError{200, fmt.Errorf("changing to the requested working directory failed: %w", err)}
		}
	}
	return nil
}

// commandLine expands one Exec line into path and argv.
func commandLine(l execLine, sp specifiers, env *environ) (display, path string, argv []string, err error) {
	display = sp.expand(l.line)
	path, argv, err = commandWords(display, l.execPrefix, env)
	return display, path, argv, err
}

// commandWords splits an Exec line whose specifiers are expanded, expands
// environment variables (unless the prefix says not to) and finds the
// executable in $PATH.
func commandWords(display string, l execPrefix, env *environ) (path string, argv []string, err error) {
	words, err := SplitWords(display)
	if err != nil {
		return "", nil, &spawnError{203, err}
	}
	if !l.noEnv {
		var out []string
		for _, w := range words {
			out = append(out, expandWord(w, env.lookup)...)
		}
		words = out
	}
	if len(words) == 0 {
		return "", nil, &spawnError{203, errors.New("empty command line")}
	}
	path, argv = words[0], words
	if l.argv0 {
		if len(words) < 2 {
			return "", nil, &spawnError{203, errors.New("@ prefix needs an executable and argv[0]")}
		}
		argv = words[1:]
	}
	if !filepath.IsAbs(path) {
		if strings.Contains(path, "/") {
			return "", nil, &spawnError{203, fmt.Errorf("executable path %q is not absolute", path)}
		}
		p, _ := env.lookup("PATH")
		if p == "" {
			p = defaultPath
		}
		found := ""
		for _, dir := range filepath.SplitList(p) {
			if !filepath.IsAbs(dir) {
				continue
			}
			cand := filepath.Join(dir, path)
			if st, err := os.Stat(cand); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				found = cand
				break
			}
		}
		if found == "" {
			return "", nil, &spawnError{203, fmt.Errorf("failed to locate executable %s: no such file or directory", path)}
		}
		path = found
	}
	return path, argv, nil
}

// proc is one process the runner started.
type proc struct {
	pid   int
	ident string
	done  chan struct{}
	ws    syscall.WaitStatus
	// byShim: the process's shim stopped the unit itself (stale
	// heartbeat), ExecStop= and ExecStopPost= included.
	byShim bool
}

func exitInfo(ws syscall.WaitStatus) (code string, status int) {
	switch {
	case ws.Exited():
		return "exited", ws.ExitStatus()
	case ws.Signaled() && ws.CoreDump():
		return "dumped", int(ws.Signal())
	case ws.Signaled():
		return "killed", int(ws.Signal())
	}
	return "exited", 0
}

// retryWithoutCgroup reports whether a spawn error could come from
// CLONE_INTO_CGROUP rather than from the command itself.
func retryWithoutCgroup(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.ENOENT, syscall.EACCES, syscall.ENOEXEC, syscall.ENOTDIR, syscall.ELOOP,
		syscall.ETXTBSY, syscall.E2BIG, syscall.EISDIR, syscall.ENAMETOOLONG:
		return false
	}
	return true
}

// start starts path/argv in the unit's group, with stdout and stderr
// going to the journal. onExit runs (in its own goroutine) once the
// process has been reaped, before done is closed.
// spawnFailed turns a failed exec into systemd's exit status for it: 200
// (CHDIR) when the working directory is missing, 216 (GROUP) when the
// credentials could not be set, 203 (EXEC) otherwise.
func (rc *runCtx) spawnFailed(err error) *spawnError {
	var se *setupError
	if errors.As(err, &se) && se.status() != 0 {
		return &spawnError{se.status(), err}
	}
	status := 203
	if errors.Is(err, syscall.ENOENT) && rc.dir != "/" {
		if _, serr := os.Stat(rc.dir); serr != nil {
			status = 200
		}
	}
	if rc.cred != nil && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL)) {
		status = 216
	}
	return &spawnError{status, err}
}

func (u *unit) startProcess(rc *runCtx, path string, argv []string, env []string, onExit func(*proc)) (*proc, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, &spawnError{208, err}
	}
	defer devnull.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, &spawnError{209, err}
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, &spawnError{222, err}
	}
	attr := &os.ProcAttr{
		Dir:   rc.dir,
		Env:   env,
		Files: []*os.File{devnull, outW, errW},
		Sys:   &syscall.SysProcAttr{Setpgid: true, Credential: rc.cred},
	}
	cg := rc.g.spawnCgroup()
	rp := u.r.rp
	rp.mu.Lock()
	p, confirm, err := spawnInto(cg, rc.cfg.rlimits, path, argv, attr)
	if err == nil {
		rp.managed[p.Pid] = struct{}{}
	}
	rp.mu.Unlock()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, rc.spawnFailed(err)
	}
	pr := &proc{pid: p.Pid, ident: filepath.Base(path), done: make(chan struct{})}
	c := rp.watch(p) // p is released: use pr.pid
	if err := confirm(); err != nil {
		outR.Close()
		errR.Close()
		rp.wait(c)
		return nil, rc.spawnFailed(err)
	}
	rc.g.added(pr.pid)

	copyOut := func(r *os.File, stream string) {
		defer r.Close()
		j := u.r.opts.Journal
		if j == nil {
			io.Copy(io.Discard, r)
			return
		}
		w := j.StreamWriter(u.name, pr.ident, pr.pid, stream)
		io.Copy(w, r)
		w.Close()
	}
	go copyOut(outR, journal.StreamStdout)
	go copyOut(errR, journal.StreamStderr)
	go func() {
		// Blocks no thread (pidfd in the runtime's poller), see rp.wait.
		if ws, ok := rp.wait(c); ok {
			pr.ws = ws
		}
		if onExit != nil {
			onExit(pr)
		}
		close(pr.done)
		u.r.kick()
	}()
	return pr, nil
}
