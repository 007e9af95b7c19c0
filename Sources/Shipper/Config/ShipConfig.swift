import Foundation

/// The deploy configuration of one application, read from `ship.yml` (CONTRACT.md section 1).
public struct ShipConfig: Sendable {
    /// The path of the ship.yml it was read from.
    public var file: String
    /// The directory holding ship.yml; relative paths in it are relative to this.
    public var directory: String
    public var app: String
    /// The top level's `deploy_to`, `keep_releases` and `ssh`; each environment has them resolved
    /// (its own keys over these), so code reads `environment.deployTo`, never these.
    public var defaultDeployTo: String?
    public var defaultKeepReleases: Int
    public var defaultSSH: SSHSettings
    public var shared: SharedPaths
    public var defaultEnvironment: String?
    /// In the order they are declared.
    public var environments: [Environment]
    /// `build:`: commands run once per revision on the controller, whose output is bundled.
    public var build: BuildSettings?

    /// The environment a command names, else `default_environment`, else the only one.
    public func environment(named name: String?) throws(ShipError) -> Environment {
        if let name {
            guard let environment = environments.first(where: { $0.name == name }) else {
                let names = environments.map(\.name)
                throw ShipError.usage("unknown environment '\(name)' in \(file)",
                                      hint: Suggestion.didYouMean(name, among: names)
                                          ?? "environments: \(names.joined(separator: ", "))")
            }
            return environment
        }
        if let defaultEnvironment, let environment = environments.first(where: { $0.name == defaultEnvironment }) {
            return environment
        }
        if environments.count == 1 { return environments[0] }
        throw ShipError.usage("which environment? \(file) has \(environments.map(\.name).joined(separator: ", "))",
                              hint: "name one (e.g. `ship deploy \(environments[0].name)`) or set default_environment")
    }
}

/// `build:` commands run in a clean export of the revision on the controller (never in the work
/// tree); the files they produce or change, but those under `exclude`, go into the bundle.
public struct BuildSettings: Sendable, Equatable {
    public var commands: [String]
    /// Paths (relative to the revision root) whose build output is left out, with everything below.
    public var exclude: [String] = []

    public init(commands: [String], exclude: [String] = []) {
        self.commands = commands
        self.exclude = exclude
    }
}

public struct SSHSettings: Sendable, Equatable {
    public var user: String?
    public var port: Int?
    /// Absolute path (`~` expanded, relative paths resolved against ship.yml's directory).
    public var identityFile: String?
    /// Absolute path, passed to ssh as `-F`.
    public var configFile: String?
    public var options: [String]
    /// `max_startups`: new ssh connections opened at once through one jump host (ProxyJump).
    public var maxStartups: Int?

    /// New connections through one jump host at once unless `max_startups` says otherwise: below
    /// the 10 at which a stock sshd (MaxStartups 10:30:100) starts dropping them.
    public static let defaultMaxStartups = 8

    public init(user: String? = nil, port: Int? = nil, identityFile: String? = nil,
                configFile: String? = nil, options: [String] = [], maxStartups: Int? = nil) {
        self.user = user
        self.port = port
        self.identityFile = identityFile
        self.configFile = configFile
        self.options = options
        self.maxStartups = maxStartups
    }

    /// These settings with the keys `other` sets replacing them (an environment's `ssh:` over
    /// the top level's).
    public func overridden(by other: SSHSettings) -> SSHSettings {
        SSHSettings(user: other.user ?? user, port: other.port ?? port, identityFile: other.identityFile ?? identityFile,
                    configFile: other.configFile ?? configFile, options: other.options.isEmpty ? options : other.options,
                    maxStartups: other.maxStartups ?? maxStartups)
    }
}

/// A variable of a hook's environment, from `env:`.
public struct HookVariable: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// Paths under `deploy_to/shared` linked into every release.
public struct SharedPaths: Sendable, Equatable {
    public var dirs: [String]
    public var files: [String]

