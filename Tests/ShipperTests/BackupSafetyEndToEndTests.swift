import Foundation
import Testing
@testable import Shipper

/// Scoped stores, encryption at rest and verified restores, against real servers the suite starts.
@Suite("backups a shop can bet on: scopes, encryption, verify", .tags(.endToEnd), .serialized, .timeLimit(.minutes(10)))
struct BackupSafetyEndToEndTests {
    static let key = Data((0..<32).map { UInt8(($0 * 7 + 3) % 256) }).base64EncodedString()

    /// prod and staging of one app, both dumping the same MariaDB here into the same `backups` store;
    /// prod's backups are encrypted.
    func mariadbApp(_ db: MariaDBServer) throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory("ship-backup-safety")
        let database = "{ host: local, engine: mysql, name: \(db.database), user: \(db.user), address: \"\(db.address)\", password_env: SHOP_DB_PASSWORD }"
        try directory.write("ship.yml", """
            app: shop
            deploy_to: /srv/shop
            environments:
              prod:
                hosts: [web1]
                backup:
                  store: backups
                  keep: 1
                  encryption: { key_env: SHOP_BACKUP_KEY }
                  db: \(database)
              staging:
                hosts: [web1]
                backup:
                  store: backups
                  db: \(database)

            """)
        return directory
    }

    func json(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    @Test("MariaDB: two environments share a store without seeing or pruning each other's backups; encrypted at rest; verify and a test restore")
    func mariadb() async throws {
        let db = try MariaDBServer()
        try db.sql("""
            CREATE TABLE customers (id INT PRIMARY KEY, email VARCHAR(100));
            INSERT INTO customers SELECT seq, CONCAT('customer-', seq, '@shop.example') FROM seq_1_to_2000;
            CREATE TABLE orders (id INT PRIMARY KEY, customer INT);
            INSERT INTO orders SELECT seq, seq % 2000 + 1 FROM seq_1_to_500;
            """)
        let original = try db.checksums(["customers", "orders"])
        let app = try mariadbApp(db)
        let secrets = ["SHOP_DB_PASSWORD": db.password, "SHOP_BACKUP_KEY": Self.key]
        func ship(_ arguments: [String], _ environment: [String: String] = secrets) throws -> ProcessResult {
            try ShipperTests.ship(arguments, in: app.path, environment: environment)
        }

        // staging's backup, then prod's (keep: 1) twice: each sees its own; staging's survives prod's retention.
        let staging = try ship(["backup", "db", "staging", "--json"])
        #expect(staging.status == 0, "\(staging.stderr)")
        let stagingID = try #require(json(staging.stdout).first?["id"] as? String)
        #expect(stagingID.hasPrefix("staging-db-"))
        var prodIDs: [String] = []
        for _ in 0..<2 {
            let prod = try ship(["backup", "db", "prod", "--json"])
            #expect(prod.status == 0, "\(prod.stderr)")
            prodIDs.append(try #require(json(prod.stdout).first?["id"] as? String))
        }
        let prodList = json(try ship(["backup", "list", "prod", "--json"]).stdout).compactMap { $0["id"] as? String }
        let stagingList = json(try ship(["backup", "list", "staging", "--json"]).stdout).compactMap { $0["id"] as? String }
        #expect(prodList == [prodIDs[1]])
        #expect(stagingList == [stagingID])

        // At rest: prod's file holds none of the rows, not even compressed.
        let prodFile = app.file("backups/shop/prod/\(prodIDs[1]).dump.gz.enc")
        let stored = try Data(contentsOf: URL(fileURLWithPath: prodFile))
        #expect(stored.prefix(8) == Data("SHIPENC1".utf8))
        #expect(stored.range(of: Data("customer-1".utf8)) == nil && stored.range(of: Data([0x1F, 0x8B, 0x08])) == nil)
        let plainStaging = try run("/bin/sh", ["-c", "gzip -dc '\(app.file("backups/shop/staging/\(stagingID).dump.gz"))' | grep -c customer-1@"])
        #expect(plainStaging.stdout.trimmingCharacters(in: .whitespacesAndNewlines) != "0", "staging is not encrypted: the control")

        // Missing key: the backup fails before dumping, the restore before touching anything.
        var noKey = secrets
        noKey["SHOP_BACKUP_KEY"] = nil
        let before = try FileManager.default.contentsOfDirectory(atPath: app.file("backups/shop/prod")).sorted()
        let backupWithoutKey = try ship(["backup", "db", "prod"], noKey)
        #expect(backupWithoutKey.status == 2 && backupWithoutKey.stderr.contains("SHOP_BACKUP_KEY is not set"), "\(backupWithoutKey.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: app.file("backups/shop/prod")).sorted() == before)
        try db.sql("DELETE FROM orders WHERE id > 100;")
        let damaged = try db.checksums(["customers", "orders"])
        let restoreWithoutKey = try ship(["restore", "db", "prod", prodIDs[1], "--yes"], noKey)
        #expect(restoreWithoutKey.status == 2, "\(restoreWithoutKey.stderr)")
        #expect(try db.checksums(["customers", "orders"]) == damaged, "nothing touched")
        #expect(try FileManager.default.contentsOfDirectory(atPath: app.file("backups/shop/prod")).sorted() == before, "no safety backup either")
        let verifyWithoutKey = try ship(["backup", "verify", "prod", "--all"], noKey)
        #expect(verifyWithoutKey.status == 2 && verifyWithoutKey.stderr.contains("SHOP_BACKUP_KEY is not set"), "\(verifyWithoutKey.stderr)")

        // Verify with a test restore: whole, loads, counted; no scratch database left.
        let verify = try ship(["backup", "verify", "prod", prodIDs[1], "--restore-test"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("2 tables") && verify.stdout.contains("customers: 2000 rows"), "\(verify.stdout)")
        #expect(try db.root("SHOW DATABASES LIKE 'ship\\\\_verify%'").isEmpty)
        let listing = try ship(["backup", "list", "prod"]).stdout
        #expect(listing.contains("restore-tested") && listing.contains("SHA-256"), "\(listing)")

        // Restore: the encrypted backup brings the rows back exactly.
        let restore = try ship(["restore", "db", "prod", prodIDs[1], "--yes"])
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try db.checksums(["customers", "orders"]) == original)

        // Another environment's backup: refused without --from, restored with it.
        let crossed = try ship(["restore", "db", "staging", prodIDs[1], "--yes"])
        #expect(crossed.status == 2 && crossed.stderr.contains("--from prod"), "\(crossed.stderr)")
        let fromProd = try ship(["restore", "db", "staging", prodIDs[1], "--from", "prod", "--yes", "--no-safety-backup"])
        #expect(fromProd.status == 0, "\(fromProd.stderr)")

        // One flipped byte: verify fails, and so does a restore, which leaves the database as it was.
        var bytes = [UInt8](stored)
        bytes[bytes.count / 2] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: prodFile))
        try db.sql("DELETE FROM orders WHERE id > 100;")
        let flipped = try ship(["backup", "verify", "prod", "--all"])
        #expect(flipped.status == 1 && flipped.stdout.contains("FAILED"), "\(flipped.stdout)")
        let restoreFlipped = try ship(["restore", "db", "prod", prodIDs[1], "--yes", "--no-safety-backup"])
        #expect(restoreFlipped.status == 1 && restoreFlipped.stderr.contains("damaged"), "\(restoreFlipped.stderr)")
        #expect(try db.checksums(["customers", "orders"]) == damaged)

        // A dump whose SQL is broken fails the test restore and leaves no scratch database.
        var draft = BackupDraft(kind: .db, engine: "mysql", host: "local")
        draft.now = Date().addingTimeInterval(60)
        let broken = try await LocalBackupStore(root: app.file("backups"), scope: BackupScope(app: "shop", environment: "staging")).store(draft) { sink throws(ShipError) in
            sink.write(Data("-- MariaDB dump 10.19\nCREATE TABLE t (id INT PRIMARY KEY);\nINSERT INTO t VALUES (1;\n-- Dump completed\n".utf8))
        }
        let brokenVerify = try ship(["backup", "verify", "staging", broken.id])
        #expect(brokenVerify.status == 0, "the file itself is whole: \(brokenVerify.stdout)")
        let brokenRestore = try ship(["backup", "verify", "staging", broken.id, "--restore-test"])
        #expect(brokenRestore.status == 1 && brokenRestore.stdout.contains("syntax"), "\(brokenRestore.stdout)")
        #expect(try db.root("SHOW DATABASES LIKE 'ship\\\\_verify%'").isEmpty)
    }

    @Test("PostgreSQL: verify --restore-test loads a good dump into a scratch database and drops it; a broken dump fails and leaves none")
    func postgres() async throws {
        let db = try PostgresServer()
        let directory = try db.localApp(backup: "encryption: { key_file: backup.key }")
        try directory.write("backup.key", Self.key + "\n")
        try db.psql("CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 700) g;")
        let environment = ["PG_PASSWORD": db.password]
        let backup = try ship(["backup", "db", "--json"], in: directory.path, environment: environment)
        #expect(backup.status == 0, "\(backup.stderr)")
        let id = try #require(json(backup.stdout).first?["id"] as? String)
        let scratchCount = "SELECT count(*) FROM pg_database WHERE datname LIKE 'ship_verify%'"
        let verify = try ship(["backup", "verify", id, "--restore-test"], in: directory.path, environment: environment)
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("1 table") && verify.stdout.contains("items: 700 rows"), "\(verify.stdout)")
        #expect(try db.psql(scratchCount, database: "postgres") == "0")

        var draft = BackupDraft(kind: .db, engine: "postgres", host: "local")
        draft.now = Date().addingTimeInterval(60)
        draft.key = try BackupKey(base64: Self.key, origin: "backup.key")
        let broken = try await LocalBackupStore(root: directory.file("backups"), scope: BackupScope(app: "shop", environment: "prod")).store(draft) { sink throws(ShipError) in
            sink.write(Data("PGDMP this is not an archive".utf8))
        }
        let failed = try ship(["backup", "verify", broken.id, "--restore-test", "--json"], in: directory.path, environment: environment)
        #expect(failed.status == 1)
        #expect(json(failed.stdout).first?["status"] as? String == "failed", "\(failed.stdout)")
        #expect(try db.psql(scratchCount, database: "postgres") == "0")
    }
}
