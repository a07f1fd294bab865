package unitfile

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/fleetd/fleet/internal/fleet"
)

// KeyWarning is an option whose key systemd does not know in its section
// (systemd logs "Unknown key name 'K' in section 'S', ignoring." and runs
// the unit anyway).
type KeyWarning struct {
	Section string
	Key     string
}

// String renders the warning in systemd's words.
func (w KeyWarning) String() string {
	return fmt.Sprintf("Unknown key name '%s' in section '%s', ignoring.", printable(w.Key), printable(w.Section))
}

// printable quotes control characters so that a warning stays one line
// (it may travel in an HTTP header).
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// UnknownKeys lists the options of the [Unit], [Service] and [Install]
// sections whose key systemd does not know (see knownKeys), in file order,
// each key once per section. Keys of other sections (including [X-Fleet]
// and [X-Service], which have their own checks, and sections of other unit
// types) and keys starting with "X-" are never reported. Key names are
// case-sensitive, as in systemd.
func UnknownKeys(opts []fleet.UnitOption) []KeyWarning {
	var out []KeyWarning
	seen := map[[2]string]bool{}
	for _, o := range opts {
		known, checked := knownKeys[o.Section]
		if !checked || strings.HasPrefix(o.Name, "X-") || known[o.Name] {
			continue
		}
		k := [2]string{o.Section, o.Name}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, KeyWarning{Section: o.Section, Key: o.Name})
	}
	return out
}

// UnknownKeyWarnings is UnknownKeys rendered as "UNIT: Unknown key name
// 'K' in section 'S', ignoring." lines.
func UnknownKeyWarnings(unitName string, opts []fleet.UnitOption) []string {
	ws := UnknownKeys(opts)
	if len(ws) == 0 {
		return nil
	}
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = printable(unitName) + ": " + w.String()
	}
	return out
}

func keySet(groups ...string) map[string]bool {
	m := map[string]bool{}
	for _, g := range groups {
		for _, k := range strings.Fields(g) {
			m[k] = true
		}
	}
	return m
}

// Keys the exec runner (internal/runner/exec) acts on.
const (
	runnerUnitKeys = `Description After Requires BindsTo Requisite Wants
		StartLimitIntervalSec StartLimitInterval StartLimitBurst`
	runnerServiceKeys = `Type RemainAfterExit GuessMainPID PIDFile
		StartLimitIntervalSec StartLimitInterval StartLimitBurst
		ExecStartPre ExecStart ExecStartPost ExecStop ExecStopPost
		Environment EnvironmentFile WorkingDirectory User Group
		Restart RestartSec TimeoutStartSec TimeoutStopSec TimeoutSec
		KillMode KillSignal SendSIGKILL`
)

