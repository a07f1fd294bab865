package tmpl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/fleetd/fleet/internal/cmdflags"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// StatusHandler serves GET /status (and GET /): a JSON object
// {"resources": [ResourceStatus...]}.
func (d *Daemon) StatusHandler() http.Handler {
	mux := http.NewServeMux()
	h := func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/" && req.URL.Path != "/status" {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Resources []ResourceStatus `json:"resources"`
		}{d.Status()})
	}
	mux.HandleFunc("GET /", h)
	return mux
}

const usageText = `Usage: fleetd confd [flags]

Renders configuration files from etcd keys, like confd: each
<confdir>/conf.d/*.toml names a template under <confdir>/templates, the
destination file, and the keys it reads. When the rendered file differs from
the destination it is staged next to it, checked with check_cmd, renamed
over the destination and reload_cmd runs.

Modes:
  --onetime         render every resource once and exit (non-zero on error)
  --watch           render, then watch etcd and re-render on change; bursts
                    are coalesced by --wait-min/--wait-max; --interval, if
                    set, adds a periodic full resync
  (neither)         poll: render every --interval seconds

Flags take two dashes (--onetime); one works too (-onetime -backend etcd), as
in confd. A flag not given on the command line takes the value of its FLEET_*
variable, where one is named.

Exit status: 0 on success (and when --watch or polling stops on a signal),
1 on runtime errors, 2 on bad flags.

`

// stringsFlag is a repeatable, comma-separated list flag.
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }
func (s *stringsFlag) Type() string   { return "URLs" }
func (s *stringsFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}

