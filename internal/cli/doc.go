// Package cli is fleetctl: fleet's command-line client, on cobra, speaking
// fleetd's HTTP API through internal/client.
//
// Contract:
//  1. Main runs one invocation (arguments without the program name, the
//     environment as KEY=VALUE strings, stdio) and returns the exit code;
//     it holds no package state, so tests drive it directly and in
//     parallel.
//  2. Verbs, flags, messages, exit codes and table output follow fleet's
//     fleetctl (tabwriter minwidth 0, tabwidth 8, padding 1, padchar '\t'),
//     with fleet's bugs fixed: -l/--full and -f/--follow work (and fleet's
//     --l, --f, --A spellings too), single-dash long flags (-fields=unit
//     -no-legend) work as with pre-cobra fleetctl, destroy waits unless
//     --no-block, restart waits for the right states, start waits for
//     systemd's active state within --block-attempts and says why a unit
//     cannot be scheduled.
//  3. Global flags not given on the command line are read from
//     FLEETCTL_<FLAG> (upper case, '-' → '_'); the command line wins.
//  4. status and journal use fleetd's API extensions instead of SSH; ssh
//     and --tunnel are not supported.
//  5. Pure renderers (tables, legends, field lists) are separate from the
//     commands so they are tested without a server.
package cli
