/// The JSON protocol between `ship` (the controller) and `ship-agent` (on each host).
///
/// The controller runs `<deploy_to>/.ship/bin/ship-agent OP` over ssh and writes one JSON
/// `AgentRequest` line on its stdin (for `receive-bundle`, the bundle's bytes follow). The agent
/// answers with JSON `AgentEvent` lines on stdout; the last one has kind `result`. A request of
/// another protocol version is refused, and the controller uploads its own agent.
///
/// A deployment keeps one session per host instead: `ship-agent serve` takes request after
/// request on one ssh channel (a bundle's bytes follow its request line, `payloadBytes` long),
/// answering each with its events and its result, until stdin ends.
public enum AgentProtocol {
    public static let version = 7
    /// ship's release, which the controller and the agent built with it both report.
    public static let shipVersion = "0.3.0"
}

public enum AgentOperation: String, Codable, Sendable, CaseIterable {
    /// Check the host: deploy_to writable, shared files present, the bundle cached or not.
    case preflight
    case lock
    case unlock
    /// Store the bundle that follows the request line on stdin, verifying its SHA-256.
    case receiveBundle = "receive-bundle"
    /// Make a new release: unpack its bundle as it arrives after the request line (`payloadBytes`
    /// long, stored and hashed on the way) or from the host's bundle cache; for a delta bundle,
    /// copy the unchanged files from a base release. Then link shared paths, record its appspec.
    case prepare
    /// Run one lifecycle event's hooks of a release.
    case runHooks = "run-hooks"
    /// Point `current` at a release (atomically).
    case switchCurrent = "switch"
    /// Remove a release that never became current (a failed deployment's).
    case discard
    /// Remove old releases and bundles.
    case prune
    /// Current release, releases, lock, recent journal.
    case state
    /// Dump a database: `data` frames of the dump, then the result as an `event` frame.
    case backupDatabase = "backup-db"
    /// Load a dump sent as `data` frames after the request line.
    case restoreDatabase = "restore-db"
    /// A tar archive of asset directories under deploy_to, framed like `backup-db`.
    case backupAssets = "backup-assets"
    /// Replace asset directories with those of a tar archive sent as frames.
    case restoreAssets = "restore-assets"
    /// The controller is done with the host for this deployment: its stop marker is cleared, so
    /// the end of the session starts nothing (see `ship-agent serve`).
    case settle
    /// Take a host out of a load balancer's rotation or put it back, on a balancer host (or the
    /// controller's machine): HAProxy's runtime API over its admin socket, or a command.
    case traffic
    /// `ship logs`: a deployment's hook logs (or an exec's), each event's from an offset on,
    /// as output events; whether the deployment has finished on this host.
    case logs
    /// `ship setup`: the deploy_to tree and shared directories made, shared files uploaded,
    /// modes and group for the web user; reports what it changed.
    case setup
    /// `ship exec`: one command line in `current`, with the hook environment, as the agent's
    /// user or `runas`; its output streamed as hook output is.
    case exec
    /// Fetch the bundle from the artifact store with `bundleURL` (a presigned link) into the
    /// host's bundle cache with the host's `curl`, verifying its SHA-256 before keeping it.
    case fetch

    /// Operations whose stdout is a framed binary stream rather than JSON lines.
    public var streamsFrames: Bool { self == .backupDatabase || self == .backupAssets }

    /// Operations a session (`ship-agent serve`) takes: all but the streamed backups and restores,
    /// which keep a process of their own.
    public var servedInSession: Bool {
        switch self {
        case .backupDatabase, .restoreDatabase, .backupAssets, .restoreAssets: false
        default: true
        }
    }
}

/// The database a dump or restore is about. The password travels only here, in the request on
/// the agent's stdin; the agent hands it to the client in a 0600 option file (MySQL/MariaDB) or
/// the child's environment (PostgreSQL, commands), never on a command line.
public struct DatabaseTarget: Codable, Sendable, Equatable {
    /// `mysql`, `postgres` or `command`.
    public var engine: String
    public var name: String?
    public var user: String?
    /// host:port, or a unix socket path.
    public var address: String?
    public var password: String?
    /// The variable name the password is also exported as to `dump_command`/`restore_command`.
    public var passwordEnv: String?
    public var dumpCommand: String?
    public var restoreCommand: String?
    /// Seconds the dump may run; past that it is stopped and the backup fails.
    public var timeout: Int?

