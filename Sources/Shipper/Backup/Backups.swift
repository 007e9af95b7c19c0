import Foundation
import Hooks

/// `ship backup` and `ship restore` for one environment (CONTRACT.md section 6): dumps run on
/// the configured host through the agent (or on this machine for `local`) and stream back over
/// ssh into the store, compressed and hashed on the way.
public struct Backups: Sendable {
    public let config: ShipConfig
    public let environment: Environment
    public let settings: BackupConfig
    /// The environment's own store: `<store>/<app>/<environment>/`.
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
        store = try Self.store(settings, scope: BackupScope(app: config.app, environment: environment.name), environment: controllerEnvironment)
    }

    /// The environment's store alone (listing needs no host and no agent).
    public static func store(config: ShipConfig, environment: Environment,
                             controllerEnvironment: [String: String] = ProcessInfo.processInfo.environment) throws(ShipError) -> any BackupStore {
        guard let settings = environment.backup else { throw noSection(config: config, environment: environment) }
        return try store(settings, scope: BackupScope(app: config.app, environment: environment.name), environment: controllerEnvironment)
    }

    /// Another environment's store, for `restore --from ENV`: its own backup settings if it has
    /// some, else this environment's store with the other environment's scope.
    public func store(of other: String) throws(ShipError) -> any BackupStore {
        let settings = config.environments.first { $0.name == other }?.backup ?? self.settings
        return try Self.store(settings, scope: BackupScope(app: config.app, environment: other), environment: controllerEnvironment)
    }

    static func noSection(config: ShipConfig, environment: Environment) -> ShipError {
        ShipError.usage("environment '\(environment.name)' has no backup section in \(config.file)",
                        hint: "add environments.\(environment.name).backup (store, db, assets); see docs/backups.md")
    }

    static func store(_ settings: BackupConfig, scope: BackupScope, environment: [String: String]) throws(ShipError) -> any BackupStore {
        switch settings.store {
        case .local(let directory):
            return LocalBackupStore(root: directory, scope: scope)
        case .s3(let bucket, let prefix):
            return try S3BackupStore(bucket: bucket, prefix: prefix, scope: scope, settings: settings.s3, environment: environment)
        }
    }

    /// The key new backups are sealed with; nil without `encryption:`. A configured key that is
    /// missing or malformed is an error, before anything is dumped.
    public func sealingKey() throws(ShipError) -> BackupKey? {
        guard let encryption = settings.encryption else { return nil }
        return try BackupKey.load(encryption.key, environment: controllerEnvironment)
    }

    /// The keys that open this backup, the one it was sealed with first; an error (before anything
    /// is touched) when it is encrypted and none of the configured keys is its key.
    /// For a backup of another environment (`--from`), that environment's keys count too.
    public func openingKeys(for manifest: BackupManifest) throws(ShipError) -> [BackupKey] {
        guard let fingerprint = manifest.encryptedWith else { return [] }
        var sources: [BackupConfig.KeySource] = []
        for settings in [settings, manifest.environment.flatMap { owner in config.environments.first { $0.name == owner }?.backup }] {
            if let encryption = settings?.encryption { sources += [encryption.key] + encryption.previous }
        }
        guard !sources.isEmpty else {
            throw ShipError.usage("\(manifest.id) is encrypted (key \(fingerprint)) and \(environment.name) has no backup.encryption",
                                  hint: "configure backup.encryption with its key (key_env or key_file); see docs/backups.md")
        }
        var keys: [BackupKey] = []
        for source in sources where !keys.contains(where: { $0.origin == BackupKey.origin(of: source) }) {
            keys.append(try BackupKey.load(source, environment: controllerEnvironment))
        }
        guard let match = keys.firstIndex(where: { $0.fingerprint == fingerprint }) else {
            throw ShipError.usage("\(manifest.id) was encrypted with key \(fingerprint); the configured keys are "
                                  + keys.map { "\($0.fingerprint) (\($0.origin))" }.joined(separator: ", "),
                                  hint: "add the old key under backup.encryption.previous (key rotation, docs/backups.md)")
        }
        keys.insert(keys.remove(at: match), at: 0)
        return keys
    }

    // MARK: - Backups

    /// The revision a backup's manifest records: what `current` holds.
    public enum DeployedRevision: Sendable {
        /// Ask the dump's host (else the environment's first host).
        case ask
        /// Already known, e.g. from a deployment's preflight (nil: nothing deployed yet).
        case known(String?)
    }

    /// Dumps the database into the store. `purpose` and `deploymentId` mark a backup taken
    /// before a migrate or a restore.
    public func backupDatabase(deployed: DeployedRevision = .ask, purpose: String? = nil,
                               deploymentId: String? = nil) async throws(ShipError) -> BackupManifest {
        let database = try databaseSettings()
        let target = try databaseTarget(database)
        let key = try sealingKey()
        let client = try await client(for: database.site)
        let revision: String?
        switch deployed {
        case .ask: revision = await deployedRevision(client)
        case .known(let known): revision = known
        }
        var request = client.request(.backupDatabase)
        request.database = target
        var draft = draft(.db, engine: database.engine.rawValue, site: database.site, revision: revision, key: key)
        draft.purpose = purpose
        draft.deploymentId = deploymentId
        // A restore's safety backup prunes nothing: the backup about to be restored may be the
        // oldest one `keep` allows. The next backup applies retention.
        if purpose == "before_restore" { draft.retention = BackupConfig.Retention(keep: Int.max) }
        return try await store.store(draft) { sink throws(ShipError) in
            try await stream(request, client: client, into: sink, what: "the database dump")
        }
    }

    /// Archives the asset directories into the store.
    public func backupAssets() async throws(ShipError) -> BackupManifest {
        let assets = try assetSettings()
        let key = try sealingKey()
        let client = try await client(for: assets.site)
        let revision = await deployedRevision(client)
        var request = client.request(.backupAssets)
        request.assetDirectories = assets.dirs
        request.timeout = assets.timeout ?? BackupConfig.Database.defaultTimeout
        return try await store.store(draft(.assets, engine: nil, site: assets.site, revision: revision, key: key)) { sink throws(ShipError) in
            try await stream(request, client: client, into: sink, what: "the assets archive")
        }
    }

    func draft(_ kind: BackupKind, engine: String?, site: BackupConfig.Site, revision: String?, key: BackupKey?) -> BackupDraft {
        var draft = BackupDraft(kind: kind, engine: engine, host: site.description, revision: revision)
        draft.key = key
        draft.retention = settings.retention
        return draft
    }

    public func list() async throws(ShipError) -> [BackupManifest] {
        try await store.list()
    }

    /// Finds a backup to restore: this environment's (or an unscoped one); another environment's
    /// only when `from` names it.
    public func manifest(id: String, from other: String? = nil) async throws(ShipError) -> (BackupManifest, any BackupStore) {
        let source = try other.map { name throws(ShipError) in try store(of: name) } ?? store
        if let manifest = try await source.list().first(where: { $0.id == id }) { return (manifest, source) }
        if other == nil, let owner = BackupManifest.environment(ofID: id), owner != environment.name {
            throw ShipError.usage("\(id) is a backup of environment \(owner), not of \(environment.name)",
                                  hint: "to load \(owner)'s backup into \(environment.name) on purpose, add --from \(owner)")
        }
        throw ShipError.usage("no backup \(id) in \(source.location)", hint: "`ship backup list \(other ?? environment.name)` shows the backups")
    }

    /// Restores a backup after checking its key and its SHA-256; nothing is touched when either fails.
    public func restore(kind: BackupKind, _ manifest: BackupManifest, from source: (any BackupStore)? = nil) async throws(ShipError) {
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
        try check(manifest, isKind: kind, engine: request.database?.engine)
        let keys = try openingKeys(for: manifest)
        let client = try await client(for: site)
        try await (source ?? store).withVerifiedFile(manifest) { path throws(ShipError) in
            let stream = RestoreStream(path: path, keys: keys)
            let result: AgentResult
            do throws(HostError) {
                result = try await client.call(request, source: stream)
            } catch {
                throw Self.shipError(error)
            }
            if let failure = stream.failure { throw ShipError("\(site): restore of \(id) stopped: \(failure)") }
            guard result.ok else {
                throw ShipError("\(site): restore of \(id) failed: \(result.message ?? "no reason given")")
            }
        }
    }

    /// Everything a restore needs that can be checked without a host: the backup's kind and
    /// engine, its key, the database password.
    public func checkRestorable(kind: BackupKind, _ manifest: BackupManifest) throws(ShipError) {
        var engine: String?
        switch kind {
        case .db:
            let database = try databaseSettings()
            engine = try databaseTarget(database).engine
        case .assets:
            _ = try assetSettings()
        }
        try check(manifest, isKind: kind, engine: engine)
        _ = try openingKeys(for: manifest)
    }

    func check(_ manifest: BackupManifest, isKind kind: BackupKind, engine: String?) throws(ShipError) {
        guard manifest.kind == kind else {
            throw ShipError.usage("\(manifest.id) is \(manifest.kind == .db ? "a database" : "an assets") backup",
                                  hint: "restore it with `ship restore \(manifest.kind.rawValue) \(environment.name) \(manifest.id) --yes`")
        }
        if kind == .db, let recorded = manifest.engine, let engine, recorded != engine {
            throw ShipError.usage("\(manifest.id) is a \(recorded) dump; the environment's database engine is \(engine)",
                                  hint: "restore it by hand, or with a matching backup.db.engine")
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
        do throws(HostError) {
            return try await AgentClient.ready(on: site, environment: environment, agents: agents, makeTransport: makeTransport)
        } catch {
            throw Self.shipError(error)
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
