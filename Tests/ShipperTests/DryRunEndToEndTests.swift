import Foundation
import Testing
@testable import Shipper

/// `ship deploy --dry-run` and `ship rollback --dry-run` on real hosts: the plan, with every host
/// left byte for byte as it was.
@Suite("dry runs on real hosts", .tags(.endToEnd), .serialized)
struct DryRunEndToEndTests {
    @Test("the plan: batches, the migrate host, hooks in order, copies and permissions, what each host is sent and what pruning removes; nothing changes on any host")
    func plan() throws {
        let pool = try SandboxPool(hosts: 2)
        for host in pool.hosts { _ = try pool.output(host, "install -d -o deploy /srv/shop /var/www /etc/shop") }
        let app = try SandboxApp(pool: pool, keepReleases: 2, extraEnvironment: "    ssh: { user: deploy }\n    batch: 1",
                                 hosts: ["{ host: web1, roles: [migrate] }", "web2"])
        try app.writeAppspec("""
            version: 0.0
            os: linux
            files:
              - { source: /, destination: /var/www/shop }
              - { source: deploy/app.conf, destination: /etc/shop }
            permissions:
              - { object: /var/www/shop/storage, mode: 750, type: [directory] }
            hooks:
              BeforeInstall:
                - { location: scripts/migrate.sh, once: true }
              ApplicationStart:
                - { location: scripts/start.sh, timeout: 30 }
            """)
        try app.repo.write("scripts/migrate.sh", "#!/bin/sh\necho migrate\n", executable: true)
        try app.repo.write("scripts/start.sh", "#!/bin/sh\necho start\n", executable: true)
        try app.repo.write("deploy/app.conf", "conf\n")
        try app.repo.write("storage/.keep", "")
        try app.repo.write("index.html", "v1\n")
        try app.commit("v1")
        func snapshot() throws -> [String] {
            try pool.hosts.map { host in
                try pool.output(host, """
                    find /srv/shop /var/www /etc/shop -printf '%p %y %s %T@ %C@ %m %u\\n' | sort; \
                    find /srv/shop /etc/shop -type f -exec sha256sum {} + | sort
                    """)
            }
        }

        // Fresh hosts: no agent, no release; the plan says so, and installs nothing.
        let fresh = try snapshot()
        let (first, firstEvents) = try app.ship(["deploy", "test", "--dry-run"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let firstPlan = try #require(named(firstEvents, "plan").first)
        let firstLines = firstPlan["lines"] as? [String] ?? []
        #expect(firstLines.contains { $0.hasPrefix("  web1: no release yet; sends the bundle (") && $0.hasSuffix("; ship's agent would be installed") },
                "\(firstLines)")
        #expect(try snapshot() == fresh, "nothing was installed, locked or written")
        #expect(try pool.output("web1", "test -e /srv/shop/.ship && echo present || echo absent") == "absent")

        #expect(try app.ship(["deploy", "test"]).result.status == 0)
        try app.repo.write("index.html", "v2\n")
        try app.commit("v2")
        // On a terminal, a real run opens with the same plan (script(1) gives it one).
        let shipPath = (productsDirectory as NSString).appendingPathComponent("ship")
        let terminal = try run("script", ["-qfec", "\(shipPath) deploy test", "/dev/null"], in: app.repo.path,
                               environment: ["XDG_CACHE_HOME": app.repo.directory.file(".cache"), "TERM": "xterm", "CI": "false"])
        #expect(terminal.status == 0, "\(terminal.stdout)\(terminal.stderr)")
        #expect(terminal.stdout.contains("plan: deploy ") && terminal.stdout.contains("  web2: on "), "\(terminal.stdout)")
        #expect(!terminal.stdout.contains("the lock is held"), "its own lock is not news")
        try app.repo.write("index.html", "v3\n")
        let v3 = try app.commit("v3")

        let before = try snapshot()
        let (dry, events) = try app.ship(["deploy", "test", "--dry-run"])
        #expect(dry.status == 0, "\(dry.stdout)\(dry.stderr)")
        #expect(try snapshot() == before, "every host byte for byte as it was: releases, current, lock, journal, copies")
        let plan = try #require(named(events, "plan").first)
        #expect(plan["revision"] as? String == v3 && plan["migrate_host"] as? String == "web1")
        #expect(plan["batches"] as? [[String]] == [["web1"], ["web2"]])
        let lines = plan["lines"] as? [String] ?? []
        let text = lines.joined(separator: "\n")
        #expect(text.contains("  batch 1/2: web1 (migrate)\n  batch 2/2: web2"), "\(text)")
        #expect(text.contains("    BeforeInstall (migrate); once, on the migrate host:\n      scripts/migrate.sh"), "\(text)")
        #expect(text.contains("    ApplicationStart (start):\n      scripts/start.sh  (timeout 30 s)"), "\(text)")
        #expect(text.contains("    files: deploy/app.conf -> /etc/shop: copied at each switch (file_exists_behavior DISALLOW)"), "\(text)")
        #expect(text.contains("    permissions: /var/www/shop/storage: mode 750 (directories below it"), "\(text)")
        let hosts = plan["hosts"] as? [[String: Any]] ?? []
        let web1 = try #require(hosts.first { $0["host"] as? String == "web1" })
        #expect((web1["sends"] as? String)?.hasPrefix("a delta of ") == true, "\(web1)")
        let releases = try pool.output("web1", "ls /srv/shop/releases").split(separator: "\n").map(String.init)
        #expect(releases.count == 2 && web1["current_release"] as? String == releases[1])
        #expect(web1["prunes"] as? [String] == [releases[0]], "keep_releases 2: the oldest goes once the new one is good")
        #expect(lines.last == "dry run: nothing was changed")

        // Plain output, and a held lock: a real run would exit 4, so does the dry run.
        _ = try pool.output("web2", #"echo '{"deploymentId":"dother","holder":"ci@runner:4242","started":"2026-01-01T00:00:00.000Z"}' > /srv/shop/.ship/lock"#)
        let lockedBefore = try snapshot()
        let locked = try ship(["deploy", "test", "--dry-run"], in: app.repo.path, environment: ["XDG_CACHE_HOME": app.repo.directory.file(".cache")])
        #expect(locked.status == 4, "\(locked.stdout)\(locked.stderr)")
        #expect(locked.stdout.contains("the lock is held by ci@runner:4242") && locked.stdout.contains("plan: deploy \(v3.prefix(12)) (v3) to test"),
                "\(locked.stdout)")
        #expect(try snapshot() == lockedBefore)
        _ = try pool.output("web2", "rm /srv/shop/.ship/lock")
        let unlocked = try snapshot()

        // Rollback: where each host would go; nothing moves.
        let (rollback, rollbackEvents) = try app.ship(["rollback", "test", "--dry-run"])
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        let rollbackPlan = try #require(named(rollbackEvents, "plan").first)
        #expect(rollbackPlan["release"] as? String == releases[0])
        #expect((rollbackPlan["lines"] as? [String] ?? []).contains { $0.hasPrefix("  web2: on \(releases[1])") && $0.hasSuffix(" -> \(releases[0])") })
        #expect(try snapshot() == unlocked)
    }
}
