// Package unitfile parses, validates, serializes and hashes systemd unit
// files the way fleet did, and extracts fleet's [X-Fleet] requirements.
// It is also the one home of systemd's value primitives (time spans,
// booleans, continuations, unit names, specifiers, Exec-line splitting),
// which the exec runner (internal/runner/exec) uses too.
//
// The package is pure: no I/O, no clock, no randomness. It imports only the
// standard library, go-systemd's unit parser and internal/fleet.
//
// # Parsing (Parse)
//
//  1. Input larger than MaxSize (1 MiB) is rejected: "unit file is 1200000
//     bytes; the limit is 1048576".
//  2. Binary input is rejected: a NUL byte or invalid UTF-8, with the line it
//     is on.
//  3. A UTF-8 byte order mark at the very start is dropped.
//  4. Empty or white-space-only input is rejected ("unit file is empty").
//  5. CRLF line ends are read as LF (so a backslash before CRLF continues the
//     line, as in systemd; go-systemd alone would not).
//  6. A physical line longer than MaxLineLength (2047 bytes) is rejected,
//     always, as go-systemd's "line too long (max 2048 bytes)" would be
//     (go-systemd checks only when its buffer holds 2048 bytes).
//  7. Comment lines (first non-blank character '#' or ';') are ignored
//     everywhere, also inside a backslash continuation, where systemd skips
//     them and go-systemd would make them part of the value. A comment line
//     never continues onto the next line (go-systemd would swallow the next
//     line after a comment ending in '\').
//  8. Anything but blank and comment lines before the first [Section]
//     header is rejected (go-systemd silently drops it), as is a file without
//     any section header.
//  9. A section header must close with ']' on its line, have nothing but
//     white space after it, and have a non-blank name.
//  10. Inside a section, every line that is not blank, a comment, a header
//     or a continuation must contain '=' (a line without '=' is an error, as
//     in go-systemd) and a non-empty option name. A value may not end in a
//     backslash followed by white space: go-systemd would end the value
//     there with a trailing backslash, which Serialize writes as a
//     continuation that swallows the next line.
//  11. The options are then exactly what go-systemd's unit.DeserializeOptions
//     returns: file order, duplicates and repeated sections kept, names and
//     values trimmed, case kept, no quote, escape or specifier processing,
//     continuation lines kept with their backslash and newline (a value
//     whose continuation ends with a blank line, or at the end of the file,
//     keeps one trailing newline). JoinContinuations gives the joined value
//     systemd uses (rule 36).
//  12. A file whose sections hold no options is rejected.
//  13. Errors are *ParseError values naming the problem and, where one
//     applies, the line ("line 4: ..."), counting lines of the input as
//     given.
//
// For files where rules 5 and 7 do not apply (no CRLF continuation, no
// comment inside a continuation or ending in '\') the options, and so the
// hash, are the ones fleet computed.
//
// # Serializing and hashing (Serialize, Hash)
//
//  14. Serialize is byte-identical to go-systemd's unit.Serialize: sections
//     in order of first appearance (repeated sections merged into the
//     first), "[Section]\n", then "Name=Value\n" per option in order, one
//     blank line between sections, none at the end.
//  15. Hash is the hex SHA1 of Serialize: fleet's unit hash.
//  16. For options from Parse, Parse(Serialize(opts)) succeeds and returns
//     Grouped(opts); Hash is unchanged (FuzzParse checks this).
//
// # Unit names (ValidateName, ParseName, NormalizeArg)
//
//  17. ValidateName applies fleet's API rules with fleet's messages: non-empty;
//     at most 256 bytes; contains '.'; does not end in '.'; type after the
//     last dot in automount busname device mount path scope service slice
//     snapshot socket swap target timer; characters before it in
//     [A-Za-z0-9:_.@-] or backslash (so '/' and "../" escapes fail); does not
//     start with '@'. Two additions: a name may not start with '.' (systemd
//     refuses an empty prefix), and a name with '@' must be of type path,
//     service, socket, target or timer ("invalid unit type for template").
//  18. ParseName splits at the last '.' (suffix, even at the start of the
//     name) and the first '@' before it (prefix, instance), as systemd and
//     fleet's specifiers do; the runner's specifiers use it too (rule 38).
//  19. NormalizeArg is fleetctl's argument rule: path.Base, then ".service"
//     appended unless the name ends in .service .socket .timer .path .device
//     .mount or .automount.
//
// # [X-Fleet] requirements (Requirements, ValidateOptions)
//
//  20. All [X-Fleet] sections are merged, values in file order.
//  21. A value that starts and ends with '"' is split on spaces outside
//     quotes into several values, quotes removed (`"a=1" "b=2"`).
//  22. In each value %n (full name), %N (name without suffix), %p (prefix)
//     and %i (instance) are replaced, plainly, in that order (fleet's rule,
//     not systemd's: %% is no escape, see expandFleetSpecifiers); nothing
//     is replaced when the name has no '.'. Other sections are never
//     expanded here (the runner expands [Unit] and [Service], rule 38).
//  23. MachineID: the first non-empty value of MachineID, else of
//     X-ConditionMachineID, else of X-ConditionMachineBootID.
//  24. MachineOf (after X-ConditionMachineOf values): exact unit names.
//  25. MachineMetadata (after X-ConditionMachineMetadata values): key=value;
//     values without exactly one '=' or with an empty key or value are
//     ignored; grouped by key (same key OR, keys AND).
//  26. Conflicts (after X-Conflicts values) and Replaces: each value split
//     on white space into path.Match glob patterns; a malformed pattern is
//     an error.
//  27. Global and StopOnDisconnect (each): the last value, true if it is
//     true, yes, 1, on or t (any case); false when absent (fleet's rule, not
//     systemd's boolean of rule 35: "y" is false, as in fleet). StopOnDisconnect
//     does not affect scheduling: the agent stops such a unit when its
//     machine loses contact with etcd for agent_ttl.
//  28. Lists drop empty values and duplicates (fleet kept them: an empty
//     MachineOf or MachineID made a unit unschedulable).
//  29. Any other [X-Fleet] key gives the warning
//     `unrecognized requirement in [X-Fleet] section: "Foo"`, not an error.
//  30. ValidateOptions rejects: no options; options that do not survive
//     Serialize then Parse unchanged; malformed patterns; a MachineOf peer
//     matching a Conflicts pattern (`unresolvable requirements: peer "x"
//     matches conflict "y"`) or a Replaces pattern; and the combinations
//     MachineID+MachineOf ("MachineID cannot be used with Peers"),
//     MachineID+Conflicts, MachineID+Global, MachineID+Replaces,
//     Global+MachineOf ("Global cannot be used with Peers"), Global+Replaces,
//     Conflicts+Replaces ("X cannot be used with Y"). It also refuses more
//     than MaxRequirementValues (1024) MachineOf, Conflicts or Replaces
//     values (not a fleet rule: it bounds the scheduler's work).
//
// # Option lookup (Value, Values, Description)
//
//  31. Value returns the last value of a key; Values all of them in order,
//     where an empty assignment clears the ones before it (systemd's list
//     reset); Description is [Unit] Description or "".
//
// # [X-Service] endpoints (Services)
//
//  32. Every [X-Service] option is one key of one endpoint; repeated
//     sections carry no boundary in the options (and are merged when
//     stored), so an endpoint ends where a key repeats. Keys: Name, Port,
//     Protocol, Tags, CheckHTTP, CheckTCP, CheckExec, CheckInterval,
//     CheckTimeout, CheckThreshold; any other key is an error. %n %N %p %i
//     are expanded as in [X-Fleet]. Name and Port are required; see
//     Services for the values and defaults.
//  33. ValidateOptions also rejects a bad [X-Service] (a template is
//     checked as its instance "1"). CheckInterval and CheckTimeout are time
//     spans (rule 34), finite, positive and at most 1e6 s; CheckTCP is a
//     boolean (rule 35).
//
// # systemd values (ParseTimespan, ParseBool, JoinContinuations, SplitExecLine, ExpandSpecifiers)
//
// One implementation, used by these checks and by the exec runner
// (TimeoutStartSec=, RestartSec=, RemainAfterExit=, Exec lines ...). The
// table in unitfiletest is fed through both (TestPrimitives* here,
// TestPrimitivesTable in internal/runner/exec).
//
//  34. ParseTimespan is systemd's parse_sec: "infinity", or numbers with
//     optional units, summed ("1h 30min", "1m30s"; "5 5" is 10 s); a bare
//     number is seconds; units us usec µs μs, ms msec, s sec second(s), m
//     min minute(s), h hr hour(s), d day(s), w week(s), M month(s) (2629800
//     s), y year(s) (31557600 s), matched as the first of systemd's list the
//     text starts with, case-sensitive; decimal fractions (".5s", "1.5h",
//     not "1." or "1.s"); no sign; microsecond resolution, in integers.
//     Spans beyond a time.Duration (about 292 years) are infinite; beyond
//     systemd's range, or malformed, an error.
//  35. ParseBool is systemd's parse_boolean: 1 yes y true t on, 0 no n false
//     f off, any case; anything else is an error.
//  36. JoinContinuations: a backslash before "\n" or "\r\n" becomes a space,
//     lines are joined as they are (a continuation line keeps its leading
//     white space, as in systemd), and the value is stripped of " \t\n\r".
//  37. SplitWords splits as systemd's Exec and Environment= parsing: white
//     space separates, single and double quotes group, C escapes (\n \t \s
//     \xNN \NNN \uXXXX \UXXXXXXXX, "\c" is c) are decoded; an unterminated
//     quote, a bad escape or a trailing backslash is an error. JoinWords
//     quotes words so that SplitWords gives them back. SplitExecLine
//     strips the prefix characters (ParseExecPrefix: "-" ignore failure,
//     "@" argv[0] follows, ":" no $VAR expansion, "+" "!" "|" accepted and
//     ignored) and needs at least one word.
//  38. ExpandSpecifiers expands systemd's specifiers in one pass: %n %N %p
//     %P %i %I %f from the name (rule 18; %P %I %f unescaped with
//     UnescapeName: "-" is "/", \xNN a byte), %H %m %b %u %U %h %s from
//     Specifiers, %t "/run", %% a percent sign; unknown ones are kept.
package unitfile
