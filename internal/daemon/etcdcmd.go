package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fleetd/fleet/internal/clusterauth"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

const etcdUsage = `Usage: fleetd etcd COMMAND [flags]

Manage the members of fleet's etcd cluster (embedded members of several
fleetd, or an external cluster) without etcdctl.

Commands:
  member-list                          list the members
  member-add --name NAME --peer-url URL
                                       announce a new member, then print the
                                       settings to start it with
  member-remove NAME                   remove a member (by name or hex ID)

Flags (every command):
`

// etcdMain is `fleetd etcd ...`: member-list, member-add, member-remove
// through a client of the running cluster. member-add prints the
// etcd_name, etcd_initial_cluster and etcd_initial_cluster_state the new
// member must start with (fleet.conf lines, or FLEET_* variables with
// --env, which docker run --env-file reads).
func etcdMain(ctx context.Context, args, env []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fs := etcdFlags(env, io.Discard)
		fmt.Fprint(stdout, etcdUsage)
		fs.fs.SetOutput(stdout)
		fs.fs.PrintDefaults()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd := args[0]
	f := etcdFlags(env, stderr)
	if err := f.fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "fleetd etcd %s: %v\n", cmd, err)
		return 1
	}
	switch cmd {
	case "member-list", "member-add", "member-remove":
	default:
		return fail(fmt.Errorf("unknown command (expect member-list, member-add or member-remove)"))
	}
	cli, err := f.client()
	if err != nil {
		return fail(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	switch cmd {
	case "member-list":
		if f.fs.NArg() != 0 {
			return fail(errors.New("takes no arguments"))
		}
		members, err := cli.Members(ctx)
		if err != nil {
			return fail(bare(err))
		}
		tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tPEER URLS\tCLIENT URLS\tLEARNER")
		for _, m := range members {
			name := m.Name
			if name == "" {
				name = "(not started)"
			}
			fmt.Fprintf(tw, "%x\t%s\t%s\t%s\t%v\n", m.ID, name,
				strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","), m.IsLearner)
		}
		_ = tw.Flush()
		return 0

	case "member-add":
		if f.fs.NArg() != 0 {
			return fail(errors.New("takes no arguments (use --name and --peer-url)"))
		}
		if f.name == "" || len(f.peerURLs) == 0 {
			return fail(errors.New("--name and --peer-url are required"))
		}
		for _, p := range f.peerURLs {
			if u, err := url.Parse(p); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Port() == "" {
				return fail(fmt.Errorf("--peer-url %q: expect http(s)://host:port", p))
			}
		}
		initial, err := memberAdd(ctx, cli, f.name, f.peerURLs)
		if err != nil {
			return fail(err)
		}
		if f.env {
			fmt.Fprintf(stdout, "FLEET_ETCD_NAME=%s\nFLEET_ETCD_INITIAL_CLUSTER=%s\nFLEET_ETCD_INITIAL_CLUSTER_STATE=existing\n", f.name, initial)
		} else {
			fmt.Fprintf(stdout, "etcd_name=%s\netcd_initial_cluster=%s\netcd_initial_cluster_state=existing\n", f.name, initial)
		}
		return 0

	default: // member-remove
		if f.fs.NArg() != 1 {
			return fail(errors.New("expects one member name or hex ID"))
		}
		members, err := cli.Members(ctx)
		if err != nil {
			return fail(bare(err))
		}
		arg := f.fs.Arg(0)
		var id uint64
		found := false
		for _, m := range members {
			if m.Name == arg || fmt.Sprintf("%x", m.ID) == strings.ToLower(arg) {
				id, found = m.ID, true
				break
			}
		}
		if !found {
			return fail(fmt.Errorf("no member %q", arg))
		}
		if err := cli.MemberRemove(ctx, id); err != nil {
			return fail(bare(err))
		}
		fmt.Fprintf(stdout, "removed member %x (%s)\n", id, arg)
		return 0
	}
}

