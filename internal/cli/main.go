package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fleetd/fleet/internal/client"
	"github.com/fleetd/fleet/internal/version"
)

const (
	cliName        = "fleetctl"
	cliDescription = "fleetctl is a command-line interface to fleet, the cluster-wide CoreOS init system."

	// DefaultEndpoint is where fleetctl looks for fleetd's API.
	DefaultEndpoint = "unix:///var/run/fleet.sock"

	envPrefix = "FLEETCTL_"

	driverAPI  = "API"
	driverEtcd = "etcd"
)

// globalOptions are fleetctl's global (persistent) flags.
type globalOptions struct {
	endpoint        string
	driver          string
	etcdKeyPrefix   string
	keyFile         string
	certFile        string
	caFile          string
	token           string
	tokenFile       string
	tunnel          string
	sshUsername     string
	sshTimeout      float64
	knownHostsFile  string
	strictHostKey   bool
	requestTimeout  float64
	debug           bool
	version         bool
	experimentalAPI bool
}

// app is the state of one fleetctl invocation.
type app struct {
	ctx    context.Context
	env    map[string]string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	g    globalOptions
	exit int
	// cliFlags are the global flags given on the command line (not from
	// FLEETCTL_* variables).
	cliFlags map[string]bool

	api      *client.Client
	machines map[string]client.Machine // cache for legends; nil until loaded

	// poll is the interval between two looks at the cluster while
	// waiting; window is the length of one --block-attempts attempt.
	poll   time.Duration
	window time.Duration
	// failedGrace is how long a started unit may stay "failed" before
	// start gives up on it.
	failedGrace time.Duration
	// rolloutPoll is the interval between two looks at a rollout that
	// fleetctl follows.
	rolloutPoll time.Duration
}

// Main runs fleetctl with args (without the program name) and returns its
// exit code. env holds KEY=VALUE strings (os.Environ()).
func Main(ctx context.Context, args []string, env []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return newApp(ctx, env, stdin, stdout, stderr).main(args)
}

func newApp(ctx context.Context, env []string, stdin io.Reader, stdout, stderr io.Writer) *app {
	a := &app{
		ctx:         ctx,
		env:         parseEnv(env),
		stdin:       stdin,
		stdout:      stdout,
		stderr:      stderr,
		poll:        250 * time.Millisecond,
		window:      2 * time.Second,
		failedGrace: 3 * time.Second,
		rolloutPoll: 500 * time.Millisecond,
	}
	if stdin == nil {
		a.stdin = strings.NewReader("")
	}
	return a
}

func parseEnv(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			m[k] = v
		}
	}
	return m
}

// flagError is a command-line parsing problem: printed with the usage.
type flagError struct {
	cmd *cobra.Command
	err error
}

func (e *flagError) Error() string { return e.err.Error() }

func (a *app) main(args []string) int {
	root := a.newRoot()
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-v") {
		a.printVersion()
		return 0
	}
	args = normalizeArgs(root, args)
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(a.ctx)
	if err == nil {
		return a.exit
	}
	var fe *flagError
	if errors.As(err, &fe) {
		a.errf("Error: %v", fe.err)
		a.printUsage(fe.cmd, a.stderr)
		return 1
	}
	a.errf("Error: %v", err)
	a.errf("Run '%s help' for usage.", cliName)
	return 1
}

// out prints a line to stdout (a newline is added if missing).
func (a *app) out(format string, args ...any) {
	fmt.Fprint(a.stdout, withNewline(fmt.Sprintf(format, args...)))
}

// errf prints a line to stderr (a newline is added if missing).
func (a *app) errf(format string, args ...any) {
	fmt.Fprint(a.stderr, withNewline(fmt.Sprintf(format, args...)))
}

func withNewline(s string) string {
	if !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}

func (a *app) debugf(format string, args ...any) {
	if a.g.debug {
		a.errf("DEBUG: "+format, args...)
	}
}

func (a *app) printVersion() {
	a.out("%s version %s", cliName, version.Version)
}

