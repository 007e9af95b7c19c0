import Foundation
import Testing
@testable import Shipper

@Suite("local backup store")
struct LocalBackupStoreTests {
    let directory: TemporaryDirectory
    let store: LocalBackupStore

    init() throws {
        directory = try TemporaryDirectory("ship-backups")
        store = LocalBackupStore(directory: directory.file("store"))
    }

    func take(_ content: String, at seconds: TimeInterval, keep: Int = 7) async throws(ShipError) -> BackupManifest {
        var draft = BackupDraft(kind: .db, engine: "mysql", host: "db1", revision: "abc")
        draft.retention = BackupConfig.Retention(keep: keep)
        draft.now = Date(timeIntervalSince1970: 1_800_000_000 + seconds)
        return try await store.store(draft) { sink throws(ShipError) in
            sink.write(Data(content.utf8))
        }
    }

    @Test("a backup is a gzip file plus a manifest; files 0600 in a 0700 directory whatever the umask")
    func storesPrivately() async throws {
        let old = umask(0)
        defer { umask(old) }
        let manifest = try await take("CREATE TABLE t (id int);\n-- Dump completed\n", at: 0)
        let path = store.directory + "/" + manifest.file
        let gunzip = try run("/bin/sh", ["-c", "gzip -dc '\(path)'"])
        #expect(gunzip.stdout == "CREATE TABLE t (id int);\n-- Dump completed\n")
        func mode(_ path: String) throws -> Int { try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1 }
        #expect(try mode(path) == 0o600)
        #expect(try mode(store.directory + "/\(manifest.id).json") == 0o600)
        #expect(try mode(store.directory) == 0o700)
        let sum = try run("sha256sum", [path])
        #expect(sum.stdout.hasPrefix(manifest.sha256))
        #expect(try store.list() == [manifest])
        #expect(manifest.host == "db1" && manifest.engine == "mysql" && manifest.revision == "abc")
    }

    @Test("partial files a killed run left behind are removed by the next backup; a live run's are kept")
    func leftoverPartials() async throws {
        // A pid that no longer runs: a child that has exited and been reaped.
        let dead = try #require(Int32(try run("/bin/sh", ["-c", "sh -c 'echo $$' "]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        try FileManager.default.createDirectory(atPath: store.directory, withIntermediateDirectories: true)
        let machine = ProcessInfo.processInfo.hostName
        let names = [".db-1.sql.gz~\(machine)~\(dead).partial", ".db-2.sql.gz~\(machine)~1.partial",
                     ".db-3.sql.gz~other-machine~\(dead).partial", ".db-4.sql.gz.partial", ".db-5.sql.gz.partial"]
        for name in names { try "x".write(toFile: store.directory + "/" + name, atomically: false, encoding: .utf8) }
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -2 * 86_400)],
                                              ofItemAtPath: store.directory + "/.db-4.sql.gz.partial")
        _ = try await take("-- Dump completed\n", at: 0)
        let left = try FileManager.default.contentsOfDirectory(atPath: store.directory).filter { $0.hasSuffix(".partial") }.sorted()
        #expect(left == [".db-2.sql.gz~\(machine)~1.partial", ".db-3.sql.gz~other-machine~\(dead).partial", ".db-5.sql.gz.partial"],
                "pid 1 still runs, another machine's is not ours to judge, a fresh untagged one may be live")
    }

    @Test("a failed dump leaves no file and no manifest, and earlier backups intact")
    func failedDump() async throws {
        let good = try await take("good\n", at: 0)
        await #expect(throws: ShipError.self) {
            _ = try await store.store(BackupDraft(kind: .db, engine: "mysql", host: "db1")) { sink throws(ShipError) in
                sink.write(Data(String(repeating: "partial row\n", count: 200_000).utf8))
                throw ShipError("mariadb-dump exited 2")
            }
        }
        #expect(try store.list() == [good])
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.directory).sorted() == [good.file, "\(good.id).json"].sorted())
    }

    @Test("retention keeps the newest N of a kind, pruning only after the new one is complete")
    func retention() async throws {
        _ = try await take("one\n", at: 0, keep: 2)
        let two = try await take("two\n", at: 1, keep: 2)
        let three = try await take("three\n", at: 2, keep: 2)
        #expect(try store.list().map(\.id) == [three.id, two.id])
        var draft = BackupDraft(kind: .assets, host: "web1")
        draft.retention = BackupConfig.Retention(keep: 1)
        draft.now = Date(timeIntervalSince1970: 1_800_000_003)
        let assets = try await store.store(draft) { sink throws(ShipError) in
            sink.write(Data("tar".utf8))
        }
        #expect(try store.list().count == 3, "retention is per kind")
        #expect(try store.list().first == assets)
    }

    @Test("restore reads a backup only when its SHA-256 matches")
    func verification() async throws {
        let manifest = try await take("data\n", at: 0)
        let (_, path) = try store.verifiedFile(id: manifest.id)
        #expect(path.hasSuffix(manifest.file))
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 1] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect {
            _ = try store.verifiedFile(id: manifest.id)
        } throws: { error in
            (error as? ShipError)?.message.contains("is damaged") == true
        }
        #expect(throws: ShipError.self) { _ = try store.verifiedFile(id: "db-nope") }
    }
}
