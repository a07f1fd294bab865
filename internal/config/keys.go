package config

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

// keyDef describes one configuration key.
type keyDef struct {
	key    string
	arg    string // flag argument name in Usage
	def    string // default, as shown by Usage
	usage  string
	isBool bool
	set    func(c *Config, raw string) error
	render func(c *Config) string // file syntax, quoted
}

func (k *keyDef) flagName() string { return strings.ReplaceAll(k.key, "_", "-") }
func (k *keyDef) envName() string  { return "FLEET_" + strings.ToUpper(k.key) }

// deprecatedKeys are fleet keys that are accepted and ignored with a warning.
func deprecatedKeys() []string {
	return []string{"verify_units", "authorized_keys_file", "enable_grpc", "disable_watches", "systemd_user"}
}

func isDeprecated(key string) bool {
	for _, k := range deprecatedKeys() {
		if k == key {
			return true
		}
	}
	return false
}

func quote(s string) string { return `"` + s + `"` }

func renderList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ",") + "]"
}

func renderMetadata(md map[string]string) string {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + md[k]
	}
	return quote(strings.Join(parts, ","))
}

func stringKey(key, def, usage string, field func(*Config) *string, check func(string) error) keyDef {
	return keyDef{
		key: key, arg: "STRING", def: def, usage: usage,
		set: func(c *Config, raw string) error {
			v := parseString(raw)
			if check != nil {
				if err := check(v); err != nil {
					return err
				}
			}
			*field(c) = v
			return nil
		},
		render: func(c *Config) string { return quote(*field(c)) },
	}
}

func listKey(key, def, usage string, field func(*Config) *[]string, check func([]string) error) keyDef {
	return keyDef{
		key: key, arg: "LIST", def: def, usage: usage,
		set: func(c *Config, raw string) error {
			v, err := parseList(raw)
			if err != nil {
				return err
			}
			if check != nil {
				if err := check(v); err != nil {
					return err
				}
			}
			*field(c) = v
			return nil
		},
		render: func(c *Config) string { return renderList(*field(c)) },
	}
}

func durationKey(key, def, usage string, field func(*Config) *time.Duration, min time.Duration) keyDef {
	return keyDef{
		key: key, arg: "DURATION", def: def, usage: usage,
		set: func(c *Config, raw string) error {
			d, err := parseDuration(raw)
			if err != nil {
				return err
			}
			if d < min {
				return fmt.Errorf("%v is too short: minimum %v", d, min)
			}
			*field(c) = d
			return nil
		},
		render: func(c *Config) string { return field(c).String() },
	}
}

func intKey(key, def, usage string, field func(*Config) *int, min, max int) keyDef {
	return keyDef{
		key: key, arg: "INT", def: def, usage: usage,
		set: func(c *Config, raw string) error {
			n, err := parseInt(raw)
			if err != nil {
				return err
			}
			if n < min || n > max {
				return fmt.Errorf("%d is out of range %d..%d", n, min, max)
			}
			*field(c) = n
			return nil
		},
		render: func(c *Config) string { return strconv.Itoa(*field(c)) },
	}
}

// sizeKey is a number of bytes, written with a binary unit ("256M") or
// without one (bytes); 0, or at least min.
func sizeKey(key, def, usage string, field func(*Config) *int64, min int64) keyDef {
	return keyDef{
		key: key, arg: "SIZE", def: def, usage: usage,
		set: func(c *Config, raw string) error {
			n, err := parseSize(raw)
			if err != nil {
				return err
			}
			if n != 0 && n < min {
				return fmt.Errorf("%s is too small: minimum %s (or 0 to disable)", formatSize(n), formatSize(min))
			}
			*field(c) = n
			return nil
		},
		render: func(c *Config) string { return formatSize(*field(c)) },
	}
}

func boolKey(key, def, usage string, field func(*Config) *bool) keyDef {
	return keyDef{
		key: key, arg: "", def: def, usage: usage, isBool: true,
		set: func(c *Config, raw string) error {
			b, err := parseBool(raw)
			if err != nil {
				return err
			}
			*field(c) = b
			return nil
		},
		render: func(c *Config) string { return strconv.FormatBool(*field(c)) },
	}
}

func nonEmpty(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	return nil
}

