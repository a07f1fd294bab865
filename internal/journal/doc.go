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
//   - Format renders an Entry like journalctl's -o short, short-iso,
//     short-precise, cat and json.
//   - All methods are safe for concurrent use.
package journal
