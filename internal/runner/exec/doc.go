// Package exec is fleet's default runner: a small supervisor that gives
// units systemd's [Service] semantics without systemd. It implements
// runner.Runner.
//
// Contract:
//
//   - Load parses the unit. .service and .timer units are supported; a unit
//     this runner cannot run (unknown Type=, no ExecStart= for a
//     non-oneshot service, several ExecStart= for a non-oneshot one, an
//     unparseable command line, time span, KillMode=, Restart= ...) loads
//     with LoadState "error", Status().Error says why, and starting it
//     fails (ActiveState "failed"). Loading a unit that is already loaded
//     replaces its definition for the next start.
//   - Start and Stop enqueue and return at once. Start of an active or
//     activating unit and Stop of an inactive or failed one are no-ops.
//     Each unit has one supervisor goroutine that runs its jobs in order.
//   - A .timer unit ([Timer] parsed by internal/timer.ParseTimer: a bad
//     calendar spec or option loads it with LoadState "error" and the
//     parser's message) has no process: Start makes it active (waiting),
//     "Started X." in the journal; Stop makes it inactive (dead), "Stopped
//     X.". Starting the unit it activates is internal/timerd's business,
//     which reports the next elapse through SetTrigger; Status then has
//     Trigger and Triggers (systemctl's "Trigger:" and "Triggers:" lines).
//   - Types: simple (default; notify and idle behave as simple), exec,
//     oneshot (several ExecStart= allowed; active/exited afterwards with
//     RemainAfterExit=yes, else inactive/dead), forking (ExecStart='s
//     process must exit 0; the main PID comes from PIDFile= or is guessed;
//     without one the unit is active while its group has live members).
//   - ExecStartPre, ExecStart, ExecStartPost, ExecStop, ExecStopPost run
//     in order. Prefix "-" ignores failure, "@" takes argv[0] from the
//     second word, ":" disables $VAR expansion, "+" "!" "!!" "|" are
//     accepted and ignored. Command lines are split like systemd (quotes,
//     backslash escapes, backslash-newline continuations become a space),
//     %-specifiers are expanded first (%n %N %p %P %i %I %f %H %m %b %t %u
//     %U %h %s %%), then $VAR when it is a whole word (split on
//     whitespace into zero or more words) and ${VAR} anywhere (one word);
//     $$ is a dollar, any other $ is left for the program (a shell). Unknown
//     specifiers are kept literally. Relative executables are looked up in
//     the unit's PATH.
//   - Environment= (several, quoted assignments), EnvironmentFile= ("-"
//     optional; KEY=VALUE, comments, quotes), WorkingDirectory= ("-"
//     optional, "~"), User=/Group= (credentials set at exec). The base
//     environment has PATH, HOME, USER, LOGNAME, SHELL, INVOCATION_ID (and
//     LANG if set for us); ExecStop gets MAINPID, ExecStopPost gets
//     SERVICE_RESULT, EXIT_CODE, EXIT_STATUS.
//   - Restart= no, on-success, on-failure, on-abnormal, on-abort, always,
//     after RestartSec= (default 100ms) spent in activating/auto-restart.
//     A stop request never triggers a restart.
//   - Stop: ExecStop= lines (if the service started), then KillSignal=
//     (default SIGTERM, followed by SIGCONT) as KillMode= says
//     (control-group, process, mixed, none); after TimeoutStopSec= (default
//     90s; 0 or infinity wait forever) SIGKILL if SendSIGKILL=yes (result
//     "timeout", so the unit ends failed); then ExecStopPost=.
//     TimeoutStartSec= bounds the whole start (default 90s, none for
//     oneshot). systemd time spans are understood ("1min 30s", "500ms").
//   - Every process runs in its own process group with stdin /dev/null and
//     stdout/stderr into the journal (ident = executable basename, the PID
//     of the process Exec'd). Each start of a unit gets a fresh cgroup
//     (internal/cgroup), under a per-runner directory fleet-exec-PID-RND
//     in our own cgroup of each hierarchy: cgroup v2 when it is writable
//     and has every controller the unit's limits need (CLONE_INTO_CGROUP;
//     cgroup.kill for SIGKILL; processes spawned after cgroup.kill go into
//     another fresh cgroup, as the kernel kills spawns into a killed
//     cgroup); otherwise a cgroup in each writable v1 hierarchy the unit
//     needs: freezer (tracking and kill), memory, cpu and cpuacct, pids,
//     blkio. A unit without limits needs no controller, so it goes to v2
//     where that is writable (Options.CgroupVersion forces 1 or 2). On v1,
//     signals to the control group are sent frozen (freezer.state FROZEN,
//     signal every PID in cgroup.procs, THAWED), so nothing forks away.
//     Where no hierarchy is writable, process groups and their
//     descendants are tracked through /proc. Liveness never relies on
//     kill(-pgid, 0): zombies are not counted. Cgroups are removed when
//     the unit goes down (later, if KillMode= left processes behind).
//   - Resource control ([Service]): MemoryMax= (v2 memory.max, v1
//     memory.limit_in_bytes; the older MemoryLimit= too), MemoryHigh= (v2
//     memory.high; v1 has no throttling equivalent: it sets
//     memory.soft_limit_in_bytes, reclaimed first under global pressure,
//     not a throttle), CPUQuota= (v2 cpu.max "QUOTA 100000", v1
//     cpu.cfs_quota_us with cpu.cfs_period_us 100000), CPUWeight= 1..10000
//     (v2 cpu.weight, v1 cpu.shares = weight*1024/100), TasksMax= (pids.max
//     in v2 or the v1 pids hierarchy), IOWeight= 1..10000 (v2 io.weight; v1
//     blkio.weight, or blkio.bfq.weight, scaled to 10..1000 with 100 ->
//     500; where the blkio controller has neither, a journal warning).
//     Sizes are bytes or K, M, G, T, P, E (base 1024), "infinity", or for
//     MemoryMax=/MemoryHigh= a percentage of physical memory; CPUQuota=
//     must be a percentage (may exceed 100%); TasksMax= takes "infinity"
//     or a percentage of kernel.pid_max. A negative or malformed value,
//     or an unknown suffix, fails the load like any invalid option ("invalid
//     MemoryMax=-1: negative size"). A limit that cannot be enforced (no
//     writable hierarchy with its controller, or the write failed) logs
//     one "Resource limits not enforced: ... (why)" line per start; the
//     unit runs anyway.
//   - Limit*= (NOFILE NPROC CORE AS FSIZE DATA STACK MEMLOCK RSS CPU;
//     "soft:hard" or one value for both, "infinity", sizes with suffixes,
//     LimitCPU= in seconds or a time span) are set with setrlimit in the
//     process before it execs; a value above what the kernel allows is
//     lowered to the closest allowed one, as systemd does. Since Go cannot
//     run code between fork and exec, and v1 has no CLONE_INTO_CGROUP, a
//     process with Limit*= or v1 cgroups is started as our own binary
//     (/proc/self/exe, FLEET_EXEC_SETUP=1, setup.go), which sets the
//     limits, joins the cgroups, drops to User=/Group=, changes directory
//     and execs the program; its failures fail the spawn (205/LIMITS,
//     219/CGROUP, 216/GROUP, 200/CHDIR, 203/EXEC). Shims do the same for
//     the main process they start.
//   - OOM: when the unit's main process (or a oneshot's, or a failing
//     control process) ends in failure and the kernel OOM-killed a process
//     of its cgroup (v2 memory.events oom_kill, v1 memory.oom_control
//     oom_kill; on old v1 kernels memory.failcnt > 0 with a SIGKILLed main
//     process), the result is "oom-kill": "x.service: A process of this
//     unit has been killed by the OOM killer." then "Failed with result
//     'oom-kill'.". Restart=on-failure, on-abnormal and on-abort restart
//     it.
//   - runner.State.Result is systemd's result of the last run: "success"
//     (also while running), "exit-code", "signal", "core-dump", "timeout",
//     "oom-kill", "start-limit-hit", "resources", "protocol",
//     "dependency"; "" for a unit that never ran here.
//   - New makes the process a child subreaper. A reaper goroutine reaps
//     orphans re-parented to us on SIGCHLD; it leaves alone children the
//     runner started itself and children in the runner's own process group
//     (other code's plain exec.Command children). Code in the same process
//     that starts children with Setpgid and waits for them later may race
//     with it.
//   - After=, Requires=, Wants= between units loaded in the same Runner:
//     starting X starts its Requires= and Wants= units; X's start waits
//     for After= units with a start job in flight; a Requires=+After= unit
//     that did not come up (or a Requires= unit that is not loaded) fails
//     X with "Dependency failed for ...". Ordering cycles are not detected.
//     Specifiers are expanded in every dependency (BindsTo=web@%i.service).
//   - Stop propagation: when X goes inactive or failed, units with
//     BindsTo=X or PartOf=X that are running are stopped; units with
//     Requires=X too, unless X failed (a crash does not stop them).
//   - Lifecycle lines ("Starting X...", "Started X.", "Stopped X.",
//     "x.service: Main process exited, code=exited, status=1/FAILURE",
//     "x.service: Failed with result 'exit-code'.", ...) go to the journal
//     with Stream "fleet" and ident "fleetd".
//   - Changed() is notified (coalesced) on every state change; Since
//     changes with ActiveState.
//   - Close stops supervising but leaves processes running; StopAll stops
//     every unit and waits.
//   - With Options.StateDir and Options.Shim, units outlive the runner
//     (fleetd restarts): the main process of a simple or exec service is
//     started by a shim (`fleet-shim DIR` or `fleetd shim DIR`, shim.go)
//     in its own session, which writes its output into the journal itself, reaps it and
//     records its exit status; the runner learns of the exit through a
//     pidfd and the shim's exit.json. A unit that is up is recorded in
//     StateDir/<unit>/unit.json (definition, hash, main PID, cgroups v2 and v1,
//     process groups, exec history) and forgotten when it goes down. New
//     adopts the recorded units: they show active at once with the same
//     MainPID and Hash, "Adopted ..." is logged instead of a start, and
//     supervision (exit, Restart=, stop with ExecStop=) resumes. Records
//     of another boot are discarded; shims of starts cut short are
//     killed. Control processes (ExecStartPre= ...), oneshot and forking
//     ExecStart= still run as the runner's children (a forking daemon is
//     adopted, but its output after the restart is lost).
//   - Options.Heartbeat: a shim stops its unit when that file is older
//     than HeartbeatTTL, or missing for that long: fleetd is gone or cut
//     off etcd, and the machine's units are being moved. It runs the stop
//     as the runner would (shimstop.go): ExecStop= ($MAINPID, the unit's
//     environment, user and directory, specifiers expanded by the runner
//     in spec.json), KillSignal= per KillMode=, SIGKILL after
//     TimeoutStopSec= (each wait at most 90 s), ExecStopPost=. A runner
//     still watching sees the unit stopped ("inactive"), without running
//     ExecStop=/ExecStopPost= again or restarting it.
//   - Start limit: StartLimitIntervalSec= (default 10 s) and
//     StartLimitBurst= (default 5) in [Unit] (or the older [Service]
//     StartLimitInterval=/StartLimitBurst=) count every start, automatic
//     restarts included; one too many fails the unit ("Start request
//     repeated too quickly.", result 'start-limit-hit'). Either at 0
//     disables it. Start of a unit that is down resets the count
//     (reset-failed + start: the agent calls Start only on explicit
//     requests).
package exec