    public init(dirs: [String] = [], files: [String] = []) {
        self.dirs = dirs
        self.files = files
    }
}

/// One target host of an environment.
public struct Host: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// What ssh is given: an alias, name or IP, possibly `user@`.
    public var name: String
    public var port: Int?
    public var roles: [String]
    /// The ssh user for this host alone (`ssh: { user: }` on the host entry).
    public var user: String?
    /// Hook variables for this host alone, over the environment's `env`.
    public var env: [HookVariable]
    /// The EC2 instance, for a host the AWS inventory found (its target-group id).
    public var instanceId: String?

    public init(name: String, port: Int? = nil, roles: [String] = [], user: String? = nil, env: [HookVariable] = [],
                instanceId: String? = nil) {
        self.name = name
        self.port = port
        self.roles = roles
        self.user = user
        self.env = env
        self.instanceId = instanceId
    }

    /// The host as written in ship.yml, used to label its output.
    public var description: String {
        guard let port else { return name }
        return name.contains(":") ? "[\(name)]:\(port)" : "\(name):\(port)"
    }
}

/// One step of a rolling deployment's batch sizes.
/// `max_errors` (SSM's MaxErrors) or `min_healthy_hosts` (CodeDeploy's minimum healthy hosts).
public enum FailureLimit: Sendable, Equatable, CustomStringConvertible {
    case maxErrors(BatchSize)
    case minHealthy(BatchSize)

    public var description: String {
        switch self {
        case .maxErrors(let size): "max_errors \(size)"
        case .minHealthy(let size): "min_healthy_hosts \(size)"
        }
    }
}

public enum BatchSize: Sendable, Equatable, CustomStringConvertible {
    case count(Int)
    case percent(Int)

    public var description: String {
        switch self {
        case .count(let n): "\(n)"
        case .percent(let p): "\(p)%"
        }
    }
}

/// Batch sizes in order; the last one repeats (Ansible's `serial`).
public struct BatchSpec: Sendable, Equatable, CustomStringConvertible {
    public var sizes: [BatchSize]

    public init(_ sizes: [BatchSize]) {
        self.sizes = sizes
    }

    public static let one = BatchSpec([.count(1)])

    public var description: String {
        sizes.count == 1 ? sizes[0].description : "[" + sizes.map(\.description).joined(separator: ", ") + "]"
    }
}

/// How bundles travel: `gzip` (deflate level 6, the default: for links slower than the hosts'
/// disks), `fast` (level 1) or `none` (stored, uncompressed: loopback, or a LAN where the
/// controller's cores are the bottleneck rather than the wire).
public enum BundleCompression: String, Sendable, CaseIterable {
    case gzip
    case fast
    case none

    /// The zlib level the bundle is written with.
    public var level: Int32 {
        switch self {
        case .gzip: 6
        case .fast: 1
        case .none: 0
        }
    }
}

public enum RollbackMode: String, Sendable, CaseIterable {
    case auto
    case manual
}

