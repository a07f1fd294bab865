package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleetd/fleet/internal/fleet"
)

// setting is one raw value and where it came from.
type setting struct {
	key    string
	raw    string
	source string
}

// rawFlag records the raw value of a flag; parsing happens later so that
// errors read the same for every source.
type rawFlag struct {
	key    string
	isBool bool
	out    *[]setting
}

func (f *rawFlag) String() string   { return "" }
func (f *rawFlag) IsBoolFlag() bool { return f.isBool }
func (f *rawFlag) Set(s string) error {
	*f.out = append(*f.out, setting{key: f.key, raw: s, source: "flag --" + strings.ReplaceAll(f.key, "_", "-")})
	return nil
}

// Load builds the configuration from the command-line arguments (without the
// program name), the environment ("KEY=value" entries, as os.Environ returns)
// and the configuration file, read through readFile and stat (os.ReadFile and
// os.Stat if nil).
//
// -h or --help yields an error matching flag.ErrHelp. With --version (or the
// argument "version") Load returns right after the flags, with Version set.
//
// All errors are reported, joined; each is an *Error naming the key and the
// source of the value.
func Load(args []string, env []string, readFile func(string) ([]byte, error), stat func(string) (os.FileInfo, error)) (Config, error) {
	if readFile == nil {
		readFile = os.ReadFile
	}
	if stat == nil {
		stat = os.Stat
	}
	defs := keyDefs()
	c := Defaults()

	// Flags.
	var flagSettings []setting
	fset := flag.NewFlagSet("fleetd", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	fset.Usage = func() {}
	for i := range defs {
		d := &defs[i]
		fset.Var(&rawFlag{key: d.key, isBool: d.isBool, out: &flagSettings}, d.flagName(), d.usage)
	}
	for _, k := range deprecatedKeys() {
		fset.Var(&rawFlag{key: k, isBool: true, out: &flagSettings}, strings.ReplaceAll(k, "_", "-"), "deprecated")
	}
	configPath := fset.String("config", "", "configuration file")
	fset.BoolVar(&c.Version, "version", false, "print the version and exit")
	rest := args
	for {
		if err := fset.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return Config{}, err
			}
			return Config{}, &Error{Source: "command line", Err: err}
		}
		rest = fset.Args()
		if len(rest) > 0 && rest[0] == "version" && !c.Version {
			c.Version = true
			rest = rest[1:]
			continue
		}
		break
	}
	if len(rest) > 0 {
		return Config{}, &Error{Source: "command line", Err: fmt.Errorf("unexpected argument %q: fleetd takes no arguments", rest[0])}
	}
	if c.Version {
		return c, nil
	}
	configGiven := false
	fset.Visit(func(f *flag.Flag) {
		if f.Name == "config" {
			configGiven = true
		}
	})

	var errs []error
	var fileSettings []setting

	// File.
	path := DefaultConfigFile
	if configGiven {
		path = *configPath
	}
	if path != "" {
		fi, err := stat(path)
		switch {
		case err != nil && !configGiven && errors.Is(err, fs.ErrNotExist):
			// No default file: fine.
		case err != nil:
			return Config{}, &Error{Source: "config file " + path, Err: err}
		case fi.IsDir():
			return Config{}, &Error{Source: "config file " + path, Err: errors.New("is a directory")}
		default:
			data, err := readFile(path)
			if err != nil {
				return Config{}, &Error{Source: "config file " + path, Err: err}
			}
			c.ConfigFile = path
			var ferrs []error
			var warns []string
			fileSettings, warns, ferrs = parseFile(path, data, defs)
			errs = append(errs, ferrs...)
			c.Warnings = append(c.Warnings, warns...)
		}
	}

	// Environment: the last entry of a variable wins, empty means unset.
	envVals := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "FLEET_") {
			envVals[k] = v
		}
	}
	var envSettings []setting
	envKeys := make([]string, 0, len(defs)+len(deprecatedKeys()))
	for i := range defs {
		envKeys = append(envKeys, defs[i].key)
	}
	envKeys = append(envKeys, deprecatedKeys()...)
	for _, k := range envKeys {
		name := "FLEET_" + strings.ToUpper(k)
		if v := envVals[name]; v != "" {
			envSettings = append(envSettings, setting{key: k, raw: v, source: "env " + name})
		}
	}

	// Apply file, then env, then flags.
	byKey := map[string]*keyDef{}
	for i := range defs {
		byKey[defs[i].key] = &defs[i]
	}
	sources := map[string]string{}
	for _, group := range [][]setting{fileSettings, envSettings, flagSettings} {
		for _, s := range group {
			if isDeprecated(s.key) {
				c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s is deprecated and ignored", s.source, s.key))
				continue
			}
			d := byKey[s.key]
			if err := d.set(&c, s.raw); err != nil {
				errs = append(errs, &Error{Source: s.source, Key: s.key, Err: err})
				continue
			}
			sources[s.key] = s.source
		}
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}

	// Derived defaults.
	if c.UnitsDirectory == "" {
		c.UnitsDirectory = filepath.Join(c.DataDir, UnitsDirName)
	}
	if c.EtcdName == "" && c.MachineID != "" {
		c.EtcdName = fleet.ShortMachineID(c.MachineID)
	}

	// Cross-key checks.
	if c.EtcdInitialCluster != "" && c.EtcdName != "" {
		names, _ := parseInitialCluster(c.EtcdInitialCluster) // validated above
		if !names[c.EtcdName] {
			src := sources["etcd_name"]
			if src == "" {
				src = sources["etcd_initial_cluster"]
			}
			return Config{}, &Error{Source: src, Key: "etcd_name", Err: fmt.Errorf("member name %q is not in etcd_initial_cluster %q", c.EtcdName, c.EtcdInitialCluster)}
		}
	}
	if _, set := sources["etcd_listen_peer"]; c.EtcdInsecure && !set {
		c.EtcdListenPeer = []string{InsecureEtcdListenPeer}
	}
	if errs := c.checkSecurity(sources); len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	if !c.EmbeddedEtcd() {
		for _, k := range []string{"etcd_listen_client", "etcd_listen_peer", "etcd_name", "etcd_initial_cluster", "etcd_initial_cluster_state", "etcd_min_free_space",
			"etcd_server_cert", "etcd_server_key", "etcd_client_ca", "etcd_peer_cert", "etcd_peer_key", "etcd_peer_ca"} {
			if src, ok := sources[k]; ok {
				c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s is ignored: etcd_servers is set, no embedded etcd is started", src, k))
			}
		}
	}
	return c, nil
}

