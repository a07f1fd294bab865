// Package config loads fleetd's configuration.
//
// Settings come from four layers; a later layer overrides an earlier one:
//
//  1. built-in defaults (see Defaults);
//  2. a fleet.conf-style file: the path given with --config, or
//     DefaultConfigFile if it exists;
//  3. environment variables FLEET_<KEY>, the key upper-cased
//     (FLEET_ETCD_SERVERS, FLEET_METADATA, ...);
//  4. command-line flags, the key with dashes (--etcd-servers, --metadata, ...).
//
// The file holds global key=value lines only: blank lines and lines starting
// with '#' or ';' are ignored, a [section] header, a line without '=' or an
// unknown key is an error. Fleet's deprecated keys (verify_units,
// authorized_keys_file, enable_grpc, disable_watches, systemd_user) are
// accepted and ignored with a warning in Config.Warnings.
//
// Value syntax is the same in every layer:
//   - strings may be wrapped in one pair of matching quotes ("..." or '...');
//   - lists are comma separated, optionally inside brackets with quoted
//     elements: ["http://a:2379","http://b:2379"];
//   - durations are Go durations ("1.5s", "10s") or a number of seconds
//     ("2.0"), as fleet wrote them;
//   - metadata is "k=v,k=v": one pair of quotes around the whole string is
//     allowed, white space around '=' and ',' is trimmed, the last duplicate
//     key wins, a pair without '=' or with an empty key is an error.
//
// An empty environment variable counts as unset. Every error names the key and
// where the value came from: "flag --agent-ttl", "env FLEET_AGENT_TTL" or
// "/etc/fleet/fleet.conf:3".
//
// Load does no I/O of its own: the file system is injected. The machine ID
// and the public IP, which need the host, are filled in afterwards by
// ResolveMachineID and ResolvePublicIP.
package config
