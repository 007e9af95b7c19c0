import Foundation

/// Backups in S3-compatible object storage under `s3://bucket/prefix/<app>/<environment>/`. A
/// backup is taken into a private local staging directory first (compressed, encrypted when a key
/// is given, hashed, complete), then uploaded: the data object, and only after it the manifest
/// object, so a listed backup is always whole. Retention deletes old manifests before their data,
/// and only after the new backup is up. Unscoped backups right under the prefix (from before
/// stores were scoped) are listed with every environment's and never pruned.
public struct S3BackupStore: BackupStore {
    let client: S3Client
    /// The configured prefix (unscoped backups) and the scope's.
    let rootPrefix: String
    let prefix: String
    let scope: BackupScope?

    public init(bucket: String, prefix: String, scope: BackupScope?, settings: BackupConfig.S3Settings?,
                environment: [String: String]) throws(ShipError) {
        guard let accessKey = environment["AWS_ACCESS_KEY_ID"], !accessKey.isEmpty,
              let secretKey = environment["AWS_SECRET_ACCESS_KEY"], !secretKey.isEmpty else {
            throw ShipError.usage("the backup store s3://\(bucket) needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
                                  hint: "export them where ship runs (in CI, from secrets); AWS_SESSION_TOKEN too for temporary credentials")
        }
        let region = settings?.region ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        let endpoint = settings?.endpoint ?? "https://s3.\(region).amazonaws.com"
        client = S3Client(endpoint: endpoint, bucket: bucket, region: region, accessKey: accessKey, secretKey: secretKey,
                          sessionToken: environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 })
        rootPrefix = prefix
        self.scope = scope
        self.prefix = [prefix, scope?.path ?? ""].filter { !$0.isEmpty }.joined(separator: "/")
    }

    public var location: String { "s3://\(client.bucket)" + (prefix.isEmpty ? "" : "/\(prefix)") }

    func key(_ name: String, under base: String? = nil) -> String {
        let base = base ?? prefix
        return base.isEmpty ? name : base + "/" + name
    }

    /// The prefix a listed backup's objects are under.
    func base(of manifest: BackupManifest) -> String {
        manifest.unscoped && scope != nil ? rootPrefix : prefix
    }

    public func store(_ draft: BackupDraft, produce: (BackupSink) async throws(ShipError) -> Void) async throws(ShipError) -> BackupManifest {
        let staging = try Self.stagingDirectory()
        defer { Self.removeStaging(staging) }
        var local = draft
        local.retention = BackupConfig.Retention(keep: Int.max)
        let manifest = try await LocalBackupStore(directory: staging).store(
            local, id: BackupManifest.newID(kind: draft.kind, environment: scope?.environment, now: draft.now), produce: produce)
        var scoped = manifest
        scoped.app = scope?.app
        scoped.environment = scope?.environment
        try client.upload(key: key(scoped.file), file: staging + "/" + scoped.file)
        do {
            try update(scoped)
        } catch {
            try? client.deleteObject(key: key(scoped.file))
            throw error
        }
        try await prune(kind: draft.kind, rules: draft.retention)
        return scoped
    }

    public func update(_ manifest: BackupManifest) throws(ShipError) {
        let data: Data
        do {
            data = try JSONEncoder.sorted.encode(manifest)
        } catch {
            throw ShipError("cannot encode the manifest of \(manifest.id): \(error)")
        }
        try client.putObject(key: key("\(manifest.id).json", under: base(of: manifest)), data: data)
    }

    public func list() async throws(ShipError) -> [BackupManifest] {
        let own = try manifests(under: prefix).filter { scope == nil || ($0.environment == scope?.environment && $0.app == scope?.app) }
        let unscoped = scope == nil ? [] : try manifests(under: rootPrefix).filter(\.unscoped)
        return own + unscoped
    }

    /// The manifests right under `base` (not in deeper prefixes), of complete backups, newest first.
    func manifests(under base: String) throws(ShipError) -> [BackupManifest] {
        let objects = try client.list(prefix: base.isEmpty ? "" : base + "/", delimiter: "/")
        var manifests: [BackupManifest] = []
        for (name, _) in objects where name.hasSuffix(".json") {
            guard let data = try? client.getObject(key: name),
                  let manifest = try? JSONDecoder().decode(BackupManifest.self, from: data), // not ours: skipped
                  objects[key(manifest.file, under: base)] == manifest.bytes else { continue }
            manifests.append(manifest)
        }
        return manifests.sorted { ($0.created, $0.id) > ($1.created, $1.id) }
    }

    public func withVerifiedFile<T>(_ manifest: BackupManifest, _ body: (String) async throws(ShipError) -> T) async throws(ShipError) -> T {
        let staging = try Self.stagingDirectory()
        defer { Self.removeStaging(staging) }
        let path = staging + "/" + manifest.file
        try client.download(key: key(manifest.file, under: base(of: manifest)), to: path)
        try manifest.verify(path)
        return try await body(path)
    }

    func prune(kind: BackupKind, rules: BackupConfig.Retention) async throws(ShipError) {
        for old in BackupRetention.expired(try await list(), kind: kind, rules: rules, scope: scope) {
            try client.deleteObject(key: key("\(old.id).json"))   // out of the list first, then the data
            try client.deleteObject(key: key(old.file))
        }
    }

    /// A private directory for one backup or download; those of killed runs (their names carry
    /// the process, Leftovers) are removed first.
    static func stagingDirectory() throws(ShipError) -> String {
        let temporary = NSTemporaryDirectory()
        Leftovers.removeAbandoned(in: temporary, prefix: "ship-backup~")
        var template = Array((temporary + "/ship-backup" + Leftovers.tag + "-XXXXXX").utf8CString)
        guard let created = mkdtemp(&template) else {
            throw ShipError("cannot create a staging directory: \(String(cString: strerror(errno)))",
                            hint: "set TMPDIR to a directory with room for one backup")
        }
        let path = String(cString: created)
        ScratchFiles.register(path)
        return path
    }

    static func removeStaging(_ path: String) {
        try? FileManager.default.removeItem(atPath: path) // private scratch space
        ScratchFiles.unregister(path)
    }
}
