// Package tmpl is `fleetd confd`: a confd-compatible template daemon that
// renders configuration files from etcd v3 keys and reloads the programs
// that read them.
//
// # Contract
//
// Configuration is confd's: every <confdir>/conf.d/*.toml holds one
// [template] table (see ParseResource) naming a text/template under
// <confdir>/templates (src), the file to write (dest), the etcd keys it
// reads (keys, each with everything below it, joined under the global
// --prefix and the resource's prefix), optional owner, group and mode, and
// optional check_cmd and reload_cmd shell commands. Files are decoded with
// github.com/BurntSushi/toml, confd's own TOML library. Unknown tables and
// keys are errors naming the file, the line and the key's full name
// ("template.relaod_cmd"); confd ignores them.
//
// One render of a resource:
//
//  1. reads all of its keys at ONE etcd revision (a consistent snapshot);
//  2. executes the template with confd's functions (getv, gets, ls, ...;
//     see funcMap), keys being relative to the prefix; a template error
//     leaves dest alone and is reported with the template name and line;
//  3. compares the output (and mode/owner) with dest: if equal, nothing is
//     written and no command runs;
//  4. otherwise writes a staged file in dest's directory, fsyncs it, applies
//     owner, group and mode, and runs check_cmd with {{.src}} replaced by
//     the staged path; a failing check leaves dest alone and is reported
//     with the command's output;
//  5. renames the staged file over dest (atomic), then runs reload_cmd; a
//     failing reload is reported (dest has been replaced).
//
// --noop stops before step 4 writes anything permanent; --sync-only skips
// both commands.
//
// Modes: Once (--onetime), Poll (every --interval) and Watch (--watch). In
// Watch each resource renders, then watches its keys from the rendered
// revision + 1, so a change made at any moment after the render is seen.
// Changes are coalesced: the resource re-renders once the watch has been
// quiet for WaitMin, and no later than WaitMax after the first change of the
// burst; events already reflected by a render are dropped. A compacted or
// broken watch causes a full re-render and new watches.
//
// Status reports, per resource, the last render and change times, the last
// error and the output of the last check_cmd and reload_cmd; StatusHandler
// serves it as JSON for --status-addr.
//
// etcd is read and watched through the seam, internal/store/etcdkv: a
// render lists each key (with everything below it) at the revision of the
// first one, retrying from the head if that revision is compacted between
// the reads; the watches are etcdkv watches (they need an etcd leader), and
// a batch with an error (etcdkv.ErrCompacted among them) ends them.
//
// The package keeps no globals: each Daemon owns its resources, and the
// template functions are built per render over that render's snapshot.
package tmpl