    public init(engine: String) {
        self.engine = engine
    }
}

/// Who holds an environment's deploy lock.
public struct LockInfo: Codable, Sendable, Equatable {
    public var deploymentId: String
    /// `user@machine` of the controller.
    public var holder: String
    /// ISO 8601.
    public var started: String
    /// The controller's process id on its machine (the part of `holder` after '@'): a later
    /// run on that machine can tell whether the holder is still running.
    public var pid: Int32?

    public init(deploymentId: String, holder: String, started: String, pid: Int32? = nil) {
        self.deploymentId = deploymentId
        self.holder = holder
        self.started = started
        self.pid = pid
    }
}

/// One line of a host's journal (`<deploy_to>/.ship/journal.jsonl`).
public struct JournalEntry: Codable, Sendable, Equatable {
    public var time: String
    public var deploymentId: String
    /// `deploy` or `rollback`.
    public var kind: String
    /// What happened: `started`, `prepared`, `switched`, `hook`, `finished`, …
    public var step: String
    public var release: String?
    public var previousRelease: String?
    public var revision: String?
    public var status: String?
    public var user: String?
    public var environment: String?
    public var detail: String?
    /// On a run's `finished` entry: what happened to this host (`succeeded`, `failed`,
    /// `rolled_back`, `not_switched`, `not_started`).
    public var hostStatus: String?

    public init(time: String, deploymentId: String, kind: String, step: String, release: String? = nil,
                previousRelease: String? = nil, revision: String? = nil, status: String? = nil,
                user: String? = nil, environment: String? = nil, detail: String? = nil) {
        self.time = time
        self.deploymentId = deploymentId
        self.kind = kind
        self.step = step
        self.release = release
        self.previousRelease = previousRelease
        self.revision = revision
        self.status = status
        self.user = user
        self.environment = environment
        self.detail = detail
    }
}

public struct SharedSpec: Codable, Sendable, Equatable {
    public var dirs: [String]
    public var files: [String]

    public init(dirs: [String], files: [String]) {
        self.dirs = dirs
        self.files = files
    }
}

