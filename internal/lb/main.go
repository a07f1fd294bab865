package lb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/fleetd/fleet/internal/clusterauth"
	"github.com/fleetd/fleet/internal/cmdflags"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

const usageText = `Usage: fleetd lb --listen ADDR --service NAME [flags]

fleetd lb balances traffic for one service over the endpoints registered in
etcd under <services-prefix><NAME>/ (registrator's layout: key
"<host>:<unit-or-container>:<port>", value "ip:port"). Changes apply in memory
within milliseconds, without a restart or a re-listen. Removed endpoints drain:
no new requests go to them, in-flight requests and connections finish (or are
cut after --drain-timeout), then their idle connections are closed. A connect
that fails is retried on another endpoint. With no endpoint, HTTP requests get
503 "no backend available for service "NAME"" and TCP connections are closed.

While etcd is unreachable fleetd lb keeps serving the last known endpoints and
retries, logging a warning per attempt. Before the first successful read it
serves 503s; with --etcd-timeout it gives up (exit 1) if that first read has
not succeeded in time.

Exit status: 0 after a clean shutdown (SIGINT/SIGTERM), 1 on runtime errors,
2 on bad flags.

Flags take two dashes (--listen); one works too (-listen), as with Go's flag
package. A flag not given on the command line takes the value of its FLEET_*
variable, where one is named.

`

// validServiceName reports whether name matches [A-Za-z0-9_.-]+.
func validServiceName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
		default:
			return false
		}
	}
	return true
}

// options are fleetd lb's parsed flags.
type options struct {
	listen         string
	service        string
	mode           string
	balance        string
	etcdServers    []string
	creds          clusterauth.Credentials
	prefix         string
	drainTimeout   time.Duration
	connectTimeout time.Duration
	etcdTimeout    time.Duration
	bodyTimeout    time.Duration
	maxConns       int
	statusAddr     string
	logFormat      string
	debug          bool
	cpuProfile     string
}

func lookupEnv(env []string, key string) (string, bool) {
	var val string
	var found bool
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			val, found = v, true // the last one wins, as with getenv
		}
	}
	return val, found
}

