/// What an artifact store says of an environment (docs/fleets.md): `envs/<app>/<env>/current.json`
/// holds the release a deployment made live on every host, and `releases/<release>.json` the same
/// record of each release deployed. The controller writes them; `ship-agent pull` reads them on a
/// new instance and installs the release by itself, so the record carries everything the agent
/// is otherwise sent by the controller (`install`), but no secret.
public struct EnvironmentRecord: Codable, Sendable, Equatable {
    public var app: String
    public var environment: String
    public var release: String
    public var revision: String
    public var sha256: String
    /// The bundle's key in the store.
    public var bundle: String
    public var deploymentId: String
    public var holder: String
    public var time: String
    /// How a host installs this release; nil in records of ship 0.3.0 before `ship-agent pull`.
    public var install: InstallSpec?

    public init(app: String, environment: String, release: String, revision: String, sha256: String, bundle: String,
                deploymentId: String, holder: String, time: String, install: InstallSpec? = nil) {
        self.app = app
        self.environment = environment
        self.release = release
        self.revision = revision
        self.sha256 = sha256
        self.bundle = bundle
        self.deploymentId = deploymentId
        self.holder = holder
        self.time = time
        self.install = install
    }

    enum CodingKeys: String, CodingKey {
        case app, environment, release, revision, sha256, bundle, holder, time, install
        case deploymentId = "deployment_id"
    }
}

/// What the controller gives every host of a deployment, resolved from ship.yml and the revision's
/// appspec (the agent reads no YAML): the agent's `prepare`, `switch`, `run-hooks` and `prune`
/// take it from here in `ship-agent pull`.
public struct InstallSpec: Codable, Sendable, Equatable {
    public var deployTo: String
    public var appspec: Appspec
    public var shared: SharedSpec
    /// CodeDeploy `files` destinations, symlinks into `current`.
    public var links: [DestinationLink]?
    /// `--file-exists-behavior` of the deployment, over the appspec's.
    public var fileExistsBehavior: String?
    /// The hook environment that is the same on every host: the environment's `env`, ship's and
    /// CodeDeploy's variables of the app and environment. Never a secret.
    public var environment: [String: String]
    /// The secrets' names (`secrets:` of ship.yml): `ship-agent pull` takes their values from its
    /// own environment, and masks them in the output and the hook logs.
    public var secretNames: [String]?
    public var keepReleases: Int
    /// The users hooks run as, checked before anything changes.
    public var runasUsers: [String]?

    public init(deployTo: String, appspec: Appspec, shared: SharedSpec, links: [DestinationLink]? = nil, fileExistsBehavior: String? = nil,
                environment: [String: String], secretNames: [String]? = nil, keepReleases: Int, runasUsers: [String]? = nil) {
        self.deployTo = deployTo
        self.appspec = appspec
        self.shared = shared
        self.links = links
        self.fileExistsBehavior = fileExistsBehavior
        self.environment = environment
        self.secretNames = secretNames
        self.keepReleases = keepReleases
        self.runasUsers = runasUsers
    }

    enum CodingKeys: String, CodingKey {
        case appspec, shared, links, environment
        case deployTo = "deploy_to"
        case fileExistsBehavior = "file_exists_behavior"
        case secretNames = "secret_names"
        case keepReleases = "keep_releases"
        case runasUsers = "runas_users"
    }
}
