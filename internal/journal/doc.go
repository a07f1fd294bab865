// Package journal keeps per-unit logs on disk, in the spirit of systemd's
// journal as fleet uses it (`fleetctl journal`).
//
// Contract:
//
//   - One directory holds every unit's log. A unit's entries live in
//     <dir>/<unit>.log (the active file) and <dir>/<unit>.log.1 ...
//     <dir>/<unit>.log.N-1 (older, rotated files); at most Options.MaxFiles
//     files per unit. When appending an entry would push the active file
//     past Options.MaxFileBytes it is rotated first (a single line larger
//     than the limit still gets written, alone in its file).
//   - The on-disk format is JSON lines, one Entry per line. Lines that do
//     not parse (e.g. a torn last write after a crash) are skipped.
//   - Unit names must be non-empty, contain no '/', no NUL and must not be
//     "." or contain ".."; anything else is rejected with an error so that no
//     unit can write outside the directory.
//   - Writer splits a byte stream into one Entry per line (a partial last
//     line is flushed on Close; very long lines are split at LineMax).
//   - Tail returns the last n entries across the rotated files, oldest
//     first; n <= 0 means all of them.
//   - Several processes may append to one unit (fleetd and the unit's
//     shim): every append, rotation, Tail and Remove holds a flock(2) on
//     <dir>/.<unit>.lock, and an appender reopens the active file when
//     another process rotated or removed it.
//   - Follow delivers the last n entries and then every new entry appended
//     by any process, in file order, until ctx is done (the channel is then
//     closed). Followers read the active file; appends through this Journal
//     wake them at once (and its rotations let them finish the old file
//     first, so nothing is lost), other processes' appends are seen within
//     FollowPoll (a rotation by another process is followed by inode; two
//     of them within one poll could hide the middle file).
//   - Retention: a unit's journal is in use from an append through this
//     Journal until Release (fleetd's runner calls it when it unloads the
//     unit); then it is kept for `fleetctl journal` of a destroyed or moved
//     unit, within limits: at most Options.MaxUnloaded such journals
//     (default 256) and none unused for more than Options.MaxUnloadedAge
//     (default 24 h), those unused the longest going first. Release and
//     Prune enforce them, a bounded amount of work per call (no timer:
//     the age limit applies at the next unload). Journals found on disk
//     (scanned in the background on the first Prune) count from their last
//     write and are checked against Prune's loaded predicate first, so a
//     unit loaded before a restart keeps its journal. A unit's files (active,
//     rotated, lock) go together under its flock; whoever waited for that
//     lock sees the lock file gone from the path and takes a new one. A
//     journal in use is never pruned; written again, a released unit is in
//     use again. Tail and Follow of a unit not in use leave no fd (nor a
//     lock file when it has no logs).
//   - Format renders an Entry like journalctl's -o short, short-iso,
//     short-precise, cat and json.
//   - All methods are safe for concurrent use.
package journal
