import Foundation
import Testing
@testable import Shipper

/// `artifacts:` on real hosts with moto's S3 server on loopback: the controller publishes the
/// bundle once, hosts fetch it themselves with a presigned link and check its SHA-256; a host
/// without curl, or a bundle that is not the one published, gets it over ssh, said per host.
@Suite("artifacts fetched by the hosts from an S3 store", .tags(.endToEnd), .serialized)
struct ArtifactsEndToEndTests {
    static let credentials = ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret"]

    /// moto's S3 on loopback with the bucket `fleet-artifacts`, and a client of it.
    static func store() throws -> (MotoServer, S3Client) {
        let s3 = try MotoServer()
        let client = S3Client(endpoint: s3.endpoint, bucket: "fleet-artifacts", region: "us-east-1", accessKey: "testing",
                              secretKey: "testing-secret", sessionToken: nil)
        _ = try client.send("PUT", key: "", expect: [200])
        return (s3, client)
    }

    func steps(_ events: [[String: Any]], _ host: String) -> [String] {
        named(events, "host_step").filter { $0["host"] as? String == host }.compactMap { $0["step"] as? String }
    }

    func warnings(_ events: [[String: Any]], _ host: String) -> [String] {
        named(events, "host_warning").filter { $0["host"] as? String == host }.compactMap { $0["message"] as? String }
    }

    @Test("published once, one GET per host, the same SHA-256 everywhere; no curl or a tampered object: over ssh; the same bundle is not uploaded twice")
    func fetchedByHosts() throws {
        let (s3, client) = try Self.store()
        // web1 and web2 have curl; web3 has not.
        let pool = try SandboxPool(hosts: 3, os: ["bookworm+curl", "bookworm+curl", "bookworm"])
        // Every byte ship sends a host goes through a relay that counts it (ssh's ProxyCommand).
        let counts = try TemporaryDirectory("ship-ssh-bytes")
        try ("Host web1 web2 web3\n  ProxyCommand /usr/bin/python3 \(repositoryRoot)/scripts/ssh-relay.py %h %p \(counts.path)/%n\n\n"
             + (try String(contentsOfFile: pool.sshConfig, encoding: .utf8))).write(toFile: counts.file("ssh_config"), atomically: true, encoding: .utf8)
        func sent(to host: String) throws -> Int {
            try FileManager.default.contentsOfDirectory(atPath: counts.path).filter { $0.hasPrefix(host + ".") && !$0.hasSuffix(".tmp") }
                .compactMap { Int(try String(contentsOfFile: counts.file($0), encoding: .utf8)) }.reduce(0, +)
        }
        // max_concurrency 2 of 3 hosts: sessions per batch, not per run (a pool larger than it).
        let app = try SandboxApp(pool: pool, extraEnvironment: """
                ssh: { user: deploy, config_file: \(counts.file("ssh_config")) }
                artifacts: { store: s3://fleet-artifacts/ship, endpoint: "\(s3.endpoint)" }
                max_concurrency: 2

            """)
        try app.writeAppspec("version: 1\nhooks:\n  validate: [{ run: test -f public/big.bin }]\n")
        // A bundle worth not sending three times: 3 MB that does not compress.
        try FileManager.default.createDirectory(atPath: app.repo.directory.file("public"), withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: app.repo.directory.file("public/big.bin"),
                                       contents: Data((0..<3_000_000).map { _ in UInt8.random(in: 0...255) }))
        try app.commit("v1")

        let (first, events) = try app.ship(["deploy", "test"], environment: Self.credentials)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let published = named(events, "host_step").filter { $0["host"] == nil }.compactMap { $0["step"] as? String }
        let sha = try #require(try pool.output("web1", "ls /srv/shop/.ship/bundles").split(separator: ".").first.map(String.init))
        let key = "ship/bundles/shop/\(sha).tar.gz"
        #expect(published.contains { $0.hasPrefix("bundle published to s3://fleet-artifacts/\(key)") }, "\(published)")
        for host in ["web1", "web2"] {
            #expect(steps(events, host).contains { $0.hasPrefix("bundle fetched from s3://fleet-artifacts/\(key) by the host") }, "\(host): \(steps(events, host))")
            #expect(named(events, "bundle_sent").filter { $0["host"] as? String == host }.isEmpty, "\(host) was sent no bundle over ssh")
            #expect(warnings(events, host).isEmpty)
        }
        // web3 has no curl: said, and sent over ssh.
        #expect(warnings(events, "web3").contains { $0.contains("curl is not installed on this host") && $0.hasSuffix("; sending it over ssh") },
                "\(warnings(events, "web3"))")
        #expect(named(events, "bundle_sent").filter { $0["host"] as? String == "web3" }.count == 1)
        // Every host holds the bundle under the same SHA-256, and its content is that.
        let content = S3Client.sha256Hex(try Data(contentsOf: URL(fileURLWithPath: app.repo.directory.file("public/big.bin"))))
        for host in pool.hosts {
            #expect(try pool.output(host, "sha256sum /srv/shop/.ship/bundles/\(sha).tar.gz | cut -d' ' -f1") == sha)
            #expect(try pool.output(host, "sha256sum /srv/shop/current/public/big.bin | cut -d' ' -f1") == content)
        }
        // moto served one GET of the bundle per host that fetched, and took one upload.
        func requests(_ method: String) -> Int {
            s3.server.output.components(separatedBy: "\n").filter { $0.contains("\"\(method) /fleet-artifacts/\(key)") }.count
        }
        #expect(requests("GET") == 2, "\(s3.server.output.suffix(3000))")
        #expect(requests("PUT") == 1)