public struct AgentRequest: Codable, Sendable {
    public var protocolVersion: Int
    public var operation: AgentOperation
    public var deployTo: String
    public var lock: LockInfo?
    public var force: Bool?
    public var bundleSHA256: String?
    /// `receive-bundle`, `prepare`: how many bytes of bundle follow the request line.
    public var payloadBytes: Int64?
    /// `fetch`: the presigned link to the bundle in the artifact store. It grants reading that
    /// one object until it expires, so it travels only here, never on a command line.
    public var bundleURL: String?
    /// `fetch` with the host's own credentials (`artifacts.host_credentials`): where the bundle
    /// is; the agent signs the GET itself (environment, else the instance's role).
    public var bundleObject: StoreObject?
    /// `prepare` of a delta bundle: the release on the host the unchanged files come from.
    public var baseRelease: String?
    /// `prepare` of a delta bundle: the regular files of the new revision that are the same in
    /// the base release's revision (path, mode and content), in tree order; the bundle holds
    /// everything else (REVISION, every directory and symlink, the changed files).
    public var unchangedPaths: [String]?
    public var release: String?
    public var revision: String?
    public var shared: SharedSpec?
    public var appspec: Appspec?
    public var event: LifecycleEvent?
    /// The hook environment (ship's and CodeDeploy's variables, and the environment's `env`).
    public var hookEnvironment: [String: String]?
    public var keepReleases: Int?
    /// Releases prune must keep besides current (e.g. the rollback target).
    public var protectedReleases: [String]?
    public var journal: JournalEntry?
    public var journalLimit: Int?
    public var database: DatabaseTarget?
    /// Asset directories, relative to deploy_to.
    public var assetDirectories: [String]?
    /// `state`: also measure each release's size on disk.
    public var measureReleases: Bool?
    /// Preflight: the users hooks run as (`runas`), each checked to exist and, for an agent
    /// that is not root, to be reachable with `sudo -n` (the sudoers line of docs/installing.md).
    public var runasUsers: [String]?
    /// `backup-assets`: seconds the archive may take before it is stopped (nothing is stored).
    public var timeout: Int?
    /// `restore-db`: load into a scratch database made for it, report what it holds, then drop
    /// it (`ship backup verify --restore-test`); the configured database is never touched.
    public var scratchRestore: Bool?
    /// `run-hooks`: these hooks (a `validate` that passed) leave the host settled: its guard
    /// has nothing left to do.
    public var settles: Bool?
    /// `traffic`: what to do to which server.
    public var traffic: TrafficAction?
    /// `preflight` (checked), `switch` (made): CodeDeploy `files` destinations, each a symlink to
    /// `<deploy_to>/current` or to a directory of it.
    public var links: [DestinationLink]?
    /// `switch`: `--file-exists-behavior`, over the appspec's, for this deployment's copies.
    public var fileExistsBehavior: String?
    /// `exec`: the line for `/bin/sh -c`, run in `current` (`timeout` is its time limit).
    public var command: String?
    /// `exec`: the user it runs as (through the sudoers line when the agent is not root).
    public var runas: String?
    /// The variables of `hookEnvironment` that are secrets: their values are masked as `***` in
    /// the output sent back and in the host's hook logs.
    public var secretNames: [String]?
    /// `logs`: whose logs (a deployment id, or an exec's), which event only (nil: all), and
    /// where each event's log was read up to before (`--follow`).
    public var logDeployment: String?
    public var logEvent: String?
    public var logOffsets: [String: Int64]?
    /// `setup`: files for deploy_to/shared (on stdin only, never a command line), the user whose
    /// group gets the shared directories, and whether a file that differs is replaced.
    public var uploads: [SharedUpload]?
    public var webUser: String?
    public var overwrite: Bool?

    public init(operation: AgentOperation, deployTo: String) {
        protocolVersion = AgentProtocol.version
        self.operation = operation
        self.deployTo = deployTo
    }
}

/// A file `ship setup` puts under deploy_to/shared.
public struct SharedUpload: Codable, Sendable, Equatable {
    /// Relative to deploy_to/shared.
    public var path: String
    public var content: [UInt8]
    /// Permission bits.
    public var mode: Int

    public init(path: String, content: [UInt8], mode: Int) {
        self.path = path
        self.content = content
        self.mode = mode
    }
}

/// An object of an S3-compatible store, addressed path-style (`endpoint/bucket/key`) as ship's
/// S3 client addresses it.
public struct StoreObject: Codable, Sendable, Equatable {
    public var endpoint: String
    public var bucket: String
    public var key: String
    public var region: String

    public init(endpoint: String, bucket: String, key: String, region: String) {
        self.endpoint = endpoint
        self.bucket = bucket
        self.key = key
        self.region = region
    }

    public var url: String {
        var base = endpoint
        while base.hasSuffix("/") { base.removeLast() }
        return base + "/" + URIEncoding.encoded(bucket) + "/"
            + key.split(separator: "/", omittingEmptySubsequences: false).map { URIEncoding.encoded(String($0)) }.joined(separator: "/")
    }
}

/// A CodeDeploy `files` destination that ship keeps as a symlink into the live release.
public struct DestinationLink: Codable, Sendable, Equatable {
    public var destination: String
    /// `<deploy_to>/current`, or a directory below it (a `source` that is part of the revision).
    public var target: String

    public init(destination: String, target: String) {
        self.destination = destination
        self.target = target
    }
}

