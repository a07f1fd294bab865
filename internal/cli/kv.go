package cli

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetd/fleet/internal/client"
)

// Exit codes of kv, after etcdctl v2's.
const (
	kvExitBadArgs    = 1
	kvExitConnection = 2
	kvExitServer     = 4
)

func (a *app) cmdKV() *cobra.Command {
	var (
		ttl       string
		recursive bool
		forever   bool
	)
	cmd := &cobra.Command{
		Use:   "kv get|set|ls|rm|watch KEY [VALUE] [--ttl=DURATION] [--recursive] [--forever]",
		Short: "Read and write etcd keys of the cluster (etcdctl v2 style)",
		Long: `Read and write keys in the cluster's etcd, with etcdctl v2's verbs, so that
units can publish and read data (ExecStartPost=fleetctl kv set ...). Units
run by fleetd find their fleetd through FLEETCTL_ENDPOINT.

  kv get KEY                      print the value of KEY
  kv set KEY VALUE [--ttl=30s]    set KEY and print VALUE; with --ttl the key
                                  expires (a number is seconds)
  kv ls [KEY] [--recursive]       list the keys and directories below KEY
                                  (default /); --recursive lists every key
  kv rm KEY [--recursive]         delete KEY (--recursive: and everything below)
  kv watch KEY [--recursive] [--forever]
                                  wait for a change of KEY and print it;
                                  --forever keeps watching

Keys are absolute etcd paths (/services/web/1). Keys under fleet's own
prefix cannot be read or written this way.`,
	}
	cmd.Flags().StringVar(&ttl, "ttl", "", "Time to live of the key (set): a duration such as 30s, or seconds")
	cmd.Flags().BoolVar(&recursive, "recursive", false, "Act on every key below KEY (ls, rm, watch)")
	cmd.Flags().BoolVar(&forever, "forever", false, "Keep watching (watch)")
	cmd.RunE = a.run(func(cmd *cobra.Command, args []string) int {
		if len(args) == 0 {
			a.errf("Error: kv needs a command: get, set, ls, rm or watch")
			return kvExitBadArgs
		}
		verb, rest := args[0], args[1:]
		want := map[string][2]int{"get": {1, 1}, "set": {2, 2}, "ls": {0, 1}, "rm": {1, 1}, "watch": {1, 1}}
		n, ok := want[verb]
		if !ok {
			a.errf("Error: unknown kv command %q: use get, set, ls, rm or watch", verb)
			return kvExitBadArgs
		}
		if len(rest) < n[0] || len(rest) > n[1] {
			a.errf("Error: wrong number of arguments for kv %s (usage: %s)", verb, kvUsage(verb))
			return kvExitBadArgs
		}
		key := "/"
		if len(rest) > 0 {
			key = rest[0]
		}
		if !strings.HasPrefix(key, "/") {
			key = "/" + key
		}
		if ttl != "" && verb != "set" {
			a.errf("Error: --ttl applies to kv set only")
			return kvExitBadArgs
		}
		c := a.client()
		if c == nil {
			return kvExitConnection
		}
		var err error
		switch verb {
		case "get":
			var node client.KVNode
			if node, err = c.KVGet(a.ctx, key); err == nil {
				a.out("%s", node.Value)
			}
		case "set":
			var d time.Duration
			if d, err = parseKVTTL(ttl); err != nil {
				a.errf("Error: %v", err)
				return kvExitBadArgs
			}
			var node client.KVNode
			if node, err = c.KVSet(a.ctx, key, rest[1], d); err == nil {
				a.out("%s", node.Value)
			}
		case "ls":
			var nodes []client.KVNode
			if nodes, err = c.KVList(a.ctx, key, recursive); err == nil {
				for _, nd := range nodes {
					a.out("%s", nd.Key)
				}
			}
		case "rm":
			err = c.KVDelete(a.ctx, key, recursive)
		case "watch":
			err = c.KVWatch(a.ctx, key, recursive, func(ev client.KVEvent) bool {
				switch {
				case recursive:
					a.out("[%s] %s", ev.Action, ev.Key)
					if ev.Action == "set" {
						a.out("%s", ev.Value)
					}
				case ev.Action == "set":
					a.out("%s", ev.Value)
				default:
					a.out("[%s] %s", ev.Action, ev.Key)
				}
				return forever
			})
		}
		if err != nil {
			return a.kvError(err)
		}
		return 0
	})
	return cmd
}

func kvUsage(verb string) string {
	switch verb {
	case "get":
		return "kv get KEY"
	case "set":
		return "kv set KEY VALUE [--ttl=30s]"
	case "ls":
		return "kv ls [KEY] [--recursive]"
	case "rm":
		return "kv rm KEY [--recursive]"
	}
	return "kv watch KEY [--recursive] [--forever]"
}

// parseKVTTL reads --ttl: seconds (etcdctl's form) or a Go duration.
func parseKVTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return 0, fmt.Errorf("invalid --ttl %q: must be positive", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("invalid --ttl %q: expect seconds or a duration such as 30s", s)
	}
	return d, nil
}

// kvError prints err etcdctl-style and returns the exit code.
func (a *app) kvError(err error) int {
	var ae *client.APIError
	if errors.As(err, &ae) {
		switch {
		case ae.Code == http.StatusNotFound && strings.HasPrefix(ae.Message, "Key not found"):
			a.errf("Error:  100: %s", ae.Message)
		case ae.Message != "":
			a.errf("Error:  %s", ae.Message)
		default:
			a.errf("Error:  %d %s", ae.Code, http.StatusText(ae.Code))
		}
		return kvExitServer
	}
	a.errf("Error:  cannot reach the fleet API at %s: %v", a.g.endpoint, err)
	return kvExitConnection
}