// parseFile parses fleet.conf syntax into settings. Unknown keys, section
// headers and lines without '=' are errors; a repeated key is a warning (the
// last one wins).
func parseFile(path string, data []byte, defs []keyDef) ([]setting, []string, []error) {
	known := map[string]bool{}
	for i := range defs {
		known[defs[i].key] = true
	}
	var out []setting
	var warns []string
	var errs []error
	seen := map[string]string{}
	for n, line := range strings.Split(string(data), "\n") {
		src := fmt.Sprintf("%s:%d", path, n+1)
		line = strings.TrimSpace(line)
		if n == 0 {
			line = strings.TrimSpace(strings.TrimPrefix(line, "\uFEFF"))
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			errs = append(errs, &Error{Source: src, Err: fmt.Errorf("section %s is not supported: fleet.conf holds global keys only", line)})
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			errs = append(errs, &Error{Source: src, Err: fmt.Errorf("line %q is not key=value", line)})
			continue
		}
		k = strings.TrimSpace(k)
		if k == "" {
			errs = append(errs, &Error{Source: src, Err: fmt.Errorf("line %q has no key", line)})
			continue
		}
		if !known[k] && !isDeprecated(k) {
			hint := ""
			if alt := strings.ReplaceAll(strings.ToLower(k), "-", "_"); alt != k && (known[alt] || isDeprecated(alt)) {
				hint = fmt.Sprintf(" (did you mean %s?)", alt)
			}
			errs = append(errs, &Error{Source: src, Key: k, Err: fmt.Errorf("unknown key%s", hint)})
			continue
		}
		if first, dup := seen[k]; dup {
			warns = append(warns, fmt.Sprintf("%s: %s repeats the key set at %s; the last one wins", src, k, first))
		} else {
			seen[k] = src
		}
		out = append(out, setting{key: k, raw: strings.TrimSpace(v), source: src})
	}
	return out, warns, errs
}
