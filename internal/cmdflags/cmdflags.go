// Package cmdflags is the command line of fleetd's subcommands that are
// programs of their own, fleetd lb and fleetd confd: github.com/spf13/pflag
// flags, the library fleetctl's cobra commands use, spelt with two dashes in
// help and errors, like fleetd's and fleetctl's.
//
// A single dash works too (-onetime, -confdir=/etc/confd), as with Go's flag
// package and confd, whose users type `confd -onetime -backend etcd`: Parse
// turns "-name" into "--name" for any name of two or more characters before
// pflag sees it. The subcommands define no one-letter flags but -h, so
// nothing is lost, and an unknown "-name" is reported as "unknown flag:
// --name" rather than as a list of unknown shorthand letters.
//
// Etcd registers the etcd connection flags that both subcommands share (TLS
// files, cluster token, user and password), each also read from its
// FLEET_* environment variable.
package cmdflags

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/fleetd/fleet/internal/clusterauth"
)

// ErrHelp is returned by Parse when --help (-h, -help) was given.
var ErrHelp = pflag.ErrHelp

// HelpColumns is the width the flag list of the help is wrapped to.
const HelpColumns = 100

// New returns an empty flag set for the command named name ("fleetd lb"),
// with -h/--help defined. It prints nothing itself: Parse returns errors
// and ErrHelp, and Usage prints the help.
func New(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.BoolP("help", "h", false, "print this help and exit")
	return fs
}

// Parse parses args into fs (see the package doc for single dashes). It
// returns ErrHelp when help was asked for anywhere before "--", so that
// help is printed even beside a bad flag.
func Parse(fs *pflag.FlagSet, args []string) error {
	args, help := longDashes(fs, args)
	if help {
		return ErrHelp
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if h, _ := fs.GetBool("help"); h { // --help=true
		return ErrHelp
	}
	return nil
}

// LongDashes returns args with every single-dash flag of two or more
// characters ("-name", "-name=value") spelt with two dashes. The value of
// a flag that takes one as the next argument ("--prefix -x") and everything
// after "--" are left alone.
func LongDashes(fs *pflag.FlagSet, args []string) []string {
	out, _ := longDashes(fs, args)
	return out
}

// longDashes is LongDashes; it also reports whether a flag asks for help.
func longDashes(fs *pflag.FlagSet, args []string) (out []string, help bool) {
	out = make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...), help
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			a = "-" + a
		}
		if a == "--help" || a == "-h" {
			help = true
		}
		out = append(out, a)
		if takesNextArg(fs, a) && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out, help
}

// takesNextArg reports whether a is "--name" of a flag that needs a value
// and has none attached.
func takesNextArg(fs *pflag.FlagSet, a string) bool {
	name, ok := strings.CutPrefix(a, "--")
	if !ok || name == "" || strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	return f != nil && f.NoOptDefVal == ""
}

// Usage writes header (the command's synopsis and description, ending in
// a blank line), then "Flags:" and fs's flags, one per line with two
// dashes, sorted, their explanations wrapped to HelpColumns.
func Usage(w io.Writer, header string, fs *pflag.FlagSet) {
	fmt.Fprint(w, header)
	fmt.Fprintln(w, "Flags:")
	fmt.Fprint(w, fs.FlagUsagesWrapped(HelpColumns))
}

// Etcd holds the etcd connection flags shared by the subcommands.
type Etcd struct {
	TokenFile                 string
	CAFile, CertFile, KeyFile string
	Username, Password        string
	Insecure                  bool

	fs  *pflag.FlagSet
	env []string
}

// etcdEnv maps each flag to its environment variable.
var etcdEnv = []struct{ flag, env string }{
	{"cluster-token-file", "FLEET_CLUSTER_TOKEN_FILE"},
	{"etcd-cafile", "FLEET_ETCD_CAFILE"},
	{"etcd-certfile", "FLEET_ETCD_CERTFILE"},
	{"etcd-keyfile", "FLEET_ETCD_KEYFILE"},
	{"etcd-username", "FLEET_ETCD_USERNAME"},
	{"etcd-password", "FLEET_ETCD_PASSWORD"},
	{"etcd-insecure", "FLEET_ETCD_INSECURE"},
}

// AddEtcd defines the etcd connection flags on fs. A flag that is not given
// takes the value of its environment variable in env (the last one wins);
// the help shows the variables' names, never their values.
func AddEtcd(fs *pflag.FlagSet, env []string) *Etcd {
	e := &Etcd{fs: fs, env: env}
	fs.StringVar(&e.TokenFile, "cluster-token-file", "",
		"`file` holding the cluster token, for an etcd that a fleetd started (the cluster-token file in that fleetd's data dir): "+
			"the password of etcd's root user, and the CA that https:// etcd URLs are verified against (env FLEET_CLUSTER_TOKEN_FILE)")
	fs.StringVar(&e.CAFile, "etcd-cafile", "", "CA certificate `file` that etcd's TLS certificate is verified against (env FLEET_ETCD_CAFILE)")
	fs.StringVar(&e.CertFile, "etcd-certfile", "", "client certificate `file` for TLS to etcd; needs --etcd-keyfile (env FLEET_ETCD_CERTFILE)")
	fs.StringVar(&e.KeyFile, "etcd-keyfile", "", "key `file` of --etcd-certfile (env FLEET_ETCD_KEYFILE)")
	fs.StringVar(&e.Username, "etcd-username", "", "etcd `user` name, for an external etcd with authentication (env FLEET_ETCD_USERNAME)")
	fs.StringVar(&e.Password, "etcd-password", "",
		"`password` of --etcd-username; prefer the env FLEET_ETCD_PASSWORD: a command line is visible to every user of the machine")
	fs.BoolVar(&e.Insecure, "etcd-insecure", false, "allow plain-HTTP etcd URLs beyond loopback (env FLEET_ETCD_INSECURE=true)")
	return e
}

// Credentials applies the environment to the flags not given on the
// command line, checks them and returns the credentials for endpoints.
// Call it after Parse.
func (e *Etcd) Credentials(endpoints []string) (clusterauth.Credentials, error) {
	for _, m := range etcdEnv {
		if e.fs.Changed(m.flag) {
			continue
		}
		v, ok := lookup(e.env, m.env)
		if !ok {
			continue
		}
		if m.flag == "etcd-insecure" {
			e.Insecure = v == "true"
			continue
		}
		if err := e.fs.Set(m.flag, v); err != nil {
			return clusterauth.Credentials{}, fmt.Errorf("%s: %w", m.env, err)
		}
	}
	if (e.CertFile == "") != (e.KeyFile == "") {
		return clusterauth.Credentials{}, errors.New("--etcd-certfile and --etcd-keyfile go together")
	}
	return clusterauth.Credentials{
		Endpoints: endpoints, TokenFile: e.TokenFile, TokenFlag: "--cluster-token-file",
		Username: e.Username, Password: e.Password,
		CAFile: e.CAFile, CertFile: e.CertFile, KeyFile: e.KeyFile,
		Insecure: e.Insecure,
	}, nil
}

// lookup returns the last value of key in env.
func lookup(env []string, key string) (string, bool) {
	var val string
	var found bool
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			val, found = v, true
		}
	}
	return val, found
}