public struct Environment: Sendable {
    public var name: String
    /// Resolved: the environment's own `deploy_to`, else the top level's.
    public var deployTo: String
    /// Resolved like `deployTo`.
    public var keepReleases: Int
    /// The top level's `ssh:` with the environment's keys over it.
    public var ssh: SSHSettings
    /// The default revision to deploy; nil means HEAD.
    public var revision: String?
    public var hosts: [Host]
    public var batch: BatchSpec
    /// `max_fail`: hosts allowed to fail; `max_errors` and `min_healthy_hosts` (as a share of the
    /// pool) are read into `failureLimit` instead, resolved by `allowedFailures`.
    public var maxFail: Int
    public var failureLimit: FailureLimit?
    /// `max_concurrency`: hosts ship works on at once (default 32).
    public var maxConcurrency: BatchSize?
    public var rollback: RollbackMode
    /// A push of this branch deploys this environment.
    public var deployOnPush: String?
    /// Extra hook environment, in declaration order.
    public var env: [(name: String, value: String)]
    public var backup: BackupConfig?
    /// Resolved like `deployTo`.
    public var compression: BundleCompression = .gzip
    /// Checked from the controller on each host after its `validate` passed.
    public var healthCheck: HealthCheck?
    /// How hosts leave and rejoin the load balancer's rotation; nil: ship does not touch it.
    public var traffic: TrafficSettings?
    /// Hosts found at the start of each command, besides `hosts`.
    public var inventory: AWSInventory?
    /// Webhooks told of deployments, rollbacks and failed backups.
    public var notify: [NotifyTarget] = []
    /// `secrets:`: variables hooks and `ship exec` get, whose values come from ship's own
    /// environment or `secrets_command`, never from ship.yml; masked in every output.
    public var secrets: [String] = []
    /// `secrets_command:`: a shell line on the controller printing `NAME=value` lines.
    public var secretsCommand: String?
    /// `build:` resolved: the environment's own, else the top level's.
    public var build: BuildSettings?
    /// Hosts ship works on at once: `max_concurrency` of this pool (a share rounded up, at least
    /// one), else 32.
    public var concurrency: Int {
        switch maxConcurrency {
        case .count(let n)?: n
        case .percent(let p)?: max(1, (hosts.count * p + 99) / 100)
        case nil: 32
        }
    }

    /// Hosts that may fail (each rolled back alone) before a deployment stops: `max_errors` of
    /// this pool (a share rounded down), or all but `min_healthy_hosts` (a share rounded up, as
    /// CodeDeploy does), else `max_fail`.
    public var allowedFailures: Int {
        switch failureLimit {
        case .maxErrors(.count(let n))?: n
        case .maxErrors(.percent(let p))?: hosts.count * p / 100
        case .minHealthy(.count(let n))?: max(0, hosts.count - n)
        case .minHealthy(.percent(let p))?: max(0, hosts.count - (hosts.count * p + 99) / 100)
        case nil: maxFail
        }
    }

    /// `artifacts:`: bundles published once to an object store, fetched by each host itself.
    public var artifacts: ArtifactsConfig?
    /// `lock: store`: the deploy lock is also taken in the artifact store, before any host.
    public var lockInStore = false

    /// The hook variables of a host, in order: the environment's `env`, the host's values over
    /// them, then the host's own.
    public func variables(for host: Host) -> [(name: String, value: String)] {
        env.map { variable in (variable.name, host.env.first { $0.name == variable.name }?.value ?? variable.value) }
            + host.env.filter { variable in !env.contains { $0.name == variable.name } }.map { ($0.name, $0.value) }
    }
}

/// `health_check:` an HTTP(S) GET the controller makes for each host once its `validate` hooks
/// passed; a host that does not answer as expected within its attempts fails like a failed
/// `validate` (and is rolled back).
public struct HealthCheck: Sendable, Equatable {
    /// `{host}` is replaced by the host as ship.yml names it.
    public var url: String
    public var expectStatus: [Int] = [200]
    /// A substring the body must contain.
    public var expectBody: String?
    /// Seconds per attempt.
    public var timeout: Int = 5
    /// Attempts after the first.
    public var retries: Int = 3
    /// Seconds between attempts.
    public var interval: Int = 2
    /// Where the GET is made from: the controller (nil), or through this host (an ssh SOCKS
    /// tunnel: the URL's name is resolved and connected to there).
    public var from: Host?

    public init(url: String) {
        self.url = url
    }

    public func url(for host: Host) -> String {
        url.replacingOccurrences(of: "{host}", with: host.name)
    }
}

/// Where ship runs something that is not a deploy host's lifecycle (a dump, a balancer's API).
public enum Site: Sendable, Equatable, CustomStringConvertible {
    /// On the controller's machine.
    case local
    /// Over ssh on this host.
    case host(Host)