// parseFlags parses args; cmdflags.ErrHelp means --help was printed to
// stdout.
func parseFlags(args, env []string, stdout io.Writer) (options, error) {
	var o options
	fs := cmdflags.New("fleetd lb")
	envOr := func(key, def string) string {
		if v, ok := lookupEnv(env, key); ok && v != "" {
			return v
		}
		return def
	}
	var etcdServers string
	fs.StringVar(&o.listen, "listen", "", "`ADDR` to accept traffic on, e.g. :8000 or 10.0.0.5:80 (required)")
	fs.StringVar(&o.service, "service", "", "service `NAME` to balance: [A-Za-z0-9_.-]+ (required)")
	fs.StringVar(&o.mode, "mode", "http", "`http` (reverse proxy, per-request balancing) or tcp (per-connection)")
	fs.StringVar(&o.balance, "balance", BalanceRoundRobin, "`algorithm`: roundrobin or leastconn (fewest in-flight requests/connections)")
	fs.StringVar(&etcdServers, "etcd-servers", envOr("FLEET_ETCD_SERVERS", "http://127.0.0.1:2379"), "etcd client `URLs`, comma separated (env FLEET_ETCD_SERVERS)")
	etcd := cmdflags.AddEtcd(fs, env)
	fs.StringVar(&o.prefix, "services-prefix", "/services/", "etcd `prefix` of service registrations")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", DefaultDrainTimeout, "how long removed backends' in-flight work, and everything at shutdown, may run before it is cut (`duration`)")
	fs.DurationVar(&o.connectTimeout, "connect-timeout", DefaultConnectTimeout, "`timeout` of one connect to a backend; on failure the next backend is tried")
	fs.DurationVar(&o.bodyTimeout, "body-timeout", DefaultBodyTimeout, "HTTP: close a client that sends no byte of its request body for this `duration` (408 if nothing was answered yet), releasing the backend connection; 0: no limit")
	fs.IntVar(&o.maxConns, "max-conns", DefaultMaxConns, "at most this many client connections at once (`N`); beyond, new ones wait in the kernel's accept queue, as with HAProxy's maxconn; 0: no cap")
	fs.DurationVar(&o.etcdTimeout, "etcd-timeout", 0, "exit 1 if the first read from etcd has not succeeded within this `duration` (0: keep retrying)")
	fs.StringVar(&o.statusAddr, "status-addr", "", "`ADDR` serving GET /status: JSON of the backends with in-flight counts (off when empty)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log `format`: text or json")
	fs.BoolVar(&o.debug, "debug", false, "log at debug level (every retried connect, every 503)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile to `file` until exit (for benchmarks)")

	if err := cmdflags.Parse(fs, args); err != nil {
		if errors.Is(err, cmdflags.ErrHelp) {
			cmdflags.Usage(stdout, usageText, fs)
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (all settings are flags)", fs.Arg(0))
	}
	if o.listen == "" {
		return o, errors.New("--listen is required, e.g. --listen :8000")
	}
	if err := checkAddr(o.listen); err != nil {
		return o, fmt.Errorf("--listen %q: %v", o.listen, err)
	}
	if o.service == "" {
		return o, errors.New("--service is required, e.g. --service web")
	}
	if !validServiceName(o.service) {
		return o, fmt.Errorf("--service %q: invalid name; use letters, digits, '_', '.' and '-' only", o.service)
	}
	if o.mode != "http" && o.mode != "tcp" {
		return o, fmt.Errorf("--mode %q: want http or tcp", o.mode)
	}
	if _, err := NewPicker(o.balance); err != nil || o.balance == "" {
		return o, fmt.Errorf("--balance %q: want %s or %s", o.balance, BalanceRoundRobin, BalanceLeastConn)
	}
	for _, s := range strings.Split(etcdServers, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return o, fmt.Errorf("--etcd-servers: %q is not an http(s)://host:port URL", s)
		}
		o.etcdServers = append(o.etcdServers, s)
	}
	if len(o.etcdServers) == 0 {
		return o, errors.New("--etcd-servers is empty")
	}
	if !strings.HasPrefix(o.prefix, "/") {
		return o, fmt.Errorf("--services-prefix %q: must start with /", o.prefix)
	}
	if !strings.HasSuffix(o.prefix, "/") {
		o.prefix += "/"
	}
	if o.drainTimeout < 0 {
		return o, fmt.Errorf("--drain-timeout %v: must not be negative", o.drainTimeout)
	}
	if o.connectTimeout <= 0 {
		return o, fmt.Errorf("--connect-timeout %v: must be positive", o.connectTimeout)
	}
	if o.bodyTimeout < 0 {
		return o, fmt.Errorf("--body-timeout %v: must not be negative", o.bodyTimeout)
	}
	if o.maxConns < 0 {
		return o, fmt.Errorf("--max-conns %d: must not be negative", o.maxConns)
	}
	if o.etcdTimeout < 0 {
		return o, fmt.Errorf("--etcd-timeout %v: must not be negative", o.etcdTimeout)
	}
	if o.statusAddr != "" {
		if err := checkAddr(o.statusAddr); err != nil {
			return o, fmt.Errorf("--status-addr %q: %v", o.statusAddr, err)
		}
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return o, fmt.Errorf("--log-format %q: want text or json", o.logFormat)
	}
	creds, err := etcd.Credentials(o.etcdServers)
	if err != nil {
		return o, err
	}
	o.creds = creds
	return o, nil
}

func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want [host]:port: %v", err)
	}
	if port == "" {
		return errors.New("missing port")
	}
	return nil
}