// Main is `fleetd confd`: it parses args, connects to etcd and runs in the
// mode the flags ask for until ctx is done. env supplies FLEET_ETCD_SERVERS,
// getenv and the commands' environment. It returns the exit code: 0 on
// success, 1 on a runtime failure, 2 on a usage error.
func Main(ctx context.Context, args []string, env []string, stdout, stderr io.Writer) int {
	fset := cmdflags.New("fleetd confd")
	var (
		confDir     = fset.String("confdir", "/etc/confd", "`dir`ectory holding conf.d/*.toml and templates/")
		onetime     = fset.Bool("onetime", false, "render once and exit")
		watch       = fset.Bool("watch", false, "watch etcd and re-render on change")
		interval    = fset.Int("interval", 600, "polling period in `seconds`; with --watch, a full resync period (0: none)")
		prefix      = fset.String("prefix", "", "key `prefix` prepended to every resource's prefix and keys")
		nodes       stringsFlag
		servers     = fset.String("etcd-servers", "", "comma-separated etcd client `URLs` (default $FLEET_ETCD_SERVERS or http://127.0.0.1:2379)")
		noop        = fset.Bool("noop", false, "render and compare only: never write files or run commands")
		syncOnly    = fset.Bool("sync-only", false, "write files but skip check_cmd and reload_cmd")
		keepStage   = fset.Bool("keep-stage-file", false, "keep staged files that fail check_cmd (or, with --noop, would be installed)")
		waitMin     = fset.Duration("wait-min", 50*time.Millisecond, "watch mode: render once changes have been quiet this long")
		waitMax     = fset.Duration("wait-max", time.Second, "watch mode: render at most this long after the first change of a burst")
		statusAddr  = fset.String("status-addr", "", "serve GET /status (JSON per resource) on this `address`, e.g. 127.0.0.1:9180")
		logLevel    = fset.String("log-level", "info", "log `level`: debug, info, warn or error")
		backend     = fset.String("backend", "etcdv3", "backend `name`, for confd compatibility: only etcd and etcdv3 are supported")
		dialTimeout = fset.Duration("dial-timeout", 5*time.Second, "etcd dial timeout")
	)
	fset.Var(&nodes, "node", "etcd client `URL`; repeatable or comma-separated (confd's name for --etcd-servers)")
	etcd := cmdflags.AddEtcd(fset, env)
	if err := cmdflags.Parse(fset, args); err != nil {
		if errors.Is(err, cmdflags.ErrHelp) {
			cmdflags.Usage(stdout, usageText, fset)
			return 0
		}
		fmt.Fprintf(stderr, "fleetd confd: %v\nRun 'fleetd confd --help' for usage.\n", err)
		return 2
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(stderr, "fleetd confd: unexpected arguments: %q (all settings are flags)\n", fset.Args())
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "fleetd confd: --log-level: %v\n", err)
		return 2
	}
	switch *backend {
	case "etcd", "etcdv3":
	default:
		fmt.Fprintf(stderr, "fleetd confd: --backend %q is not supported (only etcd)\n", *backend)
		return 2
	}
	if *waitMin < 0 || *waitMax < 0 {
		fmt.Fprintln(stderr, "fleetd confd: --wait-min and --wait-max must not be negative")
		return 2
	}
	if *waitMax < *waitMin {
		fmt.Fprintln(stderr, "fleetd confd: --wait-max must be at least --wait-min")
		return 2
	}
	if *interval < 0 || (*interval == 0 && !*watch && !*onetime) {
		fmt.Fprintln(stderr, "fleetd confd: --interval must be positive when polling")
		return 2
	}
	if *servers != "" {
		_ = nodes.Set(*servers)
	}
	if len(nodes) == 0 {
		for _, e := range env {
			if v, ok := strings.CutPrefix(e, "FLEET_ETCD_SERVERS="); ok {
				_ = nodes.Set(v)
			}
		}
	}
	if len(nodes) == 0 {
		nodes = stringsFlag{"http://127.0.0.1:2379"}
	}
	creds, err := etcd.Credentials(nodes)
	if err != nil {
		fmt.Fprintf(stderr, "fleetd confd: %v\n", err)
		return 2
	}

	lg := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("component", "confd")
	if *onetime && *watch {
		lg.Warn("--onetime and --watch both given: running once")
	}

	cfgs, err := LoadConfDir(*confDir)
	if err != nil {
		fmt.Fprintf(stderr, "fleetd confd: %v\n", err)
		return 1
	}
	dctx, dcancel := context.WithTimeout(ctx, *dialTimeout+5*time.Second)
	kc, err := etcdkv.Dial(dctx, creds, etcdkv.DialOptions{ProbeKey: "/", Logger: lg})
	dcancel()
	if err != nil {
		fmt.Fprintf(stderr, "fleetd confd: %v\n", err)
		return 1
	}
	defer kc.Close()
	d, err := NewWithResources(kc, Options{
		ConfDir:       *confDir,
		Prefix:        *prefix,
		Noop:          *noop,
		SyncOnly:      *syncOnly,
		KeepStageFile: *keepStage,
		WaitMin:       *waitMin,
		WaitMax:       *waitMax,
		Interval:      time.Duration(*interval) * time.Second,
		Env:           env,
		Logger:        lg,
	}, cfgs)
	if err != nil {
		fmt.Fprintf(stderr, "fleetd confd: %v\n", err)
		return 1
	}

	if *onetime {
		if err := d.Once(ctx); err != nil {
			return 1
		}
		return 0
	}

	if *statusAddr != "" {
		ln, err := net.Listen("tcp", *statusAddr)
		if err != nil {
			fmt.Fprintf(stderr, "fleetd confd: --status-addr: %v\n", err)
			return 1
		}
		srv := &http.Server{Handler: d.StatusHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				lg.Error("status server", "err", err)
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		lg.Info("status endpoint", "url", "http://"+ln.Addr().String()+"/status")
	}

	lg.Info("starting", "confdir", *confDir, "resources", len(cfgs), "etcd", []string(nodes), "watch", *watch)
	if *watch {
		_ = d.Watch(ctx)
	} else if err := d.Poll(ctx); err != nil {
		fmt.Fprintf(stderr, "fleetd confd: %v\n", err)
		return 1
	}
	return 0
}
