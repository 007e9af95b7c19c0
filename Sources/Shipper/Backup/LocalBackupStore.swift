import Crypto
import Foundation

public enum BackupKind: String, Codable, Sendable, CaseIterable {
    case db
    case assets

    var fileExtension: String { self == .db ? "dump.gz" : "tar.gz" }
}

/// What is known of one backup; stored as `<id>.json` beside `<id>.<ext>`.
public struct BackupManifest: Codable, Sendable, Equatable {
    public var id: String
    public var kind: BackupKind
    /// `mysql`, `postgres`, `command`, or nil for assets.
    public var engine: String?
    /// Size of the compressed file.
    public var bytes: Int64
    /// SHA-256 of the compressed file, hex.
    public var sha256: String
    /// ISO 8601, UTC.
    public var created: String
    public var host: String
    /// The revision deployed when the backup was taken, when known.
    public var revision: String?
    /// The backup file's name in the store.
    public var file: String
}

/// Backups in a local directory. A backup is compressed into a temporary file that is fsynced
/// and renamed only when the producer succeeded, then its manifest is written the same way;
/// files are 0600 in directories of 0700 whatever the umask. Retention removes the oldest of a
/// kind only after a new one is complete, so a failed backup never costs a good one.
public struct LocalBackupStore: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// Receives the uncompressed backup stream.
    public final class Sink {
        let writer: ParallelGzipWriter
        private var pending: [UInt8] = []

        init(writer: ParallelGzipWriter) {
            self.writer = writer
            pending.reserveCapacity(ParallelGzipWriter.blockSize)
        }

        public func write(_ data: Data) throws(ShipError) {
            var offset = data.startIndex
            while offset < data.endIndex {
                let take = min(ParallelGzipWriter.blockSize - pending.count, data.endIndex - offset)
                pending.append(contentsOf: data[offset..<(offset + take)])
                offset += take
                if pending.count == ParallelGzipWriter.blockSize {
                    try writer.write(pending)
                    pending.removeAll(keepingCapacity: true)
                }
            }
        }

        func finish() throws(ShipError) -> String {
            if !pending.isEmpty { try writer.write(pending) }
            return try writer.finish()
        }
    }

    /// Takes a backup: `produce` writes the stream into the sink and throws when the dump failed
    /// (a non-zero exit, a missing completion trailer). Then prunes the kind to `keep`.
    public func store(kind: BackupKind, engine: String?, host: String, revision: String?, keep: Int,
                      now: Date = Date(), produce: (Sink) throws(ShipError) -> Void) throws(ShipError) -> BackupManifest {
        try makeDirectory()
        let id = "\(kind.rawValue)-\(Self.stamp(now))-\(String(UInt16.random(in: 0...UInt16.max), radix: 16).leftPadded(to: 4))"
        let file = "\(id).\(kind.fileExtension)"
        let path = directory + "/" + file
        let temporary = directory + "/." + file + ".partial"
        let writer = try ParallelGzipWriter(creating: temporary, mode: 0o600)
        let sink = Sink(writer: writer)
        let sha256: String
        do {
            try produce(sink)
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
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ShipError("cannot read \(path)") }
        defer { try? handle.close() } // read-only
        var hasher = SHA256()
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        let actual = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        guard actual == manifest.sha256 else {
            throw ShipError("backup \(id) is damaged: SHA-256 \(actual), the manifest says \(manifest.sha256); nothing was restored")
        }
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

    static func stamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: date)
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return encoder
    }
}
