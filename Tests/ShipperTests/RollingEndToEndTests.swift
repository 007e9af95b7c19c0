import Foundation
import Testing
@testable import Shipper

@Suite("rolling deployments over real ssh", .tags(.endToEnd), .serialized)
struct RollingEndToEndTests {
    @Test("batches in order, rollback of a failed batch, max_fail, status, manual rollback, history from a second clone, interruption")
    func rollingDeployments() async throws {
        let pool = try SandboxPool(hosts: 5)
        let app = try SandboxApp(pool: pool, extraEnvironment: "    batch: [1, \"50%\"]\n",
                                 hosts: ["web1", "web2", "web3", "web4", "web5"])
        try app.writeAppspec("""
            version: 1
            hooks:
              install: [{ run: "while [ -e $SHIP_DEPLOY_TO/shared/log/hold ]; do sleep 0.1; done", timeout: 60 }]
              validate: [{ run: "if [ -e $SHIP_DEPLOY_TO/shared/log/fail-broken ] && grep -q broken version.txt; then echo unhealthy; exit 1; fi" }]

            """)
        try app.repo.write("version.txt", "v1\n")
        try app.commit("v1")
        _ = try app.repo.git(["tag", "-a", "-m", "first release", "v1.0"])
        for host in pool.hosts { _ = try pool.output(host, "mkdir -p /srv/shop/shared/log") }

        // 1. Batches [1, "50%"] of 5 hosts: web1, then web2+web3, then web4+web5, each validated first.
        let (first, events1) = try app.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.split(separator: "\n").allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil },
                "every --json line parses")
        #expect(named(events1, "batch_started").compactMap { $0["hosts"] as? [String] } == [["web1"], ["web2", "web3"], ["web4", "web5"]])
        func position(_ events: [[String: Any]], _ name: String, _ host: String) -> Int? {
            events.firstIndex { $0["event"] as? String == name && $0["host"] as? String == host }
        }
        func firstEvent(_ events: [[String: Any]], _ host: String) -> Int? { events.firstIndex { $0["host"] as? String == host } }
        #expect(try #require(position(events1, "host_succeeded", "web1")) < (try #require(firstEvent(events1, "web2"))))
        for host in ["web2", "web3"] {
            #expect(try #require(position(events1, "host_succeeded", host)) < (try #require(firstEvent(events1, "web4"))))
        }
        let release1 = try #require(named(events1, "deployment_finished").last?["release"] as? String)

        // 2. A validate failure on web4: exit 1, rolled back, every host on release 1 again.
        _ = try pool.output("web4", "touch /srv/shop/shared/log/fail-broken")
        try app.repo.write("version.txt", "v2 broken\n")
        try app.commit("v2")
        let (second, events2) = try app.ship(["deploy", "test"])
        #expect(second.status == 1)
        #expect(named(events2, "deployment_finished").last?["status"] as? String == "rolled_back")
        for host in pool.hosts {
            #expect(try pool.output(host, "readlink /srv/shop/current") == "releases/\(release1)")
            #expect(try pool.ssh(host, "test -e /srv/shop/.ship/lock").status == 1)
        }

        // 3. max_fail: 1 tolerates it: web4 goes back alone, the others take the new release.
        let config = app.repo.directory.file("ship.yml")
        try (try String(contentsOfFile: config, encoding: .utf8) + "    max_fail: 1\n").write(toFile: config, atomically: true, encoding: .utf8)
        let (third, events3) = try app.ship(["deploy", "test"])
        #expect(third.status == 0, "\(third.stderr)")
        let release3 = try #require(named(events3, "deployment_finished").last?["release"] as? String)
        #expect(try pool.output("web4", "readlink /srv/shop/current") == "releases/\(release1)")
        for host in ["web1", "web2", "web3", "web5"] {
            #expect(try pool.output(host, "readlink /srv/shop/current") == "releases/\(release3)")
        }

        _ = try pool.output("web4", "rm /srv/shop/shared/log/fail-broken")

        // 4. status flags web4, and a host changed behind ship's back.
        _ = try pool.output("web2", "ln -sfn releases/\(release1) /srv/shop/.tmp-current && mv -T /srv/shop/.tmp-current /srv/shop/current")
        let (status, statusEvents) = try app.ship(["status", "test"])
        #expect(status.status == 1, "drift is a failure: \(status.stderr)")
        let flags = Dictionary(uniqueKeysWithValues: statusEvents.compactMap { event -> (String, [String])? in
            guard let host = event["host"] as? String else { return nil }
            return (host, event["flags"] as? [String] ?? [])
        })
        #expect(flags["web2"]?.isEmpty == false)
        #expect(flags["web4"]?.isEmpty == false)
        #expect(flags["web1"] == [])
        let plainStatus = try ShipperTests.ship(["status", "test"], in: app.repo.path)
        #expect(plainStatus.status == 1)
        #expect(plainStatus.stdout.contains("web2"))
        #expect(plainStatus.stdout.contains("differs from"))

        // 5. Manual rollback: --to a tag (an annotated one: the newest good release of its
        // commit); then a plain rollback, with nothing older good on every host, and --to a
        // release that failed on web4, are refused before anything changes.
        let (toRelease1, _) = try app.ship(["rollback", "test", "--to", "v1.0"])
        #expect(toRelease1.status == 0, "\(toRelease1.stderr)")
        for host in pool.hosts { #expect(try pool.output(host, "readlink /srv/shop/current") == "releases/\(release1)") }
        let (nothingOlder, olderEvents) = try app.ship(["rollback", "test"])
        #expect(nothingOlder.status == 1)
        #expect((named(olderEvents, "rollback_finished").last?["message"] as? String)?
            .contains("nothing was changed: no release older than \(release1) is good on every host") == true)
        let (notGood, notGoodEvents) = try app.ship(["rollback", "test", "--to", release3])
        #expect(notGood.status == 1)
        let refusal = (named(notGoodEvents, "rollback_finished").last?["message"] as? String) ?? ""
        #expect(refusal.contains("release \(release3) is not complete and good on every host (web4: "), "\(refusal)")
        for host in pool.hosts { #expect(try pool.output(host, "readlink /srv/shop/current") == "releases/\(release1)") }

        // 6. History from a second clone of the repository shows the same deployments.
        let clone = try TemporaryDirectory()
        _ = try run("git", ["clone", "-q", app.repo.path, clone.file("shop")])
        try FileManager.default.copyItem(atPath: config, toPath: clone.file("shop/ship.yml.local"))
        try? FileManager.default.removeItem(atPath: clone.file("shop/ship.yml"))
        try FileManager.default.moveItem(atPath: clone.file("shop/ship.yml.local"), toPath: clone.file("shop/ship.yml"))
        let fromOriginal = try ShipperTests.ship(["history", "test", "--json"], in: app.repo.path)
        let fromClone = try ShipperTests.ship(["history", "test", "--json"], in: clone.file("shop"))
        func ids(_ text: String) -> [String] {
            text.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["deployment_id"] as? String }
        }
        #expect(ids(fromOriginal.stdout).count == 4, "3 deployments and 1 rollback (refused ones change nothing)")
        #expect(ids(fromClone.stdout) == ids(fromOriginal.stdout))

        // 7. CI=true: plain lines, no escape codes.
        let ci = try ShipperTests.ship(["deploy", "test"], in: app.repo.path, environment: ["CI": "true"])
        #expect(ci.status == 0, "\(ci.stderr)")
        #expect(!ci.stdout.contains("\u{1B}"))
        #expect(ci.stdout.contains("summary: succeeded"))

        // 8. Interrupted: SIGINT while batch 1 installs: no new batch, consistent hosts, no lock, exit 130.
        try app.repo.write("version.txt", "v4\n")
        let revision = try app.commit("v4")
        for host in pool.hosts { _ = try pool.output(host, "touch /srv/shop/shared/log/hold") }
        var environment = ProcessInfo.processInfo.environment
        environment["XDG_CACHE_HOME"] = app.repo.directory.file(".cache")
        let env = environment, repoPath = app.repo.path
        let (started, signal) = AsyncStream<Void>.makeStream()
        let interrupted = Task {
            await ChildProcess.run(productsDirectory + "/ship", ["deploy", "test", "--json", "--revision", revision], input: .none,
                                   environment: env, directory: repoPath) { line in
                if line.contains("\"hook_started\"") { signal.yield() }
            }
        }
        for await _ in started { break }
        _ = try run("pkill", ["-INT", "-f", "ship deploy test --json --revision \(revision)"])
        for host in pool.hosts { _ = try pool.output(host, "rm -f /srv/shop/shared/log/hold") }
        let result = await interrupted.value
        #expect(result.status == 130)
        for host in pool.hosts {
            #expect(try pool.ssh(host, "test -e /srv/shop/.ship/lock").status == 1, "\(host): no lock left")
            #expect(try pool.ssh(host, "test -s /srv/shop/current/REVISION").status == 0, "\(host): current is a complete release")
            #expect(try pool.output(host, "cat /srv/shop/current/REVISION") != revision, "\(host): nothing switched")
        }
    }
}