// Main runs "fleetd lb" with args (after the "lb" word) until ctx ends and
// returns the exit status: 0 after a clean shutdown, 1 on runtime errors, 2
// on bad flags.
func Main(ctx context.Context, args []string, env []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, env, stdout)
	if errors.Is(err, cmdflags.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "fleetd lb: %v\nRun 'fleetd lb --help' for usage.\n", err)
		return 2
	}
	level := slog.LevelInfo
	if o.debug {
		level = slog.LevelDebug
	}
	hopts := &slog.HandlerOptions{Level: level}
	var logger *slog.Logger
	if o.logFormat == "json" {
		logger = slog.New(slog.NewJSONHandler(stderr, hopts))
	} else {
		logger = slog.New(slog.NewTextHandler(stderr, hopts))
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "fleetd lb: --cpuprofile: %v\n", err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			fmt.Fprintf(stderr, "fleetd lb: --cpuprofile: %v\n", err)
			return 1
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if err := run(ctx, o, logger); err != nil {
		fmt.Fprintf(stderr, "fleetd lb: %v\n", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, o options, logger *slog.Logger) error {
	// Like the first read, connecting waits for etcd, up to --etcd-timeout.
	dctx := ctx
	if o.etcdTimeout > 0 {
		var dcancel context.CancelFunc
		dctx, dcancel = context.WithTimeout(ctx, o.etcdTimeout)
		defer dcancel()
	}
	kc, err := etcdkv.Dial(dctx, o.creds, etcdkv.DialOptions{ProbeKey: o.prefix, Logger: logger, Wait: true,
		ClientOptions: []etcdkv.Option{etcdkv.WithTimeout(requestTimeout(o.etcdTimeout))}})
	if err != nil {
		if o.etcdTimeout > 0 && dctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("etcd at %s not reachable within --etcd-timeout %v (%v); check --etcd-servers and that etcd is up",
				strings.Join(o.etcdServers, ","), o.etcdTimeout, err)
		}
		return err
	}
	defer kc.Close()

	pool, err := NewPool(PoolConfig{Service: o.service, Balance: o.balance, DrainTimeout: drainOrForever(o.drainTimeout), Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	defer ln.Close()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	watcher := NewWatcher(WatcherConfig{Client: kc, Prefix: o.prefix + o.service + "/", Update: pool.Update, Logger: logger})
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); watcher.Run(ctx) }()
	defer func() { cancel(nil); <-watchDone }()

	if o.statusAddr != "" {
		sln, err := net.Listen("tcp", o.statusAddr)
		if err != nil {
			return fmt.Errorf("--status-addr: %w", err)
		}
		srv := &http.Server{Handler: statusHandler(o, pool, watcher), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(sln)
		defer srv.Close()
		logger.Info("lb: status on http://"+sln.Addr().String()+"/status", "service", o.service)
	}

	if o.etcdTimeout > 0 {
		go func() {
			t := time.NewTimer(o.etcdTimeout)
			defer t.Stop()
			select {
			case <-watcher.Ready():
			case <-ctx.Done():
			case <-t.C:
				last := watcher.LastError()
				if last == nil {
					last = errors.New("no answer yet")
				}
				cancel(fmt.Errorf("etcd at %s not reachable within --etcd-timeout %v (last error: %v); check --etcd-servers and that etcd is up",
					strings.Join(o.etcdServers, ","), o.etcdTimeout, last))
			}
		}()
	}

	logger.Info("lb: listening", "addr", ln.Addr().String(), "service", o.service, "mode", o.mode, "balance", o.balance,
		"max_conns", o.maxConns, "body_timeout", o.bodyTimeout,
		"prefix", o.prefix+o.service+"/", "etcd", strings.Join(o.etcdServers, ","))

	var serveErr error
	switch o.mode {
	case "tcp":
		tp := NewTCPProxy(TCPConfig{Service: o.service, Pool: pool, ConnectTimeout: o.connectTimeout,
			DrainTimeout: drainOrForever(o.drainTimeout), Logger: logger, MaxConns: o.maxConns})
		serveErr = tp.Serve(ctx, ln)
	default:
		bodyTimeout := o.bodyTimeout
		if bodyTimeout == 0 {
			bodyTimeout = -1 // no limit
		}
		hp := NewHTTPProxy(HTTPConfig{Service: o.service, Pool: pool, ConnectTimeout: o.connectTimeout, Logger: logger,
			DrainTimeout: drainOrForever(o.drainTimeout), BodyTimeout: bodyTimeout, MaxConns: o.maxConns})
		serveErr = hp.Serve(ctx, ln)
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		return cause
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && ctx.Err() == nil {
		return fmt.Errorf("serve %s: %w", o.listen, serveErr)
	}
	logger.Info("lb: stopped", "service", o.service)
	return nil
}

// drainOrForever maps --drain-timeout 0 to "cut at once" for the pool and
// the TCP proxy, whose zero value means the default.
func drainOrForever(d time.Duration) time.Duration {
	if d == 0 {
		return time.Nanosecond
	}
	return d
}

// Status is the JSON document of GET /status.
type Status struct {
	Service  string          `json:"service"`
	Mode     string          `json:"mode"`
	Balance  string          `json:"balance"`
	Listen   string          `json:"listen"`
	Synced   bool            `json:"synced"`
	EtcdErr  string          `json:"etcd_error,omitempty"`
	Backends []BackendStatus `json:"backends"`
}

func statusHandler(o options, pool *Pool, w *Watcher) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsHandler(o.service, pool))
	mux.HandleFunc("GET /status", func(rw http.ResponseWriter, r *http.Request) {
		st := Status{Service: o.service, Mode: o.mode, Balance: o.balance, Listen: o.listen, Backends: pool.Status()}
		select {
		case <-w.Ready():
			st.Synced = true
		default:
		}
		if err := w.LastError(); err != nil {
			st.EtcdErr = err.Error()
		}
		rw.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(rw)
		enc.SetIndent("", "  ")
		enc.Encode(st)
	})
	return mux
}

// requestTimeout bounds each etcd request: 3 s, less under a short
// --etcd-timeout.
func requestTimeout(etcdTimeout time.Duration) time.Duration {
	d := 3 * time.Second
	if etcdTimeout > 0 {
		d = min(d, max(etcdTimeout/3, 100*time.Millisecond))
	}
	return d
}