/// `traffic`: one host taken out of a balancer's rotation (drained first) or put back in it.
public struct TrafficAction: Codable, Sendable, Equatable {
    public enum Direction: String, Codable, Sendable {
        /// HAProxy: `drain`, wait until no session is left (or `timeout`), then `maint`.
        case out
        /// HAProxy: `ready`, then wait until HAProxy says the server is up (or `timeout`).
        case back
    }

    /// A server of an HAProxy backend, reached through the runtime API on an admin socket.
    public struct HAProxyServer: Codable, Sendable, Equatable {
        public var socket: String
        public var backend: String
        public var server: String

        public init(socket: String, backend: String, server: String) {
            self.socket = socket
            self.backend = backend
            self.server = server
        }

        /// Runtime API names: letters, digits and `_.:-` only, so that a name can never carry a
        /// second command (the CLI splits on `;` and newlines).
        public static func isValidName(_ name: String) -> Bool {
            !name.isEmpty && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x5F || byte == 0x2E || byte == 0x3A || byte == 0x2D
            }
        }
    }

    public var direction: Direction
    public var haproxy: HAProxyServer?
    /// The `command` provider: a line for `/bin/sh -c`, with `environment` (SHIP_HOST, SHIP_SERVER…).
    public var command: String?
    public var environment: [String: String]?
    /// Seconds: HAProxy's drain or ready wait; a command's time limit.
    public var timeout: Int

    public init(direction: Direction, haproxy: HAProxyServer? = nil, command: String? = nil,
                environment: [String: String]? = nil, timeout: Int) {
        self.direction = direction
        self.haproxy = haproxy
        self.command = command
        self.environment = environment
        self.timeout = timeout
    }
}

/// Where a release stands on one host. A release is `prepared` when unpacked, `live` once
/// `current` pointed at it, `good` when its deployment (or a rollback to it) finished with this
/// host validated, `failed` when its deployment failed on this host. A `prepared` release that
/// is not being deployed (its controller was killed) is `abandoned`, and a `live` one that is no
/// longer current and was never confirmed is `unverified`: both are told apart when read.
public enum ReleaseState: String, Codable, Sendable, CaseIterable {
    case prepared
    case live
    case good
    case failed
    case abandoned
    case unverified

    /// Counts toward keep_releases and may be a rollback target's candidate.
    public var counts: Bool { self == .good || self == .live || self == .unverified }
}

/// What the agent knows about one release it holds.
public struct ReleaseRecord: Codable, Sendable, Equatable {
    public var release: String
    public var revision: String
    public var deploymentId: String?
    public var appspec: Appspec
    public var bundleSHA256: String?
    /// nil in records written before release states: such a release is taken as good.
    public var state: ReleaseState?
    /// When the release was complete: a file in it whose inode changed later (ctime) was changed
    /// in place, by a hook or by hand, and the release is no longer its revision as packaged, so
    /// it is no base for a delta. nil in records written before delta releases.
    public var sealed: FileTime?
    /// The release a delta bundle's unchanged files were copied from.
    public var base: String?

    public init(release: String, revision: String, deploymentId: String?, appspec: Appspec, bundleSHA256: String?,
                state: ReleaseState? = .prepared) {
        self.release = release
        self.revision = revision
        self.deploymentId = deploymentId
        self.appspec = appspec
        self.bundleSHA256 = bundleSHA256
        self.state = state
    }
}

/// One release on a host, as `state` reports it.
public struct ReleaseInfo: Codable, Sendable, Equatable {
    public var release: String
    public var revision: String?
    public var state: ReleaseState
    /// Bytes on disk, when asked for.
    public var bytes: Int64?
    /// The release can be the base of a delta bundle (its record says when it was sealed).
    public var deltaBase: Bool?

    public init(release: String, revision: String?, state: ReleaseState, bytes: Int64? = nil) {
        self.release = release
        self.revision = revision
        self.state = state
        self.bytes = bytes
    }
}

