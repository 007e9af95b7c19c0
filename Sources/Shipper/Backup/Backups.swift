import Foundation
import Hooks

/// `ship backup` and `ship restore` for one environment (CONTRACT.md section 6): dumps run on
/// the configured host through the agent (or on this machine for `local`) and stream back over
/// ssh into the store, compressed and hashed on the way.
public struct Backups: Sendable {
    public let config: ShipConfig
    public let environment: Environment
    public let settings: BackupConfig
    public let store: any BackupStore
    let agents: AgentCatalog
    let makeTransport: @Sendable (Host) -> any Transport
    let controllerEnvironment: [String: String]

    public init(config: ShipConfig, environment: Environment, agents: AgentCatalog,
                controllerEnvironment: [String: String] = ProcessInfo.processInfo.environment,
                makeTransport: @escaping @Sendable (Host) -> any Transport) throws(ShipError) {
        guard let settings = environment.backup else { throw Self.noSection(config: config, environment: environment) }
        self.config = config
        self.environment = environment
        self.settings = settings
        self.agents = agents
        self.makeTransport = makeTransport
        self.controllerEnvironment = controllerEnvironment
        store = try Self.store(settings, environment: controllerEnvironment)
    }

    /// The environment's store alone (listing needs no host and no agent).
    public static func store(config: ShipConfig, environment: Environment,
                             controllerEnvironment: [String: String] = ProcessInfo.processInfo.environment) throws(ShipError) -> any BackupStore {
        guard let settings = environment.backup else { throw noSection(config: config, environment: environment) }
        return try store(settings, environment: controllerEnvironment)
    }

    static func noSection(config: ShipConfig, environment: Environment) -> ShipError {
        ShipError.usage("environment '\(environment.name)' has no backup section in \(config.file)",
                        hint: "add environments.\(environment.name).backup (store, db, assets); see docs/backups.md")
    }

    static func store(_ settings: BackupConfig, environment: [String: String]) throws(ShipError) -> any BackupStore {
        switch settings.store {
        case .local(let directory):
            return LocalBackupStore(directory: directory)
        case .s3(let bucket, let prefix):
            return try S3BackupStore(bucket: bucket, prefix: prefix, settings: settings.s3, environment: environment)
        }
    }

    // MARK: - Backups

    /// The revision a backup's manifest records: what `current` holds.
    public enum DeployedRevision: Sendable {
        /// Ask the dump's host (else the environment's first host).
        case ask
        /// Already known, e.g. from a deployment's preflight (nil: nothing deployed yet).
        case known(String?)
    }

    /// Dumps the database into the store.
    public func backupDatabase(deployed: DeployedRevision = .ask) async throws(ShipError) -> BackupManifest {
        let database = try databaseSettings()
        let target = try databaseTarget(database)
        let client = try await client(for: database.site)
        let revision: String?
        switch deployed {
        case .ask: revision = await deployedRevision(client)
        case .known(let known): revision = known
        }
        var request = client.request(.backupDatabase)
        request.database = target
        return try await store.store(kind: .db, engine: database.engine.rawValue, host: database.site.description, revision: revision,
                                     keep: settings.keep, now: Date()) { sink throws(ShipError) in
            try await stream(request, client: client, into: sink, what: "the database dump")
        }
    }

    /// Archives the asset directories into the store.
    public func backupAssets() async throws(ShipError) -> BackupManifest {
        let assets = try assetSettings()
        let client = try await client(for: assets.site)
        let revision = await deployedRevision(client)
        var request = client.request(.backupAssets)
        request.assetDirectories = assets.dirs
        return try await store.store(kind: .assets, engine: nil, host: assets.site.description, revision: revision,
                                     keep: settings.keep, now: Date()) { sink throws(ShipError) in
            try await stream(request, client: client, into: sink, what: "the assets archive")
        }
    }

    public func list() async throws(ShipError) -> [BackupManifest] {
        try await store.list()
    }

