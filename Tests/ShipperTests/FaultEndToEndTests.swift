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
}
