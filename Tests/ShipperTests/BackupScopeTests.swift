import Foundation
import Testing
@testable import Shipper

@Suite("backup scopes, retention policies and encryption")
struct BackupScopeTests {
    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory("ship-backup-scopes")
    }

    func store(_ environment: String) -> LocalBackupStore {
        LocalBackupStore(root: directory.file("store"), scope: BackupScope(app: "shop", environment: environment))
    }

    func take(_ store: LocalBackupStore, _ content: String, at seconds: TimeInterval, keep: Int = 7,
              key: BackupKey? = nil) async throws(ShipError) -> BackupManifest {
        var draft = BackupDraft(kind: .db, engine: "mysql", host: "db1")
        draft.retention = BackupConfig.Retention(keep: keep)
        draft.now = Date(timeIntervalSince1970: 1_800_000_000 + seconds)
        draft.key = key
        return try await store.store(draft) { sink throws(ShipError) in sink.write(Data(content.utf8)) }
    }

    @Test("two environments in one store: separate directories, lists and retention; ids name their environment")
    func scoped() async throws {
        let prod = store("prod"), staging = store("staging")
        let stagingBackup = try await take(staging, "staging\n", at: 0)
        for second in 1...3 { _ = try await take(prod, "prod \(second)\n", at: TimeInterval(second), keep: 1) }
        #expect(try staging.list() == [stagingBackup], "prod's keep: 1 left staging's backup alone")
        #expect(try prod.list().count == 1)
        #expect(try prod.list().allSatisfy { $0.environment == "prod" && $0.app == "shop" && $0.id.hasPrefix("prod-db-") })
        #expect(stagingBackup.id.hasPrefix("staging-db-"))
        #expect(BackupManifest.environment(ofID: stagingBackup.id) == "staging")
        #expect(BackupManifest.environment(ofID: "db-20261122T101500Z-3fa2") == nil)
        #expect(FileManager.default.fileExists(atPath: directory.file("store/shop/staging/\(stagingBackup.file)")))
    }

    @Test("an unscoped backup from before stores were scoped is listed in every environment, marked, and never pruned")
    func unscoped() async throws {
        let old = LocalBackupStore(directory: directory.file("store"))
        let legacy = try await take(old, "legacy\n", at: 0)
        #expect(legacy.unscoped && !legacy.id.contains("prod"))
        let prod = store("prod")
        for second in 1...3 { _ = try await take(prod, "prod\n", at: TimeInterval(second), keep: 1) }
        let listed = try prod.list()
        #expect(listed.count == 2 && listed.last == legacy, "its own one, then the unscoped one")
        #expect(try store("staging").list() == [legacy])
        let (_, path) = try prod.verifiedFile(id: legacy.id)
        #expect(path == directory.file("store/\(legacy.file)"))
    }

    @Test("keep_daily, keep_weekly and keep_monthly keep the newest backup of each of the last N days, weeks and months")
    func agePolicies() {
        let parser = ISO8601DateFormatter()
        func manifest(_ created: String, purpose: String? = nil) -> BackupManifest {
            var manifest = BackupManifest(id: "prod-db-\(created)", kind: .db, bytes: 1, sha256: "", created: created, host: "db1", file: "")
            manifest.app = "shop"
            manifest.environment = "prod"
            manifest.purpose = purpose
            #expect(parser.date(from: created) != nil)
            return manifest
        }
        // Newest first: two a day for four days of one week, then one a week back, then one a month back.
        let times = ["2026-12-04T18:00:00Z", "2026-12-04T06:00:00Z", "2026-12-03T18:00:00Z", "2026-12-03T06:00:00Z",
                     "2026-12-02T18:00:00Z", "2026-12-01T18:00:00Z", "2026-11-24T18:00:00Z", "2026-11-17T18:00:00Z",
                     "2026-10-20T18:00:00Z", "2026-09-15T18:00:00Z"]
        let all = times.map { manifest($0) }
        let scope = BackupScope(app: "shop", environment: "prod")
        func kept(_ rules: BackupConfig.Retention, _ manifests: [BackupManifest] = all) -> [String] {
            let expired = Set(BackupRetention.expired(manifests, kind: .db, rules: rules, scope: scope).map(\.id))
            return manifests.map(\.created).filter { !expired.contains("prod-db-\($0)") }
        }
        #expect(kept(.init(keep: 2)) == Array(times.prefix(2)))
        #expect(kept(.init(keep: 1, daily: 3)) == ["2026-12-04T18:00:00Z", "2026-12-03T18:00:00Z", "2026-12-02T18:00:00Z"])
        #expect(kept(.init(keep: 1, weekly: 3)) == ["2026-12-04T18:00:00Z", "2026-11-24T18:00:00Z", "2026-11-17T18:00:00Z"])
        #expect(kept(.init(keep: 1, monthly: 3)) == ["2026-12-04T18:00:00Z", "2026-11-24T18:00:00Z", "2026-10-20T18:00:00Z"])
        #expect(kept(.init(keep: 1, daily: 1, monthly: 2)) == ["2026-12-04T18:00:00Z", "2026-11-24T18:00:00Z"])
        // The newest before-migrate backup survives until a newer one exists.
        var withMigrate = all
        withMigrate[5] = manifest(times[5], purpose: "before_migrate")
        #expect(kept(.init(keep: 1), withMigrate) == [times[0], times[5]])
        // Other environments' and unscoped backups are never retention's to remove.
        var foreign = manifest("2026-01-01T00:00:00Z")
        foreign.environment = "staging"
        var legacy = manifest("2026-01-02T00:00:00Z")
        legacy.environment = nil
        #expect(BackupRetention.expired(all + [foreign, legacy], kind: .db, rules: .init(keep: 1), scope: scope).count == all.count - 1)
    }

    static let key = Data((0..<32).map { UInt8($0) }).base64EncodedString()
    static let otherKey = Data((0..<32).map { UInt8(255 - $0) }).base64EncodedString()

    /// 3 MiB of random text (so its compressed stream spans several 1 MiB chunks) with a marker.
    static let content: String = {
        var generator = SystemRandomNumberGenerator()
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return "INSERT INTO customers VALUES ('alice@example.com');\n"
            + String((0..<(3 << 20)).map { _ in letters.randomElement(using: &generator)! }) + "\n-- Dump completed\n"
    }()

    func readBack(_ path: String, keys: [BackupKey]) -> (String, BackupReader.Stop?) {
        var data = Data()
        let stop = BackupReader.read(path: path, keys: keys) { chunk in
            data.append(contentsOf: chunk)
            return true
        }
        return (String(decoding: data, as: UTF8.self), stop)
    }

    @Test("an encrypted backup holds no plaintext, reads back exactly with its key, and fails with another or none")
    func encryptedRoundTrip() async throws {
        let key = try BackupKey(base64: Self.key, origin: "$TEST_KEY")
        let prod = store("prod")
        let manifest = try await take(prod, Self.content, at: 0, key: key)
        #expect(manifest.encryptedWith == key.fingerprint && manifest.file.hasSuffix(".enc"))
        let path = prod.directory + "/" + manifest.file
        let stored = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(stored.prefix(8) == Data("SHIPENC1".utf8))
        #expect(stored.range(of: Data("alice@example.com".utf8)) == nil)
        // Not even a gzip stream: the compressed bytes were sealed before they reached the file.
        #expect(stored.range(of: Data([0x1F, 0x8B, 0x08, 0x00])) == nil)
        let (text, stop) = readBack(path, keys: [key])
        #expect(stop == nil && text == Self.content)
        let other = try BackupKey(base64: Self.otherKey, origin: "$OLD_KEY")
        #expect(other.fingerprint != key.fingerprint)
        let (_, wrong) = readBack(path, keys: [other])
        #expect(wrong.map { "\($0)" }?.contains("does not decrypt with the configured key") == true, "\(String(describing: wrong))")
        let (_, none) = readBack(path, keys: [])
        #expect(none.map { "\($0)" }?.contains("no key is configured") == true)
        // Rotation: the old key among others still opens it.
        #expect(readBack(path, keys: [other, key]).1 == nil)
    }

    @Test("a flipped byte, a cut, a swapped pair of chunks or a dropped chunk is detected", arguments: ["flip", "truncate", "swap", "drop"])
    func tampering(_ how: String) async throws {
        let key = try BackupKey(base64: Self.key, origin: "$TEST_KEY")
        let prod = store("prod")
        let manifest = try await take(prod, Self.content, at: 0, key: key)
        let path = prod.directory + "/" + manifest.file
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        // Chunk boundaries: after the 40-byte header, a 4-byte length before each chunk.
        var chunks: [Range<Int>] = []
        var offset = 40
        while offset < bytes.count {
            let length = bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | Int($1) }
            chunks.append(offset..<(offset + 4 + length))
            offset += 4 + length
        }
        #expect(chunks.count >= 3, "the stream spans several chunks")
        switch how {
        case "flip": bytes[chunks[1].lowerBound + 100] ^= 0x01
        case "truncate": bytes.removeSubrange(chunks.last!)
        case "swap":
            let first = Array(bytes[chunks[0]]), second = Array(bytes[chunks[1]])
            bytes.replaceSubrange(chunks[0].lowerBound..<chunks[1].upperBound, with: second + first)
        default: bytes.removeSubrange(chunks[1])
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let (_, stop) = readBack(path, keys: [key])
        guard case .failed(let message) = stop else {
            Issue.record("\(how) went unnoticed")
            return
        }
        #expect(message.contains("damaged") || message.contains("truncated") || message.contains("does not decrypt"), "\(message)")
    }

    @Test("a key must be 32 bytes of base64, and a configured key that is missing fails closed with a hint")
    func keys() throws {
        #expect(throws: ShipError.self) { _ = try BackupKey(base64: "c2hvcnQ=", origin: "$K") }
        do {
            _ = try BackupKey.load(.environment("SHOP_BACKUP_KEY"), environment: [:])
            Issue.record("a missing key was accepted")
        } catch {
            #expect(error.message.contains("SHOP_BACKUP_KEY is not set") && error.exitCode == .usage)
        }
        let file = directory.file("backup.key")
        try (Self.key + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try BackupKey.load(.file(file), environment: [:]).fingerprint == (try BackupKey(base64: Self.key, origin: "x")).fingerprint)
    }
}
