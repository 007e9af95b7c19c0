import Foundation
import Testing
@testable import Shipper

/// `artifacts:` on real hosts with moto's S3 server on loopback: the controller publishes the
/// bundle once, hosts fetch it themselves with a presigned link and check its SHA-256; a host
/// without curl, or a bundle that is not the one published, gets it over ssh, said per host.
@Suite("artifacts fetched by the hosts from an S3 store", .tags(.endToEnd), .serialized)
struct ArtifactsEndToEndTests {
    static let credentials = ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret"]

    func steps(_ events: [[String: Any]], _ host: String) -> [String] {
        named(events, "host_step").filter { $0["host"] as? String == host }.compactMap { $0["step"] as? String }
    }

    func warnings(_ events: [[String: Any]], _ host: String) -> [String] {
        named(events, "host_warning").filter { $0["host"] as? String == host }.compactMap { $0["message"] as? String }
    }

    @Test("published once, one GET per host, the same SHA-256 everywhere; no curl or a tampered object: over ssh; the same bundle is not uploaded twice")
    func fetchedByHosts() throws {
        let s3 = try MotoServer()
        let client = S3Client(endpoint: s3.endpoint, bucket: "fleet-artifacts", region: "us-east-1", accessKey: "testing",
                              secretKey: "testing-secret", sessionToken: nil)
        _ = try client.send("PUT", key: "", expect: [200])
        // web1 and web2 have curl; web3 has not.
        let pool = try SandboxPool(hosts: 3, os: ["bookworm+curl", "bookworm+curl", "bookworm"])
        let app = try SandboxApp(pool: pool, extraEnvironment: """
                ssh: { user: deploy }
                artifacts: { store: s3://fleet-artifacts/ship, endpoint: "\(s3.endpoint)" }

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
        // nothing is uploaded; each host fetches it once more.
        for host in pool.hosts { _ = try pool.output(host, "rm -f /srv/shop/.ship/bundles/*") }
        let (again, againEvents) = try app.ship(["deploy", "test"], environment: Self.credentials)
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
}