// Keys systemd documents (systemd.unit(5), systemd.service(5),
// systemd.exec(5), systemd.kill(5), systemd.resource-control(5)) that
// fleet accepts and the exec runner ignores (systemd itself honours them).
const (
	systemdUnitKeys = `Documentation Wants Requires Requisite BindsTo PartOf Upholds
		Conflicts Before After OnFailure OnSuccess PropagatesReloadTo
		ReloadPropagatedFrom PropagatesStopTo StopPropagatedFrom JoinsNamespaceOf
		RequiresMountsFor WantsMountsFor OnFailureJobMode OnFailureIsolate
		IgnoreOnIsolate IgnoreOnSnapshot StopWhenUnneeded RefuseManualStart
		RefuseManualStop AllowIsolate DefaultDependencies SurviveFinalKillSignal
		CollectMode FailureAction SuccessAction FailureActionExitStatus
		SuccessActionExitStatus JobTimeoutSec JobRunningTimeoutSec
		JobTimeoutAction JobTimeoutRebootArgument StartLimitIntervalSec
		StartLimitInterval StartLimitBurst StartLimitAction RebootArgument
		SourcePath OnFailureMode
		ConditionArchitecture ConditionFirmware ConditionVirtualization
		ConditionHost ConditionKernelCommandLine ConditionKernelVersion
		ConditionCredential ConditionEnvironment ConditionSecurity
		ConditionCapability ConditionACPower ConditionNeedsUpdate
		ConditionFirstBoot ConditionPathExists ConditionPathExistsGlob
		ConditionPathIsDirectory ConditionPathIsSymbolicLink
		ConditionPathIsMountPoint ConditionPathIsReadWrite
		ConditionPathIsEncrypted ConditionDirectoryNotEmpty
		ConditionFileNotEmpty ConditionFileIsExecutable ConditionUser
		ConditionGroup ConditionControlGroupController ConditionMemory
		ConditionCPUs ConditionCPUFeature ConditionOSRelease
		ConditionMemoryPressure ConditionCPUPressure ConditionIOPressure
		ConditionNull
		AssertArchitecture AssertFirmware AssertVirtualization AssertHost
		AssertKernelCommandLine AssertKernelVersion AssertCredential
		AssertEnvironment AssertSecurity AssertCapability AssertACPower
		AssertNeedsUpdate AssertFirstBoot AssertPathExists AssertPathExistsGlob
		AssertPathIsDirectory AssertPathIsSymbolicLink AssertPathIsMountPoint
		AssertPathIsReadWrite AssertPathIsEncrypted AssertDirectoryNotEmpty
		AssertFileNotEmpty AssertFileIsExecutable AssertUser AssertGroup
		AssertControlGroupController AssertMemory AssertCPUs AssertCPUFeature
		AssertOSRelease AssertMemoryPressure AssertCPUPressure AssertIOPressure
		AssertNull`

	systemdServiceKeys = `Type ExitType RemainAfterExit GuessMainPID PIDFile BusName
		ExecStart ExecStartPre ExecStartPost ExecCondition ExecReload ExecStop
		ExecStopPost RestartSec RestartSteps RestartMaxDelaySec TimeoutStartSec
		TimeoutStopSec TimeoutAbortSec TimeoutSec TimeoutStartFailureMode
		TimeoutStopFailureMode RuntimeMaxSec RuntimeRandomizedExtraSec
		WatchdogSec Restart RestartMode SuccessExitStatus
		RestartPreventExitStatus RestartForceExitStatus RootDirectoryStartOnly
		NonBlocking NotifyAccess Sockets FileDescriptorStoreMax
		FileDescriptorStorePreserve USBFunctionDescriptors USBFunctionStrings
		OOMPolicy OpenFile ReloadSignal PermissionsStartOnly
		StartLimitInterval StartLimitBurst StartLimitAction FailureAction
		RebootArgument
		KillMode KillSignal RestartKillSignal SendSIGHUP SendSIGKILL
		FinalKillSignal WatchdogSignal
		WorkingDirectory RootDirectory RootImage RootImageOptions RootHash
		RootHashSignature RootVerity RootEphemeral MountAPIVFS ProtectProc
		ProcSubset BindPaths BindReadOnlyPaths MountImages ExtensionImages
		ExtensionDirectories User Group DynamicUser SupplementaryGroups
		SetLoginEnvironment PAMName CapabilityBoundingSet AmbientCapabilities
		NoNewPrivileges SecureBits SELinuxContext AppArmorProfile
		SmackProcessLabel LimitCPU LimitFSIZE LimitDATA LimitSTACK LimitCORE
		LimitRSS LimitNOFILE LimitAS LimitNPROC LimitMEMLOCK LimitLOCKS
		LimitSIGPENDING LimitMSGQUEUE LimitNICE LimitRTPRIO LimitRTTIME UMask
		CoredumpFilter KeyringMode OOMScoreAdjust TimerSlackNSec Personality
		IgnoreSIGPIPE Nice CPUSchedulingPolicy CPUSchedulingPriority
		CPUSchedulingResetOnFork CPUAffinity NUMAPolicy NUMAMask
		IOSchedulingClass IOSchedulingPriority ProtectSystem ProtectHome
		RuntimeDirectory StateDirectory CacheDirectory LogsDirectory
		ConfigurationDirectory RuntimeDirectoryMode StateDirectoryMode
		CacheDirectoryMode LogsDirectoryMode ConfigurationDirectoryMode
		RuntimeDirectoryPreserve TimeoutCleanSec ReadWritePaths ReadOnlyPaths
		InaccessiblePaths ExecPaths NoExecPaths TemporaryFileSystem PrivateTmp
		PrivateDevices PrivateNetwork NetworkNamespacePath PrivateIPC
		IPCNamespacePath MemoryKSM PrivateUsers ProtectHostname
		ProtectClock ProtectKernelTunables ProtectKernelModules
		ProtectKernelLogs ProtectControlGroups RestrictAddressFamilies
		RestrictFileSystems RestrictNamespaces LockPersonality
		MemoryDenyWriteExecute RestrictRealtime RestrictSUIDSGID RemoveIPC
		PrivateMounts MountFlags SystemCallFilter SystemCallErrorNumber
		SystemCallArchitectures SystemCallLog Environment EnvironmentFile
		PassEnvironment UnsetEnvironment StandardInput StandardOutput
		StandardError StandardInputText StandardInputData LogLevelMax
		LogExtraFields LogRateLimitIntervalSec LogRateLimitBurst LogFilterPatterns
		LogNamespace SyslogIdentifier SyslogFacility SyslogLevel
		SyslogLevelPrefix TTYPath TTYReset TTYVHangup TTYRows TTYColumns
		TTYVTDisallocate LoadCredential LoadCredentialEncrypted
		ImportCredential SetCredential SetCredentialEncrypted UtmpIdentifier
		UtmpMode
		CPUAccounting CPUWeight StartupCPUWeight CPUQuota CPUQuotaPeriodSec
		AllowedCPUs StartupAllowedCPUs AllowedMemoryNodes
		StartupAllowedMemoryNodes MemoryAccounting MemoryMin MemoryLow
		StartupMemoryLow DefaultStartupMemoryLow MemoryHigh StartupMemoryHigh
		MemoryMax StartupMemoryMax MemorySwapMax StartupMemorySwapMax
		MemoryZSwapMax StartupMemoryZSwapMax MemoryZSwapWriteback TasksAccounting
		TasksMax IOAccounting IOWeight StartupIOWeight IODeviceWeight
		IOReadBandwidthMax IOWriteBandwidthMax IOReadIOPSMax IOWriteIOPSMax
		IODeviceLatencyTargetSec IPAccounting IPAddressAllow IPAddressDeny
		SocketBindAllow SocketBindDeny RestrictNetworkInterfaces
		NFTSet IPIngressFilterPath IPEgressFilterPath BPFProgram
		DeviceAllow DevicePolicy Slice Delegate DelegateSubgroup
		DisableControllers ManagedOOMSwap ManagedOOMMemoryPressure
		ManagedOOMMemoryPressureLimit ManagedOOMMemoryPressureDurationSec
		ManagedOOMPreference MemoryPressureWatch MemoryPressureThresholdSec
		CoredumpReceive CPUShares StartupCPUShares MemoryLimit BlockIOAccounting
		BlockIOWeight StartupBlockIOWeight BlockIODeviceWeight
		BlockIOReadBandwidth BlockIOWriteBandwidth`

	systemdInstallKeys = `Alias WantedBy RequiredBy UpheldBy Also DefaultInstance`
)

// knownKeys are, per checked section, the keys not warned about.
var knownKeys = map[string]map[string]bool{
	"Unit":    keySet(runnerUnitKeys, systemdUnitKeys),
	"Service": keySet(runnerServiceKeys, systemdServiceKeys),
	"Install": keySet(systemdInstallKeys),
}

// IsKnownKey reports whether key is known in section; keys of sections
// that are not checked count as known.
func IsKnownKey(section, key string) bool {
	known, checked := knownKeys[section]
	return !checked || strings.HasPrefix(key, "X-") || known[key]
}
