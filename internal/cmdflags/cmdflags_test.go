package cmdflags

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// testSet returns a parse function over a fresh flag set each time, and
// the variables its flags set.
func testSet() (prefix *string, once *bool, wait *time.Duration, parse func(args []string) error) {
	prefix, once, wait = new(string), new(bool), new(time.Duration)
	parse = func(args []string) error {
		fs := New("fleetd test")
		fs.StringVar(prefix, "prefix", "", "key `prefix`")
		fs.BoolVar(once, "onetime", false, "once")
		fs.DurationVar(wait, "wait", 0, "wait")
		return Parse(fs, args)
	}
	return prefix, once, wait, parse
}

func TestLongDashes(t *testing.T) {
	fs := New("fleetd test")
	fs.String("prefix", "", "")
	fs.Bool("onetime", false, "")
	for _, tc := range []struct{ in, want []string }{
		{[]string{"-onetime", "-prefix", "/p"}, []string{"--onetime", "--prefix", "/p"}},
		{[]string{"-prefix=/p", "--onetime"}, []string{"--prefix=/p", "--onetime"}},
		// The value of a flag is left alone, even when it starts with a dash.
		{[]string{"-prefix", "-x", "-onetime"}, []string{"--prefix", "-x", "--onetime"}},
		{[]string{"--prefix", "-x"}, []string{"--prefix", "-x"}},
		// A bool flag takes no separate value.
		{[]string{"-onetime", "-unknown"}, []string{"--onetime", "--unknown"}},
		// -h and lone words stay; nothing after -- is touched.
		{[]string{"-h", "word", "-", "--", "-onetime"}, []string{"-h", "word", "-", "--", "-onetime"}},
	} {
		if got := LongDashes(fs, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("LongDashes(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	prefix, once, wait, parse := testSet()
	if err := parse([]string{"-onetime", "-prefix", "/p", "-wait=2s"}); err != nil || !*once || *prefix != "/p" || *wait != 2*time.Second {
		t.Fatalf("single dashes: err %v, onetime %v prefix %q wait %v", err, *once, *prefix, *wait)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nope"}, "unknown flag: --nope"},
		{[]string{"-nope"}, "unknown flag: --nope"},
		{[]string{"--prefix"}, "flag needs an argument: --prefix"},
		{[]string{"-wait", "soon"}, `invalid argument "soon" for "--wait" flag`},
	} {
		if err := parse(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q", tc.args, err, tc.want)
		}
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"-help"}, {"--nope", "--help"}, {"--help=true"}} {
		if err := parse(args); !errors.Is(err, ErrHelp) {
			t.Errorf("Parse(%q) = %v, want ErrHelp", args, err)
		}
	}
	// "-h" as the value of a flag is not a request for help.
	if err := parse([]string{"--prefix", "-h"}); err != nil || *prefix != "-h" {
		t.Errorf("--prefix -h: %v, prefix %q", err, *prefix)
	}
}

func TestEtcdCredentials(t *testing.T) {
	env := []string{
		"FLEET_ETCD_CAFILE=/env/ca.pem", "FLEET_ETCD_USERNAME=envuser", "FLEET_ETCD_PASSWORD=first",
		"FLEET_ETCD_PASSWORD=envpass", "FLEET_CLUSTER_TOKEN_FILE=/env/token", "FLEET_ETCD_INSECURE=true",
	}
	fs := New("fleetd test")
	e := AddEtcd(fs, env)
	if err := Parse(fs, []string{"--etcd-username", "flaguser", "-etcd-certfile", "/c.pem", "--etcd-keyfile=/k.pem"}); err != nil {
		t.Fatal(err)
	}
	c, err := e.Credentials([]string{"https://e:2379"})
	if err != nil {
		t.Fatal(err)
	}
	// Flags win over the environment; the last of a repeated variable wins.
	if c.Username != "flaguser" || c.Password != "envpass" || c.CAFile != "/env/ca.pem" || c.CertFile != "/c.pem" ||
		c.KeyFile != "/k.pem" || c.TokenFile != "/env/token" || !c.Insecure || c.TokenFlag != "--cluster-token-file" ||
		!slices.Equal(c.Endpoints, []string{"https://e:2379"}) {
		t.Fatalf("credentials %+v", c)
	}

	fs = New("fleetd test")
	e = AddEtcd(fs, env)
	if err := Parse(fs, []string{"--etcd-insecure=false", "--etcd-password", "flagpass"}); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.Credentials(nil); c.Insecure || c.Password != "flagpass" {
		t.Fatalf("flags do not override the environment: %+v", c)
	}

	fs = New("fleetd test")
	e = AddEtcd(fs, nil)
	if err := Parse(fs, []string{"--etcd-keyfile", "/k.pem"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Credentials(nil); err == nil || !strings.Contains(err.Error(), "--etcd-certfile and --etcd-keyfile go together") {
		t.Fatalf("key without cert: %v", err)
	}
}

func TestUsage(t *testing.T) {
	fs := New("fleetd test")
	fs.String("prefix", "", "key `prefix`")
	AddEtcd(fs, []string{"FLEET_ETCD_PASSWORD=s3cret"})
	var b bytes.Buffer
	Usage(&b, "Usage: fleetd test\n\n", fs)
	out := b.String()
	if !strings.HasPrefix(out, "Usage: fleetd test\n\nFlags:\n") {
		t.Fatalf("layout:\n%s", out)
	}
	for _, want := range []string{"      --prefix prefix", "  -h, --help", "--etcd-cafile file", "--etcd-certfile file",
		"--etcd-keyfile file", "--cluster-token-file file", "--etcd-username user", "--etcd-password password", "--etcd-insecure"} {
		if !strings.Contains(out, want) {
			t.Errorf("usage lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("usage shows the environment's password")
	}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if len(line) > HelpColumns {
			t.Errorf("line of %d columns: %q", len(line), line)
		}
	}
}