        // The same revision again, on hosts whose caches were emptied: the store has it, so
        // nothing is uploaded; each host fetches it once more. Counted through ssh, the hosts
        // that fetch are sent control traffic only; the one without curl, the bundle.
        for host in pool.hosts { _ = try pool.output(host, "rm -f /srv/shop/.ship/bundles/*") }
        for name in try FileManager.default.contentsOfDirectory(atPath: counts.path) where name.hasPrefix("web") {
            try FileManager.default.removeItem(atPath: counts.file(name))
        }
        let (again, againEvents) = try app.ship(["deploy", "test"], environment: Self.credentials)
        let bundleBytes = Int(try #require(try client.size(of: key)))
        for host in ["web1", "web2"] {
            let bytes = try sent(to: host)
            #expect(bytes > 0 && bytes < 200_000, "\(host): \(bytes) bytes through ssh for a \(bundleBytes)-byte bundle")
        }
        let pushed = try sent(to: "web3")
        #expect(pushed > bundleBytes, "web3 got the bundle over ssh: \(pushed) bytes")
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        #expect(named(againEvents, "host_step").contains { ($0["step"] as? String)?.hasPrefix("bundle already in s3://fleet-artifacts/\(key)") == true })
        #expect(requests("PUT") == 1, "nothing uploaded the second time")
        #expect(requests("GET") == 4)

        // A tampered object (same size, other bytes): each host refuses it before unpacking and
        // gets the real bundle over ssh; the deployment still succeeds.
        let size = try #require(try client.size(of: key))
        try client.putObject(key: key, data: Data((0..<Int(size)).map { _ in UInt8.random(in: 0...255) }))
        for host in pool.hosts { _ = try pool.output(host, "rm -f /srv/shop/.ship/bundles/*") }
        let (tampered, tamperedEvents) = try app.ship(["deploy", "test"], environment: Self.credentials)
        #expect(tampered.status == 0, "\(tampered.stdout)\(tampered.stderr)")
        for host in ["web1", "web2"] {
            #expect(warnings(tamperedEvents, host).contains {
                $0.contains("the bundle fetched from the store is not the one published") && $0.contains("refused before anything was unpacked")
            }, "\(host): \(warnings(tamperedEvents, host))")
            #expect(named(tamperedEvents, "bundle_sent").filter { $0["host"] as? String == host }.count == 1)
            #expect(try pool.output(host, "ls -A /srv/shop/.ship/bundles") == "\(sha).tar.gz", "no fetched leftovers")
        }

        // The dry run says what a host would be sent: a link.
        for host in pool.hosts { _ = try pool.output(host, "rm -f /srv/shop/.ship/bundles/*") }
        let plan = try ShipperTests.ship(["deploy", "test", "--dry-run"], in: app.repo.path,
                                         environment: Self.credentials.merging(["XDG_CACHE_HOME": app.repo.directory.file(".cache")]) { $1 })
        #expect(plan.stdout.contains("a link: it fetches the bundle"), "\(plan.stdout)")

        // No credentials: exit 2 before any host changes.
        let releases = try pool.output("web1", "ls /srv/shop/releases")
        let (missing, _) = try app.ship(["deploy", "test"])
        #expect(missing.status == 2, "\(missing.stderr)")
        #expect((missing.stdout + missing.stderr).contains("needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"), "\(missing.stderr)")
        #expect(try pool.output("web1", "ls /srv/shop/releases") == releases)
    }

    /// `ship deploy` on a thread of its own: its result once `wait()` is called.
    final class Background: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private var outcome: ProcessResult?

        init(_ app: SandboxApp, _ arguments: [String]) {
            let path = app.repo.path
            let environment = ArtifactsEndToEndTests.credentials.merging(["XDG_CACHE_HOME": app.repo.directory.file(".cache")]) { $1 }
            Thread { [self] in
                outcome = try? ShipperTests.ship(arguments, in: path, environment: environment)
                done.signal()
            }.start()
        }

        func wait() throws -> ProcessResult {
            done.wait()
            return try #require(outcome)
        }
    }

    @Test("a conditional upload leaves an object already there as it is, in one PUT and in a multipart upload; every request signed as AWS checks it")
    func conditionalUpload() throws {
        let (s3, _) = try Self.store()
        let files = try TemporaryDirectory("ship-conditional")
        // Through the botocore-checking front: single and multipart uploads, GET, and a listing.
        let front = try AWSFront(upstream: s3.endpoint, instance: "i-none", directory: files)
        let client = S3Client(endpoint: front.url, bucket: "fleet-artifacts", region: "us-east-1", accessKey: "testing",
                              secretKey: "testing-secret", sessionToken: nil)
        for (name, size) in [("small", 1_000), ("large", 6 << 20)] {
            let first = files.file(name + ".1"), second = files.file(name + ".2")
            FileManager.default.createFile(atPath: first, contents: Data(repeating: 1, count: size))
            FileManager.default.createFile(atPath: second, contents: Data(repeating: 2, count: size))
            #expect(try client.upload(key: "race/\(name)", file: first, partSize: 5 << 20, ifAbsent: true), "\(name): written")
            #expect(try !client.upload(key: "race/\(name)", file: second, partSize: 5 << 20, ifAbsent: true), "\(name): the second writes nothing")
            #expect(try client.getObject(key: "race/\(name)") == Data(repeating: 1, count: size), "\(name): the first stands")
        }
        #expect(try client.list(prefix: "race/").count == 2)
        let requests = front.requests
        #expect(requests.count >= 10 && requests.allSatisfy { $0["valid"] as? Bool == true }, "\(requests.filter { $0["valid"] as? Bool != true })")
        #expect(requests.contains { ($0["path"] as? String ?? "").contains("uploads") }, "a multipart upload was made")
    }

    @Test("the store's current.json after the last host validated; lock: store makes a second controller exit 4 naming the holder; a claim made meanwhile wins over a later one; ship unlock clears the store's lock")
    func environmentState() throws {
        let (s3, client) = try Self.store()
        let pool = try SandboxPool(hosts: 2, os: ["bookworm+curl"])
        let app = try SandboxApp(pool: pool, extraEnvironment: """
                ssh: { user: deploy }
                artifacts: { store: s3://fleet-artifacts, endpoint: "\(s3.endpoint)" }
                lock: store

            """)
        // A revision with a file `slow` holds its install hook until the test lets it go.
        try app.writeAppspec("""
            version: 1
            hooks:
              install: [{ run: 'if [ -f slow ]; then touch /srv/shop/running; while [ ! -e /srv/shop/go ]; do sleep 0.1; done; fi' }]

            """)
        try app.repo.write("index.html", "v1\n")
        try app.commit("v1")
        let (first, events) = try app.ship(["deploy", "test"], environment: Self.credentials)
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let release = try #require(named(events, "deployment_finished").last?["release"] as? String)
        let deploymentId = try #require(named(events, "deployment_finished").last?["deployment_id"] as? String)
        let current = try JSONSerialization.jsonObject(with: client.getObject(key: "envs/shop/test/current.json")) as? [String: Any]
        let sha = try pool.output("web1", "ls /srv/shop/.ship/bundles").replacingOccurrences(of: ".tar.gz", with: "")
        #expect(current?["release"] as? String == release && current?["deployment_id"] as? String == deploymentId)
        #expect(current?["sha256"] as? String == sha && current?["bundle"] as? String == "bundles/shop/\(sha).tar.gz")
        #expect(current?["revision"] as? String == (try app.repo.git(["rev-parse", "HEAD"])))
        #expect(try client.size(of: "envs/shop/test/releases/\(release).json") != nil)
        #expect(try client.size(of: "envs/shop/test/lock.json") == nil, "the store's lock is released")

        // Two controllers: while the first holds the store's lock, the second exits 4 naming it
        // and touches no host.
        try app.repo.write("slow", "")
        try app.repo.write("index.html", "v2\n")
        try app.commit("v2")
        let firstController = Background(app, ["deploy", "test"])
        // web2 (role migrate) goes first; its hook says when it runs.
        let started = try pool.ssh("web2", "for i in $(seq 600); do [ -e /srv/shop/running ] && exit 0; sleep 0.1; done; exit 1")
        if started.status != 0 {
            let ended = try firstController.wait()
            throw TestFailure("the first controller's hook never ran: \(ended.status) \(ended.stdout.suffix(3000)) \(ended.stderr)")
        }
        let holder = try #require(try JSONSerialization.jsonObject(with: client.getObject(key: "envs/shop/test/lock.json")) as? [String: Any])
        let holderId = try #require(holder["deploymentId"] as? String)
        let releasesBefore = try pool.output("web1", "ls /srv/shop/releases")
        let (second, _) = try app.ship(["deploy", "test"], environment: Self.credentials)
        #expect(second.status == 4, "\(second.stdout)\(second.stderr)")
        #expect((second.stdout + second.stderr).contains("test is locked by") && (second.stdout + second.stderr).contains(holderId))
        #expect(try pool.output("web1", "ls /srv/shop/releases") == releasesBefore)

        // Meanwhile another controller (without lock: store, on another machine) claims
        // current.json: the first, finishing later, does not overwrite it and says who did.
        let other = #"{"app":"shop","environment":"test","release":"29991231000000","revision":"0000","sha256":"00","bundle":"x","deployment_id":"d-other","holder":"ci@runner-2","time":"2026-12-03T00:00:00Z"}"#
        try client.putObject(key: "envs/shop/test/current.json", data: Data(other.utf8))
        _ = try pool.output("web1", "touch /srv/shop/go; : > /dev/null")
        _ = try pool.output("web2", "touch /srv/shop/go")
        let won = try firstController.wait()
        #expect(won.status == 4, "\(won.stdout)\(won.stderr)")
        #expect((won.stdout + won.stderr).contains("was claimed meanwhile by ci@runner-2 (deployment d-other"), "\(won.stdout)\(won.stderr)")
        #expect(String(decoding: try client.getObject(key: "envs/shop/test/current.json"), as: UTF8.self) == other, "the earlier claim stands")
        #expect(try client.size(of: "envs/shop/test/lock.json") == nil)

        // A stale lock in the store: ship unlock removes it and says whose it was.
        try client.putObject(key: "envs/shop/test/lock.json", data: Data(#"{"deploymentId":"d-stale","holder":"ci@gone","started":"2026-12-01T00:00:00Z"}"#.utf8))
        let unlock = try ShipperTests.ship(["unlock", "test"], in: app.repo.path, environment: Self.credentials)
        #expect(unlock.status == 0, "\(unlock.stderr)")
        #expect(unlock.stdout.contains("s3://fleet-artifacts/envs/shop/test/lock.json: removed the lock of ci@gone (deployment d-stale"), "\(unlock.stdout)")
        #expect(try client.size(of: "envs/shop/test/lock.json") == nil)

        // A rollback to the first release: the store names it again, from its own record.
        let (rollback, rollbackEvents) = try app.ship(["rollback", "test"], environment: Self.credentials)
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        let rolledBack = try JSONSerialization.jsonObject(with: client.getObject(key: "envs/shop/test/current.json")) as? [String: Any]
        #expect(rolledBack?["release"] as? String == release && rolledBack?["sha256"] as? String == sha)
        #expect(rolledBack?["deployment_id"] as? String == named(rollbackEvents, "rollback_finished").last?["deployment_id"] as? String)
    }
}