    /// `local`, or the host as ship.yml names it.
    public var description: String {
        switch self {
        case .local: "local"
        case .host(let host): host.description
        }
    }
}

/// `traffic:` how each host leaves its load balancer's rotation before its `stop` and rejoins it
/// once its `validate` (and health check) passed, through the agent on the balancer hosts.
public struct TrafficSettings: Sendable, Equatable {
    public enum Provider: Sendable, Equatable {
        /// HAProxy's runtime API on `socket`; servers of `backend`.
        case haproxy(socket: String, backend: String)
        /// The user's own lines for `/bin/sh -c`, given SHIP_SERVER, SHIP_HOST and SHIP_TRAFFIC.
        case command(drain: String, undrain: String)
        /// ELBv2 target groups, from the controller: instances deregistered, then registered.
        case awsTargetGroup(arns: [String], region: String?, endpoint: String?)
    }

    public var provider: Provider
    /// Where the balancer is driven from: balancer hosts (each one in turn) or `local`.
    public var sites: [Site]
    /// Host as ship.yml writes it → its server name on the balancer; unlisted hosts keep their name.
    public var servers: [String: String] = [:]
    /// Only hosts with one of these roles are behind the balancer; empty: every host.
    public var roles: [String] = []
    /// HAProxy: seconds a host's open sessions may take to finish once it left the rotation.
    public var drainTimeout: Int = 30
    /// HAProxy: seconds HAProxy may take to count a host put back as up (its own health check).
    public var readyTimeout: Int = 30
    /// `command`: the time limit of each drain or undrain command.
    public var commandTimeout: Int = 60

    public init(provider: Provider, sites: [Site]) {
        self.provider = provider
        self.sites = sites
    }

    public var name: String {
        switch provider {
        case .haproxy: "haproxy"
        case .command: "command"
        case .awsTargetGroup: "aws_target_group"
        }
    }

    /// Whether the host is behind the balancer (`roles`).
    public func manages(_ host: Host) -> Bool {
        roles.isEmpty || host.roles.contains(where: roles.contains)
    }

    /// The host's server name on the balancer (its instance id for a target group: from
    /// `instances`, else the inventory's); nil for a host not behind it, or without an id.
    public func server(for host: Host) -> String? {
        guard manages(host) else { return nil }
        if let named = servers[host.description] ?? servers[host.name] { return named }
        if case .awsTargetGroup = provider { return host.instanceId }
        return host.description
    }
}

/// `inventory: { aws: … }`: the running EC2 instances with these tags and/or in this Auto Scaling
/// group (in service), as hosts, found at the start of each command.
public struct AWSInventory: Sendable, Equatable {
    public enum Address: String, Sendable, CaseIterable {
        case privateIP = "private_ip"
        case publicIP = "public_ip"
        case privateDNS = "private_dns"
        case publicDNS = "public_dns"
        case instanceId = "instance_id"
    }

    public var region: String?
    public var endpoint: String?
    /// Tag name → value, every one required.
    public var tags: [String: String] = [:]
    public var autoScalingGroup: String?
    /// What ssh is given for a found instance.
    public var address: Address = .privateIP
    /// The roles every found host gets.
    public var roles: [String] = []

    public init(region: String? = nil, endpoint: String? = nil) {
        self.region = region
        self.endpoint = endpoint
    }
}

/// One `notify:` entry: a webhook and the events it is sent.
public struct NotifyTarget: Sendable, Equatable {
    public enum Event: String, Sendable, CaseIterable {
        case deploymentStarted = "deployment_started"
        case deploymentFinished = "deployment_finished"
        case rollbackFinished = "rollback_finished"
        case backupFailed = "backup_failed"
    }

    public enum Webhook: Sendable, Equatable {
        /// Written in ship.yml.
        case url(String)
        /// Read from this variable of the controller's environment (webhook URLs carry tokens).
        case environment(String)
    }

