import Foundation
import Testing
@testable import Shipper

/// Every process's command line, read from /proc.
private func allCommandLines() -> [String] {
    let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { Int($0) != nil } ?? []
    return pids.compactMap { pid in
        FileManager.default.contents(atPath: "/proc/\(pid)/cmdline").map {
            String(decoding: $0.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
        }
    }
}

extension MariaDBServer {
    /// An environment's backup section: this database dumped on web1 into ./backups.
    func backupSection(_ setting: String) -> String {
        """
            backup:
              store: backups
              \(setting)
              db: { host: web1, engine: mysql, name: \(database), user: \(user), address: "\(address)", password_env: SHOP_DB_PASSWORD }

        """
    }
}

/// The names in a store directory, partial files included.
private func storeListing(_ path: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
}

@Suite("backups and restores against real servers", .tags(.endToEnd), .serialized, .timeLimit(.minutes(10)))
struct BackupEndToEndTests {
    @Test("MariaDB over ssh: restore gives identical tables; a wrong password or a killed dump stores nothing; keep; the password stays secret")
    func mariadb() async throws {
        let db = try MariaDBServer()
        // The dump runs on web1 with this machine's MariaDB client tools.
        let pool = try SandboxPool(hosts: 1, os: ["shared"])
        let app = try SandboxApp(pool: pool, extraEnvironment: db.backupSection("keep: 2"))
        try app.writeAppspec("version: 1\n")
        try app.commit("v1")
        try db.sql("""
            CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(100) CHARACTER SET utf8mb4, digest BLOB);
            INSERT INTO items SELECT seq, CONCAT('item ', seq, ' — é ✓'), UNHEX(SHA2(seq, 256)) FROM seq_1_to_3000;
            CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT);
            INSERT INTO notes (body) VALUES ('first'), ('quote '' and backslash \\\\ and newline\\n');
            CREATE TRIGGER notes_upper BEFORE INSERT ON notes FOR EACH ROW SET NEW.body = UPPER(NEW.body);
            """)
        let original = try db.checksums(["items", "notes"])
        let store = app.repo.directory.file("backups/shop/test")
        let secret = ["SHOP_DB_PASSWORD": db.password]
        var outputs: [String] = []

        // Backup, damage the data, restore: the same tables, the trigger back.
        let (backup, backupEvents) = try app.ship(["backup", "db", "test"], environment: secret)
        outputs.append(backup.stdout + backup.stderr)
        #expect(backup.status == 0, "\(backup.stderr)")
        let finished = try #require(named(backupEvents, "backup_finished").first)
        let id = try #require(finished["id"] as? String)
        #expect(finished["status"] as? String == "succeeded" && finished["host"] as? String == "web1")
        try db.sql("DELETE FROM items WHERE id > 1500; UPDATE items SET name = 'changed' WHERE id < 10; DROP TRIGGER notes_upper; INSERT INTO notes (body) VALUES ('later');")
        #expect(try db.checksums(["items", "notes"]) != original)
        let damaged = try db.checksums(["items", "notes"])
        let (restore, restoreEvents) = try app.ship(["restore", "db", "test", id, "--yes"], environment: secret)
        outputs.append(restore.stdout + restore.stderr)
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try db.checksums(["items", "notes"]) == original)
        // What the restore replaced was backed up first, and that backup restores it.
        let safety = try #require(named(restoreEvents, "backup_finished").first)
        #expect(safety["purpose"] as? String == "before_restore")
        let (undo, _) = try app.ship(["restore", "db", "test", try #require(safety["id"] as? String), "--yes", "--no-safety-backup"],
                                     environment: secret)
        #expect(undo.status == 0, "\(undo.stderr)")
        #expect(try db.checksums(["items", "notes"]) == damaged)
        let (again, _) = try app.ship(["restore", "db", "test", id, "--yes", "--no-safety-backup"], environment: secret)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try db.checksums(["items", "notes"]) == original)
        #expect(try db.sql("SHOW TRIGGERS LIKE 'notes'").contains("notes_upper"))

        // Without --yes and without a terminal: refused, exit 2, nothing restored.
        let (refused, _) = try app.ship(["restore", "db", "test", id], environment: secret)
        #expect(refused.status == 2 && refused.stderr.contains("--yes"))

        // A wrong password: exit 1 with the server's reason, nothing new in the store.
        let before = storeListing(store)
        let (wrong, wrongEvents) = try app.ship(["backup", "db", "test"], environment: ["SHOP_DB_PASSWORD": "not-the-password"])
        outputs.append(wrong.stdout + wrong.stderr)
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("Access denied"), "\(wrong.stderr)")
        #expect(!wrong.stderr.contains("not-the-password") && !wrong.stdout.contains("not-the-password"))
        #expect(named(wrongEvents, "backup_finished").first?["status"] as? String == "failed")
        #expect(storeListing(store) == before)

        // A dump killed mid-stream: a client holds a write lock, so mariadb-dump blocks after its
        // first bytes; while it runs, no command line holds the password; killed, it stores nothing.
        let locker = Process()
        locker.executableURL = URL(fileURLWithPath: "/usr/bin/mariadb")
        locker.arguments = ["--no-defaults", "--socket=" + db.socket, "-uroot", "--batch", "--unbuffered", "--skip-column-names", db.database]
        let lockerInput = Pipe(), lockerOutput = Pipe()
        locker.standardInput = lockerInput
        locker.standardOutput = lockerOutput
        try locker.run()
        lockerInput.fileHandleForWriting.write(Data("LOCK TABLES notes WRITE; SELECT 'locked';\n".utf8))
        var lockerText = ""
        while !lockerText.contains("locked") {
            let chunk = lockerOutput.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            lockerText += String(decoding: chunk, as: UTF8.self)
        }
        #expect(lockerText.contains("locked"))
        // This host's dumps only (its UTS namespace): other suites may be dumping meanwhile.
        let sshd = try run(repositoryRoot + "/scripts/sandbox.sh", ["pid", pool.directory.file("pool"), "web1"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let ourDumps = ["--ns", sshd, "--nslist", "uts", "-f", "mariadb-dump --defaults-extra-file"]
        let blockedOutput = LineCollector()
        var environment = ProcessInfo.processInfo.environment
        environment["SHOP_DB_PASSWORD"] = db.password
        environment["XDG_CACHE_HOME"] = app.repo.directory.file(".cache")
        async let blocked = ChildProcess.run(productsDirectory + "/ship", ["backup", "db", "test"], input: .none,
                                             environment: environment, directory: app.repo.path, onLine: blockedOutput.append)
        var dumpPID: Int32?
        let deadline = Date().addingTimeInterval(60)
        while dumpPID == nil && Date() < deadline {
            // Waiting for another program's process to appear: /proc is the only signal there is.
            for line in try run("pgrep", ourDumps).stdout.split(separator: "\n") {
                dumpPID = Int32(line)
            }
            if dumpPID == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        let pid = try #require(dumpPID, "mariadb-dump never started")
        let lines = allCommandLines()
        #expect(lines.contains { $0.contains("mariadb-dump") })
        #expect(!lines.contains { $0.contains(db.password) }, "the password is on a command line")
        kill(pid, SIGKILL)
        let killed = await blocked
        outputs.append(blockedOutput.text + killed.stderr)
        // Still locked: with backup.db.timeout the blocked dump is stopped on its own.
        let configPath = app.repo.directory.file("ship.yml")
        let plainConfig = try String(contentsOfFile: configPath, encoding: .utf8)
        try plainConfig.replacingOccurrences(of: "password_env: SHOP_DB_PASSWORD }", with: "password_env: SHOP_DB_PASSWORD, timeout: 2 }")
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        let started = Date()
        let (timedOut, _) = try app.ship(["backup", "db", "test"], environment: secret)
        outputs.append(timedOut.stdout + timedOut.stderr)
        #expect(timedOut.status == 1)
        #expect(timedOut.stderr.contains("was still running after 2s (backup.db.timeout) and was stopped; nothing was stored"), "\(timedOut.stderr)")
        #expect(Date().timeIntervalSince(started) < 30, "stopped at its timeout, not hanging on the lock")
        #expect(try run("pgrep", ourDumps).status == 1, "no dump left running")
        try plainConfig.write(toFile: configPath, atomically: true, encoding: .utf8)
        // `quit` rather than the end of its input: a child another test started meanwhile may
        // hold a copy of this pipe's write end (Foundation's pipes are inheritable).
        lockerInput.fileHandleForWriting.write(Data("UNLOCK TABLES;\nquit\n".utf8))
        try lockerInput.fileHandleForWriting.close()
        locker.waitUntilExit()
        #expect(killed.status == 1, "\(killed.stderr)")
        #expect(killed.stderr.contains("signal 9"), "\(killed.stderr)")
        #expect(storeListing(store) == before, "no partial file, no manifest")

        // Retention: keep 2, pruned only after a new backup is complete.
        for _ in 0..<2 {
            let (again, _) = try app.ship(["backup", "db", "test"], environment: secret)
            outputs.append(again.stdout + again.stderr)
            #expect(again.status == 0, "\(again.stderr)")
        }
        let (list, listEvents) = try app.ship(["backup", "list", "test"])
        #expect(list.status == 0)
        let ids = named(listEvents, "backup").compactMap { $0["id"] as? String }
        #expect(ids.count == 2 && !ids.contains(id), "\(ids)")
        #expect(storeListing(store).count == 4, "two files and two manifests: \(storeListing(store))")
        #expect(named(listEvents, "backup").allSatisfy { ($0["sha256"] as? String)?.count == 64 && ($0["bytes"] as? Int ?? 0) > 0 })

        #expect(!outputs.contains { $0.contains(db.password) }, "the password is in ship's output")
    }

    @Test("PostgreSQL on this machine: a custom-format dump restores the same rows")
    func postgres() async throws {
        let db = try PostgresServer()
        let directory = try db.localApp()
        try db.psql("""
            CREATE TABLE items (id int PRIMARY KEY, name text, payload bytea);
            INSERT INTO items SELECT g, 'item ' || g || ' é', decode(md5(g::text), 'hex') FROM generate_series(1, 5000) g;
            CREATE VIEW cheap AS SELECT id FROM items WHERE id < 100;
            """)
        let fingerprint = "SELECT md5(string_agg(id || ':' || name || ':' || encode(payload, 'hex'), ',' ORDER BY id)) FROM items"
        let original = try db.psql(fingerprint)
        let environment = ["PG_PASSWORD": db.password]
        let backup = try ship(["backup", "db", "--json"], in: directory.path, environment: environment)
        #expect(backup.status == 0, "\(backup.stderr)")
        let event = try #require(try JSONSerialization.jsonObject(with: Data(backup.stdout.utf8)) as? [String: Any])
        let id = try #require(event["id"] as? String)
        #expect(event["engine"] as? String == "postgres")
        try db.psql("DELETE FROM items WHERE id % 2 = 0; DROP VIEW cheap;")
        let restore = try ship(["restore", "db", id, "--yes"], in: directory.path, environment: environment)
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try db.psql(fingerprint) == original)
        #expect(try db.psql("SELECT count(*) FROM cheap") == "99")
        #expect(!(backup.stdout + backup.stderr + restore.stdout + restore.stderr).contains(db.password))

        // A wrong password fails with PostgreSQL's reason and stores nothing.
        let store = directory.file("backups/shop/prod")
        let before = storeListing(store)
        let wrong = try ship(["backup", "db"], in: directory.path, environment: ["PG_PASSWORD": "nope"])
        #expect(wrong.status == 1 && wrong.stderr.contains("password authentication failed"), "\(wrong.stderr)")
        #expect(storeListing(store) == before)
    }

    @Test("assets: a backup of shared directories restores the same tree on a test host")
    func assets() async throws {
        let pool = try SandboxPool(hosts: 1)
        let app = try SandboxApp(pool: pool, extraEnvironment: """
                backup:
                  store: backups
                  assets: { host: web1, dirs: [shared/public/files] }

            """)
        try app.writeAppspec("version: 1\n")
        try app.commit("v1")
        let files = "/srv/shop/shared/public/files"
        _ = try pool.output("web1", """
            mkdir -p \(files)/2026/11 && printf 'one' > \(files)/a.txt && head -c 300000 /dev/urandom > \(files)/2026/11/photo.jpg \
            && chmod 640 \(files)/a.txt && ln -s a.txt \(files)/link && printf 'name with spaces' > '\(files)/2026/with space.txt'
            """)
        let snapshot = "cd \(files) && find . -printf '%p %y %m %l\\n' | sort && find . -type f -exec sha256sum {} + | sort"
        let original = try pool.output("web1", snapshot)
        let (backup, events) = try app.ship(["backup", "assets", "test"])
        #expect(backup.status == 0, "\(backup.stderr)")
        let id = try #require(named(events, "backup_finished").first?["id"] as? String)
        _ = try pool.output("web1", "rm \(files)/a.txt && printf 'new' > \(files)/added.txt && printf 'changed' > '\(files)/2026/with space.txt'")
        #expect(try pool.output("web1", snapshot) != original)
        let (restore, _) = try app.ship(["restore", "assets", "test", id, "--yes"])
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try pool.output("web1", snapshot) == original)
        #expect(try pool.output("web1", "ls -A /srv/shop/shared/public") == "files", "no staging or replaced directory left behind")

        // A database backup id is refused by restore assets.
        let (wrongKind, _) = try app.ship(["restore", "db", "test", id, "--yes"])
        #expect(wrongKind.status == 2)
    }

    @Test("command engine into S3: a multipart upload round trip, retention in the bucket")
    func s3() async throws {
        let s3 = try MotoServer()
        let directory = try TemporaryDirectory("ship-s3-app")
        let credentials = ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret"]
        let client = S3Client(endpoint: s3.endpoint, bucket: "ship-backups", region: "us-east-1", accessKey: "testing",
                              secretKey: "testing-secret", sessionToken: nil)
        _ = try client.send("PUT", key: "", expect: [200])
        // 20 MiB that does not compress: more than one 16 MiB part.
        _ = try run("/bin/sh", ["-c", "head -c 20971520 /dev/urandom > '\(directory.file("dump.bin"))'"])
        try directory.write("ship.yml", """
            app: shop
            deploy_to: /srv/shop
            environments:
              prod:
                hosts: [web1]
                backup:
                  store: s3://ship-backups/backups
                  keep: 1
                  s3: { endpoint: "\(s3.endpoint)", region: us-east-1 }
                  db:
                    host: local
                    engine: command
                    name: shop
                    dump_command: cat "$DUMP_SOURCE"
                    restore_command: cat > "$DUMP_TARGET"
              staging:
                hosts: [web1]
                backup:
                  store: s3://ship-backups/backups
                  s3: { endpoint: "\(s3.endpoint)", region: us-east-1 }
                  encryption: { key_env: STAGING_BACKUP_KEY }
                  db: { host: local, engine: command, dump_command: 'printf "customer alice@shop.example\\n"', restore_command: cat > "$DUMP_TARGET" }

            """)
        let environment = credentials.merging(["DUMP_SOURCE": directory.file("dump.bin"), "DUMP_TARGET": directory.file("restored.bin"),
                                               "STAGING_BACKUP_KEY": Data((0..<32).map { UInt8($0) }).base64EncodedString()]) { $1 }
        // staging shares the bucket and prefix, encrypted: prod never sees it, and its retention leaves it alone.
        let staging = try ship(["backup", "db", "staging", "--json"], in: directory.path, environment: environment)
        #expect(staging.status == 0, "\(staging.stderr)")
        let stagingID = try #require((try JSONSerialization.jsonObject(with: Data(staging.stdout.utf8)) as? [String: Any])?["id"] as? String)
        let first = try ship(["backup", "db", "prod", "--json"], in: directory.path, environment: environment)
        #expect(first.status == 0, "\(first.stderr)")
        let second = try ship(["backup", "db", "prod", "--json"], in: directory.path, environment: environment)
        #expect(second.status == 0, "\(second.stderr)")
        let secondID = try #require((try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [String: Any])?["id"] as? String)
        let objects = try client.list(prefix: "backups/")
        #expect(objects.keys.sorted() == ["backups/shop/prod/\(secondID).dump.gz", "backups/shop/prod/\(secondID).json",
                                          "backups/shop/staging/\(stagingID).dump.gz.enc", "backups/shop/staging/\(stagingID).json"],
                "keep: 1 pruned prod's first, in the app's and environment's prefix, and left staging's")
        let list = try ship(["backup", "list", "prod", "--json"], in: directory.path, environment: environment)
        #expect(list.stdout.contains(secondID) && !list.stdout.contains(stagingID))
        let sealed = try client.getObject(key: "backups/shop/staging/\(stagingID).dump.gz.enc")
        #expect(sealed.prefix(8) == Data("SHIPENC1".utf8) && sealed.range(of: Data("alice@shop.example".utf8)) == nil)
        let stagingRestore = try ship(["restore", "db", "staging", stagingID, "--yes"], in: directory.path, environment: environment)
        #expect(stagingRestore.status == 0, "\(stagingRestore.stderr)")
        #expect(try String(contentsOfFile: directory.file("restored.bin"), encoding: .utf8) == "customer alice@shop.example\n")
        let restore = try ship(["restore", "db", "prod", secondID, "--yes"], in: directory.path, environment: environment)
        #expect(restore.status == 0, "\(restore.stderr)")
        let sums = try run("sha256sum", [directory.file("dump.bin"), directory.file("restored.bin")]).stdout
            .split(separator: "\n").map { $0.split(separator: " ")[0] }
        #expect(sums.count == 2 && sums[0] == sums[1])

        // Without credentials: a configuration error before anything runs.
        let anonymous = try ship(["backup", "db", "prod"], in: directory.path, environment: ["AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""])
        #expect(anonymous.status == 2 && anonymous.stderr.contains("AWS_ACCESS_KEY_ID"))
    }

    @Test("before_migrate: the backup precedes migrate; when it fails, no host switches")
    func beforeMigrate() async throws {
        let db = try MariaDBServer()
        // The dump runs on web1 with this machine's MariaDB client tools.
        let pool = try SandboxPool(hosts: 2, os: ["shared"])
        let app = try SandboxApp(pool: pool, extraEnvironment: db.backupSection("before_migrate: true"))
        try app.writeAppspec("""
            version: 1
            hooks:
              migrate: [{ run: "echo migrated >> $SHIP_DEPLOY_TO/shared/log/migrations" }]

            """)
        try app.commit("v1")
        try db.sql("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1);")
        let (deploy, events) = try app.ship(["deploy", "test"], environment: ["SHOP_DB_PASSWORD": db.password])
        #expect(deploy.status == 0, "\(deploy.stderr)")
        let backupAt = try #require(events.firstIndex { $0["event"] as? String == "backup_taken" })
        let migrateAt = try #require(events.firstIndex { $0["event"] as? String == "hook_started" && $0["hook"] as? String == "migrate" })
        #expect(backupAt < migrateAt)
        let (list, listEvents) = try app.ship(["backup", "list", "test"])
        #expect(list.status == 0 && named(listEvents, "backup").count == 1)
        let current = try pool.hosts.map { try pool.output($0, "readlink /srv/shop/current") }

        try app.repo.write("version.txt", "v2\n")
        try app.commit("v2")
        let (failed, failedEvents) = try app.ship(["deploy", "test"], environment: ["SHOP_DB_PASSWORD": "wrong"])
        #expect(failed.status == 1)
        #expect(named(failedEvents, "host_failed").contains { $0["step"] as? String == "backup" })
        #expect(named(failedEvents, "host_switched").isEmpty)
        #expect(!failedEvents.contains { $0["event"] as? String == "hook_started" && $0["hook"] as? String == "migrate" })
        #expect(try pool.hosts.map { try pool.output($0, "readlink /srv/shop/current") } == current)
        #expect(try pool.output("web2", "wc -l < /srv/shop/shared/log/migrations") == "1")
        #expect(try app.ship(["backup", "list", "test"]).events.count == 1)
    }
}