// keyDefs returns the table of keys, in Usage order. It is rebuilt per call:
// the package keeps no globals.
func keyDefs() []keyDef {
	return append([]keyDef{
		listKey("etcd_servers", `"" (embedded etcd)`,
			"client URLs of an external etcd cluster, comma separated; empty starts an embedded etcd member",
			func(c *Config) *[]string { return &c.EtcdServers },
			func(l []string) error { return checkURLs(l, false) }),
		stringKey("etcd_key_prefix", DefaultEtcdKeyPrefix, "root of fleet's keys in etcd",
			func(c *Config) *string { return &c.EtcdKeyPrefix },
			func(s string) error {
				if !strings.HasPrefix(s, "/") {
					return fmt.Errorf("prefix %q must start with '/'", s)
				}
				return nil
			}),
		stringKey("etcd_cafile", `""`, "CA certificate file for TLS to etcd",
			func(c *Config) *string { return &c.EtcdCAFile }, nil),
		stringKey("etcd_certfile", `""`, "client certificate file for TLS to etcd",
			func(c *Config) *string { return &c.EtcdCertFile }, nil),
		stringKey("etcd_keyfile", `""`, "client key file for TLS to etcd",
			func(c *Config) *string { return &c.EtcdKeyFile }, nil),
		stringKey("etcd_username", `""`, "etcd user name",
			func(c *Config) *string { return &c.EtcdUsername }, nil),
		stringKey("etcd_password", `""`, "etcd password",
			func(c *Config) *string { return &c.EtcdPassword }, nil),
		durationKey("etcd_request_timeout", DefaultEtcdRequestTimeout.String(),
			"timeout of one etcd request (Go duration or seconds)",
			func(c *Config) *time.Duration { return &c.EtcdRequestTimeout }, time.Nanosecond),
		listKey("etcd_listen_client", DefaultEtcdListenClient, "client URLs of the embedded etcd member",
			func(c *Config) *[]string { return &c.EtcdListenClient },
			func(l []string) error {
				if len(l) == 0 {
					return errors.New("at least one URL is required")
				}
				return checkURLs(l, true)
			}),
		listKey("etcd_listen_peer", DefaultEtcdListenPeer, "peer URLs of the embedded etcd member",
			func(c *Config) *[]string { return &c.EtcdListenPeer },
			func(l []string) error {
				if len(l) == 0 {
					return errors.New("at least one URL is required")
				}
				return checkURLs(l, true)
			}),
		stringKey("etcd_name", "short machine ID", "name of the embedded etcd member",
			func(c *Config) *string { return &c.EtcdName }, checkMemberName),
		stringKey("etcd_initial_cluster", `"" (single node)`,
			"name=peerURL,... members of a multi-member embedded etcd cluster",
			func(c *Config) *string { return &c.EtcdInitialCluster },
			func(s string) error {
				if s == "" {
					return nil
				}
				_, err := parseInitialCluster(s)
				return err
			}),
		stringKey("etcd_initial_cluster_state", DefaultEtcdInitialClusterState,
			"new (bootstrap a cluster) or existing (join one after member add)",
			func(c *Config) *string { return &c.EtcdInitialClusterState },
			func(s string) error {
				if s != "new" && s != "existing" {
					return fmt.Errorf("invalid state %q: want new or existing", s)
				}
				return nil
			}),
		sizeKey("etcd_min_free_space", formatSize(DefaultEtcdMinFreeSpace),
			"embedded etcd: free space kept on its data dir's file system; with less, etcd refuses writes until 64M more are free (K, M, G, T: binary units; 0 disables)",
			func(c *Config) *int64 { return &c.EtcdMinFreeSpace }, MinEtcdMinFreeSpace),
		durationKey("engine_reconcile_interval", DefaultEngineReconcileInterval.String(),
			"engine reconcile period (Go duration or seconds); the engine lease lasts 5x as long",
			func(c *Config) *time.Duration { return &c.EngineReconcileInterval }, time.Nanosecond),
		stringKey("public_ip", `"" (address of the default-route interface)`, "IP address published for this machine",
			func(c *Config) *string { return &c.PublicIP },
			func(s string) error {
				if s != "" && net.ParseIP(s) == nil {
					return fmt.Errorf("invalid IP address %q", s)
				}
				return nil
			}),
		{
			key: "metadata", arg: "k=v,...", def: `""`, usage: "machine metadata, k=v pairs separated by commas",
			set: func(c *Config, raw string) error {
				md, err := ParseMetadata(raw)
				if err != nil {
					return err
				}
				c.Metadata = md
				return nil
			},
			render: func(c *Config) string { return renderMetadata(c.Metadata) },
		},
		{
			key: "capacity", arg: "cpu=N,memory=SIZE", def: `"" (detected: CPUs and MemTotal)`,
			usage: "CPUs and memory this machine offers to units' [X-Fleet] CPU= and Memory= reservations, e.g. cpu=4,memory=8G; a dimension left out is detected",
			set: func(c *Config, raw string) error {
				r, err := ParseCapacity(raw)
				if err != nil {
					return err
				}
				c.Capacity = r
				return nil
			},
			render: func(c *Config) string { return RenderCapacity(c.Capacity) },
		},
		stringKey("placement_strategy", DefaultPlacementStrategy, "how the scheduler chooses among machines a unit fits on: spread (least loaded first) or binpack (fullest first, so units fill machines)",
			func(c *Config) *string { return &c.PlacementStrategy }, func(s string) error {
				if s != "spread" && s != "binpack" {
					return fmt.Errorf("invalid placement strategy %q: expect spread or binpack", s)
				}
				return nil
			}),
		durationKey("agent_ttl", DefaultAgentTTL.String(),
			"TTL of machine presence and unit states (Go duration); a machine is considered gone this long after it stops",
			func(c *Config) *time.Duration { return &c.AgentTTL }, time.Second),
		intKey("token_limit", strconv.Itoa(DefaultTokenLimit), "maximum number of entries per API page",
			func(c *Config) *int { return &c.TokenLimit }, 1, 65535),
		boolKey("disable_engine", "false", "never become the engine leader",
			func(c *Config) *bool { return &c.DisableEngine }),
		boolKey("stop_units_on_exit", "false", "stop this machine's units when fleetd exits (fleet's behaviour); by default they keep running and a restarted fleetd adopts them",
			func(c *Config) *bool { return &c.StopUnitsOnExit }),
		boolKey("docker_registration", "true", "register the published ports of this host's Docker containers in /services (when /var/run/docker.sock exists); false leaves them to another fleetd on the same host, or to nobody",
			func(c *Config) *bool { return &c.DockerRegistration }),
		intKey("verbosity", "0", "log verbosity; >0 enables debug logging",
			func(c *Config) *int { return &c.Verbosity }, 0, 1<<20),
		stringKey("data_dir", DefaultDataDir, "directory for fleetd's state (embedded etcd, generated machine ID)",
			func(c *Config) *string { return &c.DataDir }, nonEmpty),
		stringKey("units_directory", "<data_dir>/"+UnitsDirName, "directory unit files are written to",
			func(c *Config) *string { return &c.UnitsDirectory }, nil),
		stringKey("machine_id", `"" (`+SystemMachineIDFile+` or generated)`, "machine ID override (letters and digits)",
			func(c *Config) *string { return &c.MachineID },
			func(s string) error {
				if s == "" {
					return nil
				}
				return checkMachineID(s)
			}),
		listKey("api_addr", DefaultAPITCPAddr+","+DefaultAPIUnixAddr, "API listen addresses: host:port or unix:///path",
			func(c *Config) *[]string { return &c.APIAddr },
			func(l []string) error {
				if len(l) == 0 {
					return errors.New("at least one address is required")
				}
				for _, a := range l {
					if err := checkAPIAddr(a); err != nil {
						return err
					}
				}
				return nil
			}),
		stringKey("etcd_v2_listen", DefaultEtcdV2Listen, "host:port to serve etcd's v2 keys API on (etcdctl v2, go-etcd, curl scripts); \"\" disables; beyond loopback, callers need the admin token (or a token of api_tokens_file)",
			func(c *Config) *string { return &c.EtcdV2Listen },
			func(s string) error {
				if s == "" {
					return nil
				}
				return checkListenAddr(s)
			}),
		stringKey("log_format", DefaultLogFormat, "log format: text or json",
			func(c *Config) *string { return &c.LogFormat },
			func(s string) error {
				if s != "text" && s != "json" {
					return fmt.Errorf("invalid log format %q: want text or json", s)
				}
				return nil
			}),
	}, securityKeyDefs()...)
}