    public var webhook: Webhook
    /// Empty: every event.
    public var events: Set<Event> = []

    public init(webhook: Webhook, events: Set<Event> = []) {
        self.webhook = webhook
        self.events = events
    }

    public func wants(_ event: Event) -> Bool { events.isEmpty || events.contains(event) }
}

public struct BackupConfig: Sendable {
    public enum Store: Sendable, Equatable {
        /// An absolute local directory.
        case local(String)
        case s3(bucket: String, prefix: String)
    }

    public struct S3Settings: Sendable, Equatable {
        public var endpoint: String?
        public var region: String
    }

    /// Where a dump runs.
    public typealias Site = Shipper.Site

    public enum Engine: String, Sendable, CaseIterable {
        case mysql
        case postgres
        case command
    }

    public struct Database: Sendable, Equatable {
        public var site: Site
        public var engine: Engine
        public var name: String?
        public var user: String?
        public var address: String?
        /// The name of a controller environment variable holding the password.
        public var passwordEnv: String?
        public var dumpCommand: String?
        public var restoreCommand: String?
        /// Seconds a dump may take before it is stopped (and nothing stored); nil: the default.
        public var timeout: Int?

        /// A dump blocked on a lock is stopped after this long unless `timeout` says otherwise.
        public static let defaultTimeout = 21_600
    }

    public struct Assets: Sendable, Equatable {
        public var site: Site
        /// Relative to deploy_to.
        public var dirs: [String]
        /// Seconds the archive may take; nil: `Database.defaultTimeout`.
        public var timeout: Int? = nil
    }

    /// Where a backup key is read from: never ship.yml itself.
    public enum KeySource: Sendable, Equatable {
        case environment(String)
        case file(String)
    }

    /// `encryption:`: new backups are sealed with `key`; `previous` keys still open older ones.
    public struct Encryption: Sendable, Equatable {
        public var key: KeySource
        public var previous: [KeySource] = []
    }

    /// Age-based retention on top of `keep` (the newest N): the newest backup of each of the
    /// last N days, ISO weeks and months that have one, as restic's `forget --keep-daily` does.
    public struct Retention: Sendable, Equatable {
        public var keep: Int
        public var daily: Int = 0
        public var weekly: Int = 0
        public var monthly: Int = 0
    }

    public var store: Store
    public var keep: Int
    public var s3: S3Settings?
    public var beforeMigrate: Bool
    public var db: Database?
    public var assets: Assets?
    public var encryption: Encryption? = nil
    public var keepDaily = 0
    public var keepWeekly = 0
    public var keepMonthly = 0

    public var retention: Retention { Retention(keep: keep, daily: keepDaily, weekly: keepWeekly, monthly: keepMonthly) }
}

/// `artifacts:` of an environment: the S3-compatible store a deployment publishes its bundle to
/// once (keyed by its SHA-256), for every host to fetch with a short-lived presigned link, so
/// the controller sends hosts only control traffic (docs/fleets.md).
public struct ArtifactsConfig: Sendable, Equatable {
    public var bucket: String
    /// Keys go below it (no leading or trailing slash; may be empty).
    public var prefix: String
    public var region: String
    /// An S3-compatible endpoint (MinIO, moto); nil: AWS's for the region.
    public var endpoint: String?
    /// Seconds a host's download link is valid (it is made right before that host fetches).
    public var linkLifetime: Int
    /// Hosts fetch with their own credentials (an instance profile), not a presigned link.
    public var hostCredentials: Bool

    public init(bucket: String, prefix: String, region: String, endpoint: String?, linkLifetime: Int = 600, hostCredentials: Bool = false) {
        self.bucket = bucket
        self.prefix = prefix
        self.region = region
        self.endpoint = endpoint
        self.linkLifetime = linkLifetime
        self.hostCredentials = hostCredentials
    }
}