    /// Restores a backup (from `store.manifest(id:)`) after checking its SHA-256.
    public func restore(kind: BackupKind, _ manifest: BackupManifest) async throws(ShipError) {
        let id = manifest.id
        let site: BackupConfig.Site
        var request: AgentRequest
        switch kind {
        case .db:
            let database = try databaseSettings()
            site = database.site
            request = AgentRequest(operation: .restoreDatabase, deployTo: environment.deployTo)
            request.database = try databaseTarget(database)
        case .assets:
            let assets = try assetSettings()
            site = assets.site
            request = AgentRequest(operation: .restoreAssets, deployTo: environment.deployTo)
            request.assetDirectories = assets.dirs
        }
        guard manifest.kind == kind else {
            throw ShipError.usage("\(id) is \(manifest.kind == .db ? "a database" : "an assets") backup",
                                  hint: "restore it with `ship restore \(manifest.kind.rawValue) \(environment.name) \(id) --yes`")
        }
        if kind == .db, let engine = manifest.engine, engine != request.database?.engine {
            throw ShipError.usage("\(id) is a \(engine) dump; the environment's database engine is \(request.database?.engine ?? "")",
                                  hint: "restore it by hand, or with a matching backup.db.engine")
        }
        let client = try await client(for: site)
        try await store.withVerifiedFile(manifest) { path throws(ShipError) in
            let source = RestoreStream(path: path)
            let result: AgentResult
            do throws(HostError) {
                result = try await client.call(request, source: source)
            } catch {
                throw Self.shipError(error)
            }
            if let failure = source.failure { throw ShipError("\(site): restore of \(id) stopped: \(failure)") }
            guard result.ok else {
                throw ShipError("\(site): restore of \(id) failed: \(result.message ?? "no reason given")")
            }
        }
    }

    // MARK: - Parts

    func stream(_ request: AgentRequest, client: AgentClient, into sink: BackupSink, what: String) async throws(ShipError) {
        let result: AgentResult
        do {
            result = try await client.callStreaming(request) { sink.write($0) }
        } catch {
            throw Self.shipError(error)
        }
        guard result.ok else {
            throw ShipError("\(client.transport.host): \(what) failed: \(result.message ?? "no reason given"); nothing was stored")
        }
        guard let sent = result.bytes, sent == sink.bytesReceived else {
            throw ShipError("\(client.transport.host): \(what) was cut short (\(sink.bytesReceived) of \(result.bytes ?? -1) bytes); nothing was stored")
        }
    }

    func databaseSettings() throws(ShipError) -> BackupConfig.Database {
        guard let database = settings.db else {
            throw ShipError.usage("environment '\(environment.name)' has no backup.db section in \(config.file)",
                                  hint: "add backup.db (host, engine, name, user, password_env); see docs/backups.md")
        }
        return database
    }

    func assetSettings() throws(ShipError) -> BackupConfig.Assets {
        guard let assets = settings.assets else {
            throw ShipError.usage("environment '\(environment.name)' has no backup.assets section in \(config.file)",
                                  hint: "add backup.assets (host, dirs); see docs/backups.md")
        }
        return assets
    }

    /// What the agent needs, the password read from the controller's environment.
    func databaseTarget(_ database: BackupConfig.Database) throws(ShipError) -> DatabaseTarget {
        var target = DatabaseTarget(engine: database.engine.rawValue)
        target.name = database.name
        target.user = database.user
        target.address = database.address
        target.dumpCommand = database.dumpCommand
        target.restoreCommand = database.restoreCommand
        target.passwordEnv = database.passwordEnv
        target.timeout = database.timeout ?? BackupConfig.Database.defaultTimeout
        if let variable = database.passwordEnv {
            guard let password = controllerEnvironment[variable] else {
                throw ShipError.usage("\(variable) is not set: backup.db.password_env names it for the database password",
                                      hint: "export \(variable) where ship runs (in CI, from a secret)")
            }
            target.password = password
        }
        return target
    }

    /// An agent client on the site, with this ship's agent installed there.
    func client(for site: BackupConfig.Site) async throws(ShipError) -> AgentClient {
        switch site {
        case .local:
            return AgentClient(transport: LocalTransport(), deployTo: environment.deployTo, agentPath: agents.primary.path)
        case .host(let named):
            // A pool host keeps its port and name as the environment gives them.
            let host = environment.hosts.first { $0.description == named.description || $0.name == named.name } ?? named
            let client = AgentClient(transport: makeTransport(host), deployTo: environment.deployTo)
            do throws(HostError) {
                try await client.ensureAgent(agents)
            } catch {
                throw Self.shipError(error)
            }
            return client
        }
    }

    /// The revision `current` holds on the site, else on the environment's first host; nil when unknown.
    func deployedRevision(_ client: AgentClient) async -> String? {
        if let revision = try? await client.require(client.request(.state)).currentRevision { return revision }
        guard let first = environment.hosts.first, first.description != client.transport.host.description else { return nil }
        let other = AgentClient(transport: makeTransport(first), deployTo: environment.deployTo)
        // Only a host that already runs this agent is asked: reading a revision installs nothing.
        guard let probe = try? await other.probe(), let agent = try? other.agent(for: probe, in: agents),
              probe.installedAgentSHA256 == agent.sha256 else { return nil }
        return try? await other.require(other.request(.state)).currentRevision
    }

    static func shipError(_ error: HostError) -> ShipError {
        ShipError(error.description, exitCode: error.unreachable ? .preflight : .failed)
    }
}
