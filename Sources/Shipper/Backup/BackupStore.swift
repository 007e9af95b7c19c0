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

    /// `db-20261122T101500Z-3fa2`: sorts by time, unique enough for one store.
    static func newID(kind: BackupKind, now: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let suffix = String(UInt16.random(in: 0...UInt16.max), radix: 16).leftPadded(to: 4)
        return "\(kind.rawValue)-\(formatter.string(from: now))-\(suffix)"
    }

    /// Throws unless the file's SHA-256 is the recorded one.
    func verify(_ path: String) throws(ShipError) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ShipError("cannot read \(path)") }
        defer { try? handle.close() } // read-only
        var hasher = SHA256()
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        let actual = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        guard actual == sha256 else {
            throw ShipError("backup \(id) is damaged: SHA-256 \(actual), the manifest says \(sha256); nothing was restored")
        }
    }
}

/// Where backups are kept: a local directory or S3-compatible object storage. A backup becomes
/// visible (listed, restorable, counted for retention) only once it is complete and verified.
public protocol BackupStore: Sendable {
    /// The store as the user wrote it, for messages.
    var location: String { get }
    /// Takes a backup: `produce` writes the uncompressed stream into the sink and throws when the
    /// dump failed; nothing is kept then. After a new backup is complete, the kind is pruned to `keep`.
    func store(kind: BackupKind, engine: String?, host: String, revision: String?, keep: Int, now: Date,
               produce: (BackupSink) async throws(ShipError) -> Void) async throws(ShipError) -> BackupManifest
    /// Complete backups, newest first.
    func list() async throws(ShipError) -> [BackupManifest]
    /// Runs `body` with a local copy of the backup, once its SHA-256 matched the manifest.
    func withVerifiedFile<T>(_ manifest: BackupManifest, _ body: (String) async throws(ShipError) -> T) async throws(ShipError) -> T
}

extension BackupStore {
    /// The complete backup with this id.
    public func manifest(id: String) async throws(ShipError) -> BackupManifest {
        guard let manifest = try await list().first(where: { $0.id == id }) else {
            throw ShipError.usage("no backup \(id) in \(location)", hint: "`ship backup list` shows the backups")
        }
        return manifest
    }
}

/// Receives a backup's uncompressed stream, compresses it in parallel, and hashes it.
/// Written from one thread at a time (the transport's reader); a failure is kept and reported
/// when the backup is finished, and later bytes are dropped.
public final class BackupSink: @unchecked Sendable {
    let writer: ParallelGzipWriter
    private var pending: [UInt8] = []
    private(set) var failure: ShipError?
    /// Uncompressed bytes received.
    public private(set) var bytesReceived: Int64 = 0

    init(writer: ParallelGzipWriter) {
        self.writer = writer
        pending.reserveCapacity(ParallelGzipWriter.blockSize)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard failure == nil else { return }
        bytesReceived += Int64(bytes.count)
        var offset = 0
        while offset < bytes.count {
            let take = min(ParallelGzipWriter.blockSize - pending.count, bytes.count - offset)
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + take)]))
            offset += take
            if pending.count == ParallelGzipWriter.blockSize {
                do {
                    try writer.write(pending)
                } catch {
                    failure = error
                    return
                }
                pending.removeAll(keepingCapacity: true)
            }
        }
    }

    public func write(_ data: Data) {
        data.withUnsafeBytes { write($0) }
    }

    func finish() throws(ShipError) -> String {
        if let failure { throw failure }
        if !pending.isEmpty { try writer.write(pending) }
        return try writer.finish()
    }
}