// flagAliases maps fleet's other spellings of flags to ours: cobra-era
// fleetctl registered -l, -f and -A as long flags (--l, --f, --A), and the
// etcd TLS flags had etcd- names.
func flagAliases(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	switch name {
	case "l":
		name = "full"
	case "f":
		name = "follow"
	case "A":
		name = "forward-agent"
	case "h":
		name = "help"
	case "etcd-keyfile":
		name = "key-file"
	case "etcd-certfile":
		name = "cert-file"
	case "etcd-cafile":
		name = "ca-file"
	}
	return pflag.NormalizedName(name)
}

func (a *app) newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           cliName,
		Short:         cliDescription,
		SilenceErrors: true,
		SilenceUsage:  true,
		Run: func(cmd *cobra.Command, args []string) {
			if a.g.version {
				a.printVersion()
				return
			}
			a.printHelp(cmd)
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return a.applyEnv(cmd.Root().PersistentFlags())
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetGlobalNormalizationFunc(flagAliases)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &flagError{cmd: c, err: err}
	})
	root.SetHelpFunc(func(c *cobra.Command, _ []string) { a.printHelp(c) })
	root.SetUsageFunc(func(c *cobra.Command) error { a.printUsage(c, c.OutOrStderr()); return nil })

	pf := root.PersistentFlags()
	g := &a.g
	pf.BoolVar(&g.debug, "debug", false, "Print out more debug information to stderr")
	pf.BoolVar(&g.version, "version", false, "Print the version and exit")
	pf.StringVar(&g.driver, "driver", driverAPI, fmt.Sprintf("Adapter used to execute fleetctl commands. Only %q is supported.", driverAPI))
	pf.StringVar(&g.endpoint, "endpoint", DefaultEndpoint, "Location of the fleet API: http://host:port, https://host:port or unix:///path/to/socket")
	pf.StringVar(&g.etcdKeyPrefix, "etcd-key-prefix", "/_coreos.com/fleet/", "Keyspace for fleet data in etcd (etcd driver only; unused)")
	pf.StringVar(&g.keyFile, "key-file", "", "Location of TLS key file used to secure communication with the fleet API")
	pf.StringVar(&g.certFile, "cert-file", "", "Location of TLS cert file used to secure communication with the fleet API")
	pf.StringVar(&g.caFile, "ca-file", "", "Location of TLS CA file used to secure communication with the fleet API")
	pf.StringVar(&g.token, "token", "", "Access token for the fleet API (sent as Authorization: Bearer; also FLEETCTL_TOKEN)")
	pf.StringVar(&g.tokenFile, "token-file", "", "File holding the access token for the fleet API, e.g. fleetd's "+defaultAdminTokenFile+" (also FLEETCTL_TOKEN_FILE)")
	pf.StringVar(&g.knownHostsFile, "known-hosts-file", "~/.fleetctl/known_hosts", "File used to store remote machine fingerprints (SSH is not used; accepted for compatibility)")
	pf.BoolVar(&g.strictHostKey, "strict-host-key-checking", true, "Verify host keys presented by remote machines (SSH is not used; accepted for compatibility)")
	pf.Float64Var(&g.sshTimeout, "ssh-timeout", 10.0, "Amount of time in seconds to allow for SSH connection initialization (SSH is not used; accepted for compatibility)")
	pf.StringVar(&g.tunnel, "tunnel", "", "SSH tunnel to the fleet API (not supported: point --endpoint at a reachable fleetd)")
	pf.Float64Var(&g.requestTimeout, "request-timeout", 3.0, "Amount of time in seconds to allow a single API request before considering it failed (0 = no limit; never applies to journal)")
	pf.StringVar(&g.sshUsername, "ssh-username", "core", "Username to use when connecting to CoreOS instance (SSH is not used; accepted for compatibility)")
	pf.BoolVar(&g.experimentalAPI, "experimental-api", true, "DEPRECATED: do not use this flag.")
	_ = pf.MarkHidden("experimental-api")
	_ = pf.MarkHidden("etcd-key-prefix")

	root.AddCommand(
		a.cmdApply(),
		a.cmdCat(),
		a.cmdDashboard(),
		a.cmdDestroy(),
		a.cmdDiff(),
		a.cmdDrain(),
		a.cmdEvents(),
		a.cmdFDForward(),
		a.cmdHistory(),
		a.cmdJournal(),
		a.cmdKV(),
		a.cmdListMachines(),
		a.cmdListTimers(),
		a.cmdListUnitFiles(),
		a.cmdListUnits(),
		a.cmdLoad(),
		a.cmdRestart(),
		a.cmdRollout(),
		a.cmdRun(),
		a.cmdSSH(),
		a.cmdStart(),
		a.cmdStatus(),
		a.cmdStop(),
		a.cmdSubmit(),
		a.cmdUndrain(),
		a.cmdUnload(),
		a.cmdVerify(),
		a.cmdVersion(),
	)
	root.SetHelpCommand(a.cmdHelp())
	root.InitDefaultHelpCmd()
	return root
}