// memberAdd announces a member and returns the initial cluster it must
// start with. etcd refuses a member add for a while after a member (re)joined
// ("unhealthy cluster"): that is retried until ctx ends.
func memberAdd(ctx context.Context, cli *etcdkv.Client, name string, peerURLs []string) (string, error) {
	// A member added earlier but never started has no name, and an
	// initial cluster without it is refused: say so before adding another.
	list, err := cli.Members(ctx)
	if err != nil {
		return "", bare(err)
	}
	for _, m := range list {
		if m.Name == "" {
			return "", fmt.Errorf("member %x (%s) was added but never started; start it (or member-remove %x) first",
				m.ID, strings.Join(m.PeerURLs, ","), m.ID)
		}
		if m.Name == name {
			return "", fmt.Errorf("a member named %s exists already (%x)", name, m.ID)
		}
	}
	var added uint64
	var members []etcdkv.Member
	for {
		var err error
		added, members, err = cli.MemberAdd(ctx, peerURLs)
		if err == nil {
			break
		}
		err = bare(err)
		if !strings.Contains(err.Error(), "unhealthy cluster") {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	var parts []string
	for _, m := range members {
		n := m.Name
		if m.ID == added {
			n = name
		}
		if n == "" {
			// Added concurrently by someone else and not started yet.
			return "", fmt.Errorf("member %x (%s) was added but never started; start it (or member-remove %x) first",
				m.ID, strings.Join(m.PeerURLs, ","), m.ID)
		}
		for _, p := range m.PeerURLs {
			parts = append(parts, n+"="+p)
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ","), nil
}

type etcdCmdFlags struct {
	fs                        *flag.FlagSet
	endpoints                 string
	caFile, certFile, keyFile string
	username, password        string
	tokenFile                 string
	insecure                  bool
	timeout                   time.Duration
	name                      string
	peerURLs                  []string
	env                       bool
}

func etcdFlags(env []string, out io.Writer) *etcdCmdFlags {
	getenv := func(k string) string {
		for _, kv := range slices.Backward(env) {
			if v, ok := strings.CutPrefix(kv, k+"="); ok {
				return v
			}
		}
		return ""
	}
	f := &etcdCmdFlags{fs: flag.NewFlagSet("fleetd etcd", flag.ContinueOnError)}
	f.fs.SetOutput(out)
	def := getenv("FLEET_ETCD_SERVERS")
	if def == "" {
		def = "http://127.0.0.1:2379"
	}
	f.fs.StringVar(&f.endpoints, "endpoints", def, "client URLs of the cluster, comma separated (default: $FLEET_ETCD_SERVERS, else http://127.0.0.1:2379)")
	f.fs.StringVar(&f.caFile, "etcd-cafile", getenv("FLEET_ETCD_CAFILE"), "CA certificate for TLS to etcd")
	f.fs.StringVar(&f.certFile, "etcd-certfile", getenv("FLEET_ETCD_CERTFILE"), "client certificate for TLS to etcd")
	f.fs.StringVar(&f.keyFile, "etcd-keyfile", getenv("FLEET_ETCD_KEYFILE"), "client key for TLS to etcd")
	f.fs.StringVar(&f.username, "etcd-username", getenv("FLEET_ETCD_USERNAME"), "etcd user")
	f.fs.StringVar(&f.password, "etcd-password", getenv("FLEET_ETCD_PASSWORD"), "etcd password")
	f.fs.StringVar(&f.tokenFile, "cluster-token-file", getenv("FLEET_CLUSTER_TOKEN_FILE"), "file holding the cluster token (the cluster-token file in the data dir of the fleetd that started etcd)")
	f.fs.BoolVar(&f.insecure, "etcd-insecure", getenv("FLEET_ETCD_INSECURE") == "true", "allow plain-HTTP etcd URLs beyond loopback")
	f.fs.DurationVar(&f.timeout, "timeout", 60*time.Second, "give up after this long")
	f.fs.StringVar(&f.name, "name", "", "member-add: the new member's name (its etcd_name)")
	f.fs.Func("peer-url", "member-add: the new member's peer URL (repeatable, or comma separated)", func(s string) error {
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				f.peerURLs = append(f.peerURLs, p)
			}
		}
		return nil
	})
	f.fs.BoolVar(&f.env, "env", false, "member-add: print FLEET_* variables (for docker run --env-file) instead of fleet.conf lines")
	return f
}

// bare drops the "etcd member ...:" the seam puts before etcd's own error:
// the command's messages name the command already.
func bare(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}

// client connects to the cluster. Its requests are bounded by --timeout
// only (the seam's shorter default would cut a member add short while the
// cluster settles).
func (f *etcdCmdFlags) client() (*etcdkv.Client, error) {
	var eps []string
	for e := range strings.SplitSeq(strings.Trim(f.endpoints, "[]"), ",") {
		if e = strings.Trim(strings.TrimSpace(e), `"'`); e != "" {
			eps = append(eps, e)
		}
	}
	if len(eps) == 0 {
		return nil, errors.New("no --endpoints")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kc, err := etcdkv.Dial(ctx, clusterauth.Credentials{
		Endpoints: eps, TokenFile: f.tokenFile,
		Username: f.username, Password: f.password,
		CAFile: f.caFile, CertFile: f.certFile, KeyFile: f.keyFile,
		Insecure: f.insecure,
	}, etcdkv.DialOptions{ProbeKey: "/", ClientOptions: []etcdkv.Option{etcdkv.WithTimeout(f.timeout)}})
	if err != nil {
		return nil, err
	}
	return kc, nil
}
