import Foundation
import Testing
@testable import Shipper

/// `ship sync` on real hosts: a host added to the pool gets the environment's current release
/// (no migrate), the others are not touched, and a second run changes nothing.
@Suite("ship sync on real hosts", .tags(.endToEnd), .serialized)
struct SyncEndToEndTests {
    @Test("a new host gets the current release without migrate; the others are untouched; run again, nothing happens")
    func newHost() throws {
        let pool = try SandboxPool(hosts: 3)
        let app = try SandboxApp(pool: pool, extraEnvironment: "    ssh: { user: deploy }", hosts: ["{ host: web1, roles: [migrate] }", "web2"])
        for host in pool.hosts { _ = try pool.output(host, "install -d -o deploy /srv/shop") }
        try app.writeAppspec("""
            version: 1
            hooks:
              install: [{ run: echo "install $SHIP_RELEASE" >> "$SHIP_DEPLOY_TO/hooks.log" }]
              migrate: [{ run: echo "migrate $SHIP_RELEASE" >> "$SHIP_DEPLOY_TO/hooks.log" }]
              validate: [{ run: echo "validate $SHIP_RELEASE" >> "$SHIP_DEPLOY_TO/hooks.log" }]
            """)
        try app.repo.write("index.html", "v1\n")
        try app.commit("v1")
        #expect(try app.ship(["deploy", "test"]).result.status == 0)
        try app.repo.write("index.html", "v2\n")
        let v2 = try app.commit("v2")
        let (second, events) = try app.ship(["deploy", "test"])
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
        let release = try #require(named(events, "deployment_finished").last?["release"] as? String)
        // Each host's whole state, to show sync leaves it as it was.
        func snapshot(_ host: String) throws -> String {
            try pool.output(host, "cd /srv/shop && ls releases .ship/releases && readlink current && wc -l < .ship/journal.jsonl && cat hooks.log")
        }
        let before = try ["web1", "web2"].map(snapshot)

        // web3 joins the pool.
        let yml = try String(contentsOfFile: app.repo.directory.file("ship.yml"), encoding: .utf8)
        try app.repo.write("ship.yml", yml.replacingOccurrences(of: "      - web2\n", with: "      - web2\n      - web3\n"))
        let (sync, syncEvents) = try app.ship(["sync", "test"])
        #expect(sync.status == 0, "\(sync.stdout)\(sync.stderr)")
        #expect(named(syncEvents, "deployment_started").first?["hosts"] as? [String] == ["web3"], "\(sync.stdout)")
        #expect(try pool.output("web3", "cat /srv/shop/current/REVISION") == v2)
        #expect(try pool.output("web3", "cat /srv/shop/current/index.html") == "v2")
        let web3Hooks = try pool.output("web3", "cat /srv/shop/hooks.log")
        #expect(web3Hooks.contains("install ") && web3Hooks.contains("validate ") && !web3Hooks.contains("migrate"), "\(web3Hooks)")
        #expect(try ["web1", "web2"].map(snapshot) == before, "the hosts that had the release were not touched")
        let steps = named(syncEvents, "host_step").compactMap { "\($0["host"] as? String ?? ""): \($0["step"] as? String ?? "")" }
        #expect(steps.contains("web1: has \(v2.prefix(12)) (release \(release)): untouched"), "\(steps)")
        #expect(steps.contains("web3: lacks \(v2.prefix(12)) (release \(release)): no release yet"), "\(steps)")

        // Again: nothing to do, nothing changed anywhere, no lock taken.
        let web3Before = try snapshot("web3")
        let (again, againEvents) = try app.ship(["sync", "test"])
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        #expect(named(againEvents, "deployment_started").isEmpty)
        #expect(named(againEvents, "sync_finished").first?["status"] as? String == "unchanged")
        #expect(try ["web1", "web2", "web3"].map(snapshot) == before + [web3Before])
    }
}
