import Crypto
import Foundation

/// Backups in a local directory. A backup is compressed into a temporary file that is fsynced
/// and renamed only when the producer succeeded, then its manifest is written the same way;
/// files are 0600 in directories of 0700 whatever the umask. Retention removes the oldest of a
/// kind only after a new one is complete, so a failed backup never costs a good one.
public struct LocalBackupStore: BackupStore {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    public var location: String { directory }

    /// Takes a backup: `produce` writes the stream into the sink and throws when the dump failed
    /// (a non-zero exit, a missing completion trailer). Then prunes the kind to `keep`.
    public func store(kind: BackupKind, engine: String?, host: String, revision: String?, keep: Int, now: Date = Date(),
                      produce: (BackupSink) async throws(ShipError) -> Void) async throws(ShipError) -> BackupManifest {
        try await store(kind: kind, engine: engine, host: host, revision: revision, keep: keep, now: now,
                        id: BackupManifest.newID(kind: kind, now: now), produce: produce)
    }

    func store(kind: BackupKind, engine: String?, host: String, revision: String?, keep: Int, now: Date, id: String,
               produce: (BackupSink) async throws(ShipError) -> Void) async throws(ShipError) -> BackupManifest {
        try makeDirectory()
        let file = "\(id).\(kind.fileExtension)"
        let path = directory + "/" + file
        // Partial files of killed runs go first; this one's names its process.
        Leftovers.removeAbandoned(in: directory, prefix: ".", suffix: ".partial", untaggedAge: 86_400)
        let temporary = directory + "/." + file + Leftovers.tag + ".partial"
        let writer = try ParallelGzipWriter(creating: temporary, mode: 0o600)
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
        let manifest = BackupManifest(id: id, kind: kind, engine: engine, bytes: writer.bytesWritten, sha256: sha256,
                                      created: Event.timestamp(now), host: host, revision: revision, file: file)
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw ShipError("cannot store the backup in \(directory): \(String(cString: strerror(errno)))")
        }
        do {
            let data = try JSONEncoder.sorted.encode(manifest)
            try writeAtomically(data, to: directory + "/\(id).json")
        } catch let error as ShipError {
            unlink(path)
            throw error
        } catch {
            unlink(path)
            throw ShipError("cannot write the manifest of \(id): \(error)")
        }
        fsyncDirectory()
        try prune(kind: kind, keep: keep)
        return manifest
    }

    public func withVerifiedFile<T>(_ manifest: BackupManifest, _ body: (String) async throws(ShipError) -> T) async throws(ShipError) -> T {
        let path = directory + "/" + manifest.file
        try manifest.verify(path)
        return try await body(path)
    }

    /// Complete backups (manifest and file of the recorded size), newest first.
    public func list() throws(ShipError) -> [BackupManifest] {
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
        let path = directory + "/" + manifest.file
        try manifest.verify(path)
        return (manifest, path)
    }

    func prune(kind: BackupKind, keep: Int) throws(ShipError) {
        let ofKind = try list().filter { $0.kind == kind }
        for old in ofKind.dropFirst(max(1, keep)) {
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
