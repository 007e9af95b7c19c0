import Crypto
import Foundation

/// Backups in a local directory, `<root>/<app>/<environment>/`. A backup is compressed (and
/// encrypted, when a key is given) into a temporary file that is fsynced and renamed only when the
/// producer succeeded, then its manifest is written the same way; files are 0600 in directories
/// of 0700 whatever the umask. Retention removes old backups of the scope only after a new one is
/// complete, so a failed backup never costs a good one; unscoped backups at the root (from before
/// stores were scoped) are listed with every environment's and never pruned.
public struct LocalBackupStore: BackupStore {
    /// Where the scope's backups are.
    public let directory: String
    /// The store as configured; unscoped backups live right in it.
    public let root: String
    public let scope: BackupScope?

    public init(root: String, scope: BackupScope?) {
        self.root = root
        self.scope = scope
        directory = scope.map { root + "/" + $0.path } ?? root
    }

    /// An unscoped store in `directory` (staging, tests).
    public init(directory: String) {
        self.init(root: directory, scope: nil)
    }

    public var location: String { directory }

    public func store(_ draft: BackupDraft, produce: (BackupSink) async throws(ShipError) -> Void) async throws(ShipError) -> BackupManifest {
        try await store(draft, id: BackupManifest.newID(kind: draft.kind, environment: scope?.environment, now: draft.now), produce: produce)
    }

    func store(_ draft: BackupDraft, id: String, produce: (BackupSink) async throws(ShipError) -> Void) async throws(ShipError) -> BackupManifest {
        try makeDirectory()
        let file = "\(id).\(draft.kind.fileExtension)" + (draft.key == nil ? "" : ".enc")
        let path = directory + "/" + file
        // Partial files of killed runs go first; this one's names its process.
        Leftovers.removeAbandoned(in: directory, prefix: ".", suffix: ".partial", untaggedAge: 86_400)
        let temporary = directory + "/." + file + Leftovers.tag + ".partial"
        let writer = try ParallelGzipWriter(creating: temporary, mode: 0o600, key: draft.key)
        ScratchFiles.register(temporary)
        defer { ScratchFiles.unregister(temporary) }
        let sink = BackupSink(writer: writer)
        let sha256: String
        do {
            try await produce(sink)
            sha256 = try sink.finish()
        } catch {
            writer.abandon()
            unlink(temporary)
            throw error
        }
        var manifest = BackupManifest(id: id, kind: draft.kind, engine: draft.engine, bytes: writer.bytesWritten, sha256: sha256,
                                      created: Event.timestamp(draft.now), host: draft.host, revision: draft.revision, file: file)
        manifest.app = scope?.app
        manifest.environment = scope?.environment
        manifest.encryptedWith = draft.key?.fingerprint
        manifest.purpose = draft.purpose
        manifest.deploymentId = draft.deploymentId
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw ShipError("cannot store the backup in \(directory): \(String(cString: strerror(errno)))")
        }
        do {
            try writeManifest(manifest)
        } catch {
            unlink(path)
            throw error
        }
        fsyncDirectory()
        try prune(kind: draft.kind, rules: draft.retention)
        return manifest
    }

    public func update(_ manifest: BackupManifest) throws(ShipError) {
        try writeManifest(manifest, in: folder(of: manifest))
    }

    func writeManifest(_ manifest: BackupManifest, in folder: String? = nil) throws(ShipError) {
        let data: Data
        do {
            data = try JSONEncoder.sorted.encode(manifest)
        } catch {
            throw ShipError("cannot write the manifest of \(manifest.id): \(error)")
        }
        try writeAtomically(data, to: (folder ?? directory) + "/\(manifest.id).json")
    }

    /// Where a listed backup's files are: the scope's directory, or the root for an unscoped one.
    func folder(of manifest: BackupManifest) -> String {
        manifest.unscoped && scope != nil ? root : directory
    }

    public func withVerifiedFile<T>(_ manifest: BackupManifest, _ body: (String) async throws(ShipError) -> T) async throws(ShipError) -> T {
        let path = folder(of: manifest) + "/" + manifest.file
        try manifest.verify(path)
        return try await body(path)
    }

    /// The scope's complete backups (manifest and file of the recorded size), newest first, then
    /// the unscoped ones at the root.
    public func list() throws(ShipError) -> [BackupManifest] {
        let own = try Self.manifests(in: directory).filter { scope == nil || ($0.environment == scope?.environment && $0.app == scope?.app) }
        let unscoped = scope == nil ? [] : try Self.manifests(in: root).filter(\.unscoped)
        return own + unscoped
    }

    static func manifests(in directory: String) throws(ShipError) -> [BackupManifest] {
        guard FileManager.default.fileExists(atPath: directory) else { return [] }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw ShipError("cannot read \(directory): \(error.localizedDescription)")
        }
        var manifests: [BackupManifest] = []
        for name in names where name.hasSuffix(".json") && !name.hasPrefix(".") {
            guard let data = FileManager.default.contents(atPath: directory + "/" + name),
                  let manifest = try? JSONDecoder().decode(BackupManifest.self, from: data), // not a manifest of ours: skipped
                  let size = (try? FileManager.default.attributesOfItem(atPath: directory + "/" + manifest.file))?[.size] as? Int64,
                  size == manifest.bytes else { continue }
            manifests.append(manifest)
        }
        return manifests.sorted { ($0.created, $0.id) > ($1.created, $1.id) }
    }

    /// The backup's file, once its SHA-256 matches the manifest.
    public func verifiedFile(id: String) throws(ShipError) -> (BackupManifest, String) {
        guard let manifest = try list().first(where: { $0.id == id }) else {
            throw ShipError.usage("no backup \(id) in \(directory)", hint: "`ship backup list` shows the backups")
        }
        let path = folder(of: manifest) + "/" + manifest.file
        try manifest.verify(path)
        return (manifest, path)
    }

    func prune(kind: BackupKind, rules: BackupConfig.Retention) throws(ShipError) {
        for old in BackupRetention.expired(try list(), kind: kind, rules: rules, scope: scope) {
            unlink(directory + "/\(old.id).json")   // out of the list first, then the file
            unlink(directory + "/" + old.file)
        }
    }

    func makeDirectory() throws(ShipError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ShipError("cannot create the backup store \(directory): \(error.localizedDescription)")
        }
        guard chmod(directory, 0o700) == 0 else {
            throw ShipError("cannot make \(directory) private (0700): \(String(cString: strerror(errno)))")
        }
    }

    func writeAtomically(_ data: Data, to path: String) throws(ShipError) {
        let temporary = path + ".partial"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0, fchmod(fd, 0o600) == 0 else { throw ShipError("cannot write \(path): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == data.count, synced, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw ShipError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    func fsyncDirectory() {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return encoder
    }
}