public struct AgentResult: Codable, Sendable, Equatable {
    public var ok: Bool
    public var message: String?
    /// What to do about a failure, when the agent knows (e.g. the sudoers line to add).
    public var hint: String?
    public var currentRelease: String?
    public var currentRevision: String?
    public var previousRelease: String?
    public var releases: [String]?
    public var lock: LockInfo?
    public var present: Bool?
    /// `fetch`: the bytes fetched from the store (nil: the cache had the bundle).
    public var fetched: Int64?
    public var missing: [String]?
    public var pruned: [String]?
    public var journal: [JournalEntry]?
    public var hostname: String?
    /// Uncompressed bytes a backup streamed or a restore loaded.
    public var bytes: Int64?
    /// Every release with its state, oldest first (`state`, `prune`).
    public var releaseInfos: [ReleaseInfo]?
    /// What went wrong without failing the operation (a release that could not be removed).
    public var warnings: [String]?
    /// A scratch restore's findings: the table count, then row counts of the largest tables.
    public var report: [String]?
    /// `state`: the host's release was stopped by this deployment and not started again since.
    public var stopped: StoppedState?
    /// `prepare` of a delta: the base release has changed since it was sealed (or is gone), so
    /// the delta cannot make the new release there; the controller sends the full bundle.
    public var deltaRefused: Bool?
    /// `prepare`: how the release was made.
    public var unpacked: UnpackSummary?
    /// `switch`: the destination links made or replaced, as `DEST -> TARGET`.
    public var linked: [String]?
    /// `switch`: the copies written, removed or restored (`copied /etc/x.conf`…).
    public var copied: [String]?
    /// `logs`: where each event's log was read up to; whether the deployment has finished here
    /// (its journal has its `finished` entry); whether any log of it is on the host.
    public var logOffsets: [String: Int64]?
    public var finished: Bool?
    public var found: Bool?

    public init(ok: Bool, message: String? = nil) {
        self.ok = ok
        self.message = message
    }
}

public struct AgentEvent: Codable, Sendable {
    public enum Kind: String, Codable, Sendable {
        case output
        case hookStarted = "hook_started"
        case hookFinished = "hook_finished"
        /// A guard is watching (`guard`), before its result.
        case ready
        case result
    }

    public var kind: Kind
    public var line: String?
    public var hook: String?
    public var event: LifecycleEvent?
    public var outcome: HookOutcome?
    public var result: AgentResult?

    public init(kind: Kind, line: String? = nil, hook: String? = nil, event: LifecycleEvent? = nil,
                outcome: HookOutcome? = nil, result: AgentResult? = nil) {
        self.kind = kind
        self.line = line
        self.hook = hook
        self.event = event
        self.outcome = outcome
        self.result = result
    }
}

/// A file time with its nanoseconds, as stat(2) gives it.
public struct FileTime: Codable, Sendable, Equatable, Comparable {
    public var seconds: Int64
    public var nanoseconds: Int64

    public init(seconds: Int64, nanoseconds: Int64) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public static func < (a: FileTime, b: FileTime) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }
}

/// How `prepare` made a release on a host.
public struct UnpackSummary: Codable, Sendable, Equatable {
    /// Entries of the bundle (REVISION, directories, files, symlinks).
    public var entries: Int
    /// Bundle bytes received with the request (0: the bundle was in the host's cache).
    public var received: Int64
    /// Files copied from the base release (a delta), and how: `reflink`, `copy`.
    public var copied: Int
    public var copyMethod: String?
    public var milliseconds: Int

    public init(entries: Int, received: Int64, copied: Int, copyMethod: String?, milliseconds: Int) {
        self.entries = entries
        self.received = received
        self.copied = copied
        self.copyMethod = copyMethod
        self.milliseconds = milliseconds
    }
}

/// A host whose release a deployment stopped (`.ship/stopped.json`), until it is settled.
public struct StoppedState: Codable, Sendable, Equatable {
    public var deploymentId: String
    /// ISO 8601, UTC.
    public var since: String
    /// The agent tried to start `current` again after its session was lost, and that failed.
    public var restartFailed: Bool?

    public init(deploymentId: String, since: String, restartFailed: Bool? = nil) {
        self.deploymentId = deploymentId
        self.since = since
        self.restartFailed = restartFailed
    }
}
