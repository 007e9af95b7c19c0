import Foundation

/// Backups in S3-compatible object storage under `s3://bucket/prefix`. A backup is taken into a
/// private local staging directory first (compressed, hashed, complete), then uploaded: the data
/// object, and only after it the manifest object, so a listed backup is always whole. Retention
/// deletes old manifests before their data, and only after the new backup is up.
public struct S3BackupStore: BackupStore {
    let client: S3Client
    let prefix: String

    public init(bucket: String, prefix: String, settings: BackupConfig.S3Settings?, environment: [String: String]) throws(ShipError) {
        guard let accessKey = environment["AWS_ACCESS_KEY_ID"], !accessKey.isEmpty,
              let secretKey = environment["AWS_SECRET_ACCESS_KEY"], !secretKey.isEmpty else {
            throw ShipError.usage("the backup store s3://\(bucket) needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
                                  hint: "export them where ship runs (in CI, from secrets); AWS_SESSION_TOKEN too for temporary credentials")
        }
        let region = settings?.region ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        let endpoint = settings?.endpoint ?? "https://s3.\(region).amazonaws.com"
        client = S3Client(endpoint: endpoint, bucket: bucket, region: region, accessKey: accessKey, secretKey: secretKey,
                          sessionToken: environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 })
        self.prefix = prefix
    }

    public var location: String { "s3://\(client.bucket)" + (prefix.isEmpty ? "" : "/\(prefix)") }

    func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "/" + name }

    public func store(kind: BackupKind, engine: String?, host: String, revision: String?, keep: Int, now: Date,
                      produce: (BackupSink) async throws(ShipError) -> Void) async throws(ShipError) -> BackupManifest {
        let staging = try Self.stagingDirectory()
        defer { Self.removeStaging(staging) }
        let local = LocalBackupStore(directory: staging)
        let manifest = try await local.store(kind: kind, engine: engine, host: host, revision: revision, keep: Int.max,
                                             now: now, produce: produce)
        try client.upload(key: key(manifest.file), file: staging + "/" + manifest.file)
        let data: Data
        do {
            data = try JSONEncoder.sorted.encode(manifest)
        } catch {
            throw ShipError("cannot encode the manifest of \(manifest.id): \(error)")
        }
        do {
            try client.putObject(key: key("\(manifest.id).json"), data: data)
        } catch {
            try? client.deleteObject(key: key(manifest.file))
            throw error
        }
        try await prune(kind: kind, keep: keep)
        return manifest
    }

    public func list() async throws(ShipError) -> [BackupManifest] {
        let objects = try client.list(prefix: prefix.isEmpty ? "" : prefix + "/")
        var manifests: [BackupManifest] = []
        for (name, _) in objects where name.hasSuffix(".json") && !name.dropFirst(prefix.isEmpty ? 0 : prefix.count + 1).contains("/") {
            guard let data = try? client.getObject(key: name),
                  let manifest = try? JSONDecoder().decode(BackupManifest.self, from: data), // not ours: skipped
                  objects[key(manifest.file)] == manifest.bytes else { continue }
            manifests.append(manifest)
        }
        return manifests.sorted { ($0.created, $0.id) > ($1.created, $1.id) }
    }

    public func withVerifiedFile<T>(_ manifest: BackupManifest, _ body: (String) async throws(ShipError) -> T) async throws(ShipError) -> T {
        let staging = try Self.stagingDirectory()
        defer { Self.removeStaging(staging) }
        let path = staging + "/" + manifest.file
        try client.download(key: key(manifest.file), to: path)
        try manifest.verify(path)
        return try await body(path)
    }

    func prune(kind: BackupKind, keep: Int) async throws(ShipError) {
        for old in try await list().filter({ $0.kind == kind }).dropFirst(max(1, keep)) {
            try client.deleteObject(key: key("\(old.id).json"))   // out of the list first, then the data
            try client.deleteObject(key: key(old.file))
        }
    }

    static func stagingDirectory() throws(ShipError) -> String {
        var template = Array((NSTemporaryDirectory() + "/ship-backup-XXXXXX").utf8CString)
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
