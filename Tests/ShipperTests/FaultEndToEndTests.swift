import Foundation
import Testing
@testable import Shipper

/// Failures as they happen on real hosts (issue: "the fault suite"): each leaves `current`
/// complete and serving, the lock released, and says what went wrong in plain words.
@Suite("faults on real hosts", .tags(.endToEnd), .serialized)
struct FaultEndToEndTests {
    @Test("a full disk: 'no space left' with the directory, what is free and what was needed; current untouched, the lock released")
    func fullDisk() throws {
        let pool = try SandboxPool(hosts: 1)
        // deploy_to on a small filesystem of its own, as a full data disk would be.
        _ = try pool.output("web1", "install -d -o deploy -g deploy /srv/shop && mount -t tmpfs -o size=20m,uid=2000,gid=2000 tmpfs /srv/shop")
        let app = try SandboxApp(pool: pool, extraEnvironment: "    ssh: { user: deploy }")
        try app.writeAppspec("version: 1\nhooks:\n  start: [{ run: 'echo started $SHIP_RELEASE >> $SHIP_DEPLOY_TO/shared/log/started' }]\n")
        try app.commit("v1")
        let (first, firstEvents) = try app.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let release1 = try #require(named(firstEvents, "deployment_finished").last?["release"] as? String)
        // 8 MB of zeros: a tiny bundle that does not fit once unpacked (the agent took 14 MB).
        try app.repo.write("public/big.bin", String(repeating: "\0", count: 8_000_000))
        try app.commit("v2")
        let (second, events) = try app.ship(["deploy", "test"])
        #expect(second.status == 1)
        let message = (named(events, "deployment_finished").last?["message"] as? String) ?? ""
        #expect(message.contains("no space left on device in /srv/shop/releases while unpacking release"), "\(message)")
        #expect(message.contains(" free, about 8.0 MB needed)"), "\(message)")
        #expect(try pool.output("web1", "readlink /srv/shop/current") == "releases/\(release1)")
        #expect(try pool.output("web1", "ls -A /srv/shop/releases") == release1, "no partial release left behind")
        #expect(try pool.ssh("web1", "test -e /srv/shop/.ship/lock").status == 1, "the lock is released")
    }

    @Test("no room for the agent: the preflight fails with the host's words (exit 5), never a crash on a closed pipe")
    func noRoomForTheAgent() throws {
        let pool = try SandboxPool(hosts: 1)
        _ = try pool.output("web1", "install -d -o deploy -g deploy /srv/shop && mount -t tmpfs -o size=1m,uid=2000,gid=2000 tmpfs /srv/shop")
        let app = try SandboxApp(pool: pool, extraEnvironment: "    ssh: { user: deploy }")
        try app.writeAppspec("version: 1\n")
        try app.commit("v1")
        let (deploy, events) = try app.ship(["deploy", "test"])
        #expect(deploy.status == 5, "exit 5, not 141 (SIGPIPE): \(deploy.stderr)")
        let message = (named(events, "deployment_finished").last?["message"] as? String) ?? ""
        #expect(message.contains("cannot install the agent in /srv/shop/.ship/bin") && message.contains("No space left on device"), "\(message)")
        #expect(try pool.output("web1", "ls -A /srv/shop/.ship/bin").isEmpty, "no partial agent left behind")
    }

    @Test("files www-data wrote in an old release: pruning moves the release out whole, warns in every output mode, never fails the deployment, and retries; ship releases tells states")
    func webUserFilesInOldReleases() throws {
        let pool = try SandboxPool(hosts: 1, os: ["bullseye"])
        let app = try SandboxApp(pool: pool, keepReleases: 1, extraEnvironment: "    ssh: { user: deploy }")
        // As PHP apps do: the deploy user opens a cache dir, the web server's user fills it.
        try app.writeAppspec("""
            version: 1
            hooks:
              install:
                - run: mkdir -p cache && chmod 777 cache
                - { run: 'mkdir -p cache/www && touch cache/www/compiled.php', runas: www-data }

            """)
        var deployed: [String] = []
        for version in 1...3 {
            try app.repo.write("version.txt", "v\(version)\n")
            try app.commit("v\(version)")
            let (deploy, events) = try app.ship(["deploy", "test"])
            #expect(deploy.status == 0, "pruning never fails a deployment: \(deploy.stderr)")
            deployed.append(try #require(named(events, "deployment_finished").last?["release"] as? String))
            if version == 3 {
                let warnings = named(events, "host_warning").compactMap { $0["message"] as? String }
                #expect(warnings.contains { $0.contains("cannot delete /srv/shop/.ship/trash/\(deployed[0])") && $0.contains("www-data") }, "\(warnings)")
            }
        }
        // keep_releases 1: current and the rollback target stay; the oldest left releases/ whole.
        #expect(try pool.output("web1", "ls /srv/shop/releases") == "\(deployed[1])\n\(deployed[2])")
        #expect(try pool.output("web1", "stat -c %U /srv/shop/.ship/trash/*/cache/www") == "www-data")
        // The plain output says it too, under the summary.
        try app.repo.write("version.txt", "v4\n")
        try app.commit("v4")
        let plain = try ShipperTests.ship(["deploy", "test"], in: app.repo.path, environment: ["CI": "true"])
        #expect(plain.status == 0)
        #expect(plain.stdout.contains("  warning: web1: cannot delete /srv/shop/.ship/trash/"), "\(plain.stdout)")
        // Once root gives the files back, the next prune deletes what was left (the release it
        // prunes now has www-data files of its own, and is warned about in turn).
        let stuck = Set(try pool.output("web1", "ls -A /srv/shop/.ship/trash").split(separator: "\n").map(String.init))
        #expect(stuck.count == 2)
        _ = try pool.output("web1", "chown -R deploy: /srv/shop/.ship/trash")
        try app.repo.write("version.txt", "v5\n")
        try app.commit("v5")
        let (last, lastEvents) = try app.ship(["deploy", "test"])
        #expect(last.status == 0)
        let left = Set(try pool.output("web1", "ls -A /srv/shop/.ship/trash").split(separator: "\n").map(String.init))
        #expect(left.isDisjoint(with: stuck), "retried and deleted: \(left)")
        #expect(named(lastEvents, "host_warning").count == 1)
        // ship releases: current, states, and the rollback target.
        let listing = try ShipperTests.ship(["releases", "test"], in: app.repo.path)
        #expect(listing.status == 0, "\(listing.stderr)")
        #expect(listing.stdout.contains("good") && listing.stdout.contains("current") && listing.stdout.contains("rollback target"), "\(listing.stdout)")
        let (json, _) = try app.ship(["releases", "test"])
        let target = json.stdout.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(target?["event"] as? String == "rollback_target" && target?["release"] is String)
    }
}