// applyEnv sets every flag of fs that was not given on the command line
// from FLEETCTL_<FLAG>, if that is set and not empty.
func (a *app) applyEnv(fs *pflag.FlagSet) error {
	a.cliFlags = map[string]bool{}
	fs.VisitAll(func(f *pflag.Flag) { a.cliFlags[f.Name] = f.Changed })
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil || f.Name == "version" || f.Name == "help" {
			return
		}
		key := envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v := a.env[key]
		if v == "" {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("invalid value %q for %s: %v", v, key, serr)
		}
	})
	return err
}

// run adapts a command body returning an exit code to cobra.
func (a *app) run(body func(cmd *cobra.Command, args []string) int) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if a.g.version {
			a.printVersion()
			return nil
		}
		a.exit = body(cmd, args)
		return nil
	}
}

// client returns the API client, creating it on first use. On error it
// prints fleet's message and returns nil.
func (a *app) client() *client.Client {
	if a.api != nil {
		return a.api
	}
	c, err := a.newClient()
	if err != nil {
		a.errf("Unable to initialize client: %v", err)
		return nil
	}
	a.api = c
	return c
}

func (a *app) newClient() (*client.Client, error) {
	switch a.g.driver {
	case driverAPI:
	case driverEtcd:
		return nil, fmt.Errorf("the %q driver is not supported: fleetctl only speaks fleetd's HTTP API (--driver=%s)", driverEtcd, driverAPI)
	default:
		return nil, fmt.Errorf("unrecognized driver %q", a.g.driver)
	}
	if !a.g.experimentalAPI {
		return nil, errors.New("--experimental-api=false (direct etcd access) is not supported")
	}
	if a.g.tunnel != "" {
		return nil, errors.New("--tunnel is not supported: fleet works without SSH; point --endpoint (or FLEETCTL_ENDPOINT) at a fleetd API, e.g. http://host:49153")
	}
	if strings.Contains(a.g.endpoint, ",") {
		a.debugf("multiple endpoints provided but only the first (%s) is used", strings.Split(a.g.endpoint, ",")[0])
	}
	token, err := a.token()
	if err != nil {
		return nil, err
	}
	opts := client.Options{
		CAFile:         a.g.caFile,
		CertFile:       a.g.certFile,
		KeyFile:        a.g.keyFile,
		UserAgent:      cliName + "/" + version.Version,
		RequestTimeout: time.Duration(a.g.requestTimeout * float64(time.Second)),
		Token:          token,
		CredentialHint: credentialHint,
	}
	if a.g.debug {
		opts.Debug = a.stderr
	}
	return client.New(a.g.endpoint, opts)
}

// machineMap returns the cluster's machines by ID, fetched once per
// invocation; errors leave it empty (legends then show bare IDs).
func (a *app) machineMap() map[string]client.Machine {
	if a.machines != nil {
		return a.machines
	}
	a.machines = map[string]client.Machine{}
	if c := a.client(); c != nil {
		ms, err := c.Machines(a.ctx)
		if err != nil {
			a.debugf("listing machines: %v", err)
		}
		for _, m := range ms {
			a.machines[m.ID] = m
		}
	}
	return a.machines
}

// legend is the machine legend of id ("3d1219c7.../10.0.0.1").
func (a *app) legend(id string, full bool) string {
	m, ok := a.machineMap()[id]
	if !ok {
		return machineIDLegend(id, full)
	}
	return machineFullLegend(m, full)
}
