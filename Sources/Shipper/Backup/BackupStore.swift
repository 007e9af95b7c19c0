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
    /// The app and environment it belongs to; nil for backups from before stores were scoped.
    public var app: String? = nil
    public var environment: String? = nil
    /// The fingerprint of the key it is encrypted with (BackupKey); nil: not encrypted.
    public var encryptedWith: String? = nil
    /// Why it was taken besides a plain `ship backup`: `before_migrate` (a deployment's),
    /// `before_restore` (the safety backup of a restore).
    public var purpose: String? = nil
    /// The deployment a `before_migrate` backup was taken for.
    public var deploymentId: String? = nil
    /// When `ship backup verify` last found it whole (ISO 8601), and whether a test restore passed.
    public var verified: String? = nil
    public var restoreTested: Bool? = nil

    /// Taken before stores were laid out per app and environment: shown with a note, never pruned.
    public var unscoped: Bool { environment == nil }

    /// `prod-db-20261122T101500Z-3fa2`: sorts by time within an environment, names its
    /// environment (so an id never means two backups across environments), random enough for one store.
    static func newID(kind: BackupKind, environment: String? = nil, now: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let suffix = String(UInt16.random(in: 0...UInt16.max), radix: 16).leftPadded(to: 4)
        return (environment.map { $0 + "-" } ?? "") + "\(kind.rawValue)-\(formatter.string(from: now))-\(suffix)"
    }

    /// The environment an id names (`prod` of `prod-db-20261122T101500Z-3fa2`); nil for an unscoped id.
    static func environment(ofID id: String) -> String? {
        guard let match = id.firstMatch(of: /^(.+)-(db|assets)-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{4}$/) else { return nil }
        return String(match.1)
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

/// Whose backups a store holds: `<store>/<app>/<environment>/`.
public struct BackupScope: Sendable, Equatable {
    public var app: String
    public var environment: String

    public init(app: String, environment: String) {
        self.app = app
        self.environment = environment
    }

    var path: String { app + "/" + environment }
}

/// What a new backup is, before it is taken.
public struct BackupDraft: Sendable {
    public var kind: BackupKind
    public var engine: String?
    public var host: String
    public var revision: String?
    public var purpose: String? = nil
    public var deploymentId: String? = nil
    /// Seals the backup (BackupCipher); nil: plain gzip.
    public var key: BackupKey? = nil
    /// Applied to the scope's backups once the new one is complete.
    public var retention = BackupConfig.Retention(keep: 7)
    public var now = Date()

    public init(kind: BackupKind, engine: String? = nil, host: String, revision: String? = nil) {
        self.kind = kind
        self.engine = engine
        self.host = host
        self.revision = revision
    }
}

/// Where backups are kept: a local directory or S3-compatible object storage, one directory
/// (prefix) per app and environment. A backup becomes visible (listed, restorable, counted for
/// retention) only once it is complete and verified.
public protocol BackupStore: Sendable {
    /// The store as the user wrote it, for messages.
    var location: String { get }
    /// Takes a backup: `produce` writes the uncompressed stream into the sink and throws when the
    /// dump failed; nothing is kept then. After a new backup is complete, the scope is pruned.
    func store(_ draft: BackupDraft, produce: (BackupSink) async throws(ShipError) -> Void) async throws(ShipError) -> BackupManifest
    /// The scope's complete backups, newest first, then unscoped ones from before stores were scoped.
    func list() async throws(ShipError) -> [BackupManifest]
    /// Runs `body` with a local copy of the backup, once its SHA-256 matched the manifest.
    func withVerifiedFile<T>(_ manifest: BackupManifest, _ body: (String) async throws(ShipError) -> T) async throws(ShipError) -> T
    /// Rewrites a backup's manifest (the time it was last verified).
    func update(_ manifest: BackupManifest) async throws(ShipError)
}

/// Which backups retention removes: of the scope's own backups (never unscoped ones), every one
/// that no rule keeps. `keep` keeps the newest N; `daily`, `weekly` and `monthly` keep the newest
/// backup of each of the last N days, ISO weeks and months that have one (UTC), as restic's
/// `forget` does; the newest `before_migrate` backup is kept until a newer one exists.
enum BackupRetention {
    static func expired(_ manifests: [BackupManifest], kind: BackupKind, rules: BackupConfig.Retention,
                        scope: BackupScope?) -> [BackupManifest] {
        let own = manifests.filter { $0.kind == kind && $0.environment == scope?.environment && $0.app == scope?.app }
            .sorted { ($0.created, $0.id) > ($1.created, $1.id) }
        var kept = Set(own.prefix(max(1, rules.keep)).map(\.id))
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parser = ISO8601DateFormatter()
        parser.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        let buckets: [(Int, (Date) -> String)] = [
            (rules.daily, { "\(calendar.dateComponents([.year, .month, .day], from: $0))" }),
            (rules.weekly, { "\(calendar.dateComponents([.yearForWeekOfYear, .weekOfYear], from: $0))" }),
            (rules.monthly, { "\(calendar.dateComponents([.year, .month], from: $0))" }),
        ]
        for (count, bucket) in buckets where count > 0 {
            var seen: Set<String> = []
            for manifest in own {
                // A time that cannot be read is never a reason to delete.
                guard let created = parser.date(from: manifest.created) ?? plain.date(from: manifest.created) else {
                    kept.insert(manifest.id)
                    continue
                }
                let key = bucket(created)
                if !seen.contains(key) && seen.count < count {
                    seen.insert(key)
                    kept.insert(manifest.id)
                }
            }
        }
        if let newestBeforeMigrate = own.first(where: { $0.purpose == "before_migrate" }) { kept.insert(newestBeforeMigrate.id) }
        return own.filter { !kept.contains($0.id) }
    }
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
