import Foundation
import Testing
@testable import Shipper

private let recordScript = """
    #!/bin/sh
    # Records each lifecycle event on the host: order, environment, where it ran.
    set -eu
    log="$SHIP_DEPLOY_TO/shared/log"
    echo "$SHIP_EVENT" >> "$log/order"
    { env; echo "UNAME_N=$(uname -n)"; echo "PWD_P=$(pwd -P)"; } | sort > "$log/$SHIP_EVENT.env"
    echo "$SHIP_EVENT from $(cat REVISION)"

    """

private let recordingAppspec = """
    version: 1
    hooks:
      stop: [scripts/record.sh]
      install: [scripts/record.sh]
      migrate: [scripts/record.sh]
      start: [scripts/record.sh]
      validate: [scripts/record.sh]

    """

private func events(_ events: [[String: Any]], named name: String, host: String? = nil) -> [[String: Any]] {
    events.filter { $0["event"] as? String == name && (host == nil || $0["host"] as? String == host) }
}

private func finished(_ events: [[String: Any]]) -> [String: Any]? {
    events.last { $0["event"] as? String == "deployment_finished" }
}

private func environmentFile(_ text: String) -> [String: String] {
    var values: [String: String] = [:]
    for line in text.split(separator: "\n") {
        guard let equals = line.firstIndex(of: "=") else { continue }
        values[String(line[..<equals])] = String(line[line.index(after: equals)...])
    }
    return values
}

@Suite("deploy over real ssh", .tags(.endToEnd), .serialized)
struct DeployEndToEndTests {
    @Test("lifecycle on 3 hosts: layout, hook order and environment, migrate once, stop from the previous release, deltas, pruning")
    func lifecycle() throws {
        let pool = try SandboxPool(hosts: 3)
        let app = try SandboxApp(pool: pool, keepReleases: 2)
        try app.repo.write("scripts/record.sh", recordScript, executable: true)
        try app.writeAppspec(recordingAppspec)
        try app.repo.write("public/index.html", "v1\n")
        let first = try app.commit("v1")

        let (deploy1, events1) = try app.ship(["deploy", "test"])
        #expect(deploy1.status == 0, "\(deploy1.stderr)")
        let done1 = try #require(finished(events1))
        #expect(done1["status"] as? String == "succeeded")
        let release1 = try #require(done1["release"] as? String)
        let deploymentId1 = try #require(done1["deployment_id"] as? String)

        var migrations = 0
        for host in pool.hosts {
            // Host layout, CONTRACT.md section 3.
            #expect(try pool.output(host, "readlink /srv/shop/current") == "releases/\(release1)")
            #expect(try pool.output(host, "cat /srv/shop/releases/\(release1)/REVISION") == first)
            #expect(try pool.output(host, "readlink /srv/shop/releases/\(release1)/public/files") == "/srv/shop/shared/public/files")
            #expect(try pool.ssh(host, "test -d /srv/shop/shared/public/files && test -x /srv/shop/.ship/bin/ship-agent && test -s /srv/shop/.ship/journal.jsonl").status == 0)
            #expect(try pool.output(host, "hostname") == host)

            let order = try pool.output(host, "cat /srv/shop/shared/log/order").split(separator: "\n")
            migrations += order.filter { $0 == "migrate" }.count
            #expect(order.filter { $0 != "migrate" } == ["install", "start", "validate"], "no stop on a first deploy")

            let env = environmentFile(try pool.output(host, "cat /srv/shop/shared/log/install.env"))
            #expect(env["SHIP_APP"] == "shop")
            #expect(env["SHIP_ENV"] == "test")
            #expect(env["SHIP_HOST"] == host)
            #expect(env["UNAME_N"] == host)
            #expect(env["SHIP_EVENT"] == "install")
            #expect(env["SHIP_DEPLOYMENT_ID"] == deploymentId1)
            #expect(env["SHIP_RELEASE"] == release1)
            #expect(env["SHIP_RELEASE_PATH"] == "/srv/shop/releases/\(release1)")
            #expect(env["PWD_P"] == "/srv/shop/releases/\(release1)")
            #expect(env["SHIP_PREVIOUS_RELEASE_PATH"] == "")
            #expect(env["SHIP_REVISION"] == first)
            #expect(env["SHIP_DEPLOY_TO"] == "/srv/shop")
            #expect(env["LIFECYCLE_EVENT"] == "install")
            #expect(env["DEPLOYMENT_ID"] == deploymentId1)
            #expect(env["APPLICATION_NAME"] == "shop")
            #expect(env["DEPLOYMENT_GROUP_NAME"] == "test")
            #expect(env["APP_ENV"] == "test")
            #expect(env["GREETING"] == "hello world")
        }
        #expect(migrations == 1, "migrate runs exactly once in the pool")
        #expect(try pool.output("web2", "cat /srv/shop/shared/log/order").contains("migrate"), "on the host with role migrate")

        // Second deploy: stop runs the previous release's hooks.
        try app.repo.write("public/index.html", "v2\n")
        let second = try app.commit("v2")
        let (deploy2, events2) = try app.ship(["deploy", "test"])
        #expect(deploy2.status == 0, "\(deploy2.stderr)")
        let release2 = try #require(finished(events2)?["release"] as? String)
        for host in pool.hosts {
            let stopLines = events(events2, named: "hook_output", host: host).filter { $0["hook"] as? String == "stop" }
            #expect(stopLines.compactMap { $0["line"] as? String } == ["stop from \(first)"])
            let env = environmentFile(try pool.output(host, "cat /srv/shop/shared/log/stop.env"))
            #expect(env["PWD_P"] == "/srv/shop/releases/\(release1)", "stop runs in the release being replaced")
            #expect(env["SHIP_PREVIOUS_RELEASE_PATH"] == "/srv/shop/releases/\(release1)")
            #expect(try pool.output(host, "readlink /srv/shop/current") == "releases/\(release2)")
            #expect(try pool.output(host, "cat /srv/shop/current/REVISION") == second)
        }
        #expect(events(events2, named: "bundle_sent").count == 3)

        // The second deploy sent each host a delta from its release of the first: the file that
        // changed, the rest copied on the host.
        for host in pool.hosts {
            let steps = events(events2, named: "host_step", host: host).compactMap { $0["step"] as? String }
            #expect(steps.contains { $0.hasPrefix("sending bundle: a delta from release \(release1) (1 file changed, 3 copied") }, "\(steps)")
        }

        // Third deploy of the same revision: every host has a release of it, which is copied;
        // what is sent is REVISION and the tree's directories, a few hundred bytes.
        let (deploy3, events3) = try app.ship(["deploy", "test"])
        #expect(deploy3.status == 0, "\(deploy3.stderr)")
        for sent in events(events3, named: "bundle_sent") { #expect((sent["bytes"] as? Int ?? .max) < 1024, "\(sent)") }
        for host in pool.hosts {
            let steps = events(events3, named: "host_step", host: host).compactMap { $0["step"] as? String }
            #expect(steps.contains { $0.hasPrefix("sending bundle: a delta from release \(release2) (0 files changed, ") }, "\(steps)")
        }
        let release3 = try #require(finished(events3)?["release"] as? String)

        // keep_releases: 2 keeps the current release and the one before it.
        for host in pool.hosts {
            #expect(try pool.output(host, "ls /srv/shop/releases").split(separator: "\n").map(String.init) == [release2, release3])
        }
    }

    @Test("a hook past its timeout fails the host, leaves no process and does not switch; daemons and runas work")
    func timeoutsDaemonsAndRunas() throws {
        let pool = try SandboxPool(hosts: 1)
        let app = try SandboxApp(pool: pool, app: "hooks")
        let marker = "shipd-\(UUID().uuidString.prefix(6).lowercased())"
        try app.writeAppspec("""
            version: 1
            hooks:
              start: [{ run: "cp /bin/sleep /tmp/\(marker) && /tmp/\(marker) 600 & echo daemon started", timeout: 20 }]
              validate: [{ run: id -un, runas: nobody }]

            """)
        let good = try app.commit("good")
        let (deploy1, events1) = try app.ship(["deploy", "test"])
        #expect(deploy1.status == 0, "\(deploy1.stderr)")
        let start = try #require(events(events1, named: "hook_finished").first { $0["hook"] as? String == "start" })
        #expect(start["status"] as? String == "succeeded")
        #expect((start["duration"] as? Double ?? 99) < 10, "a background daemon does not hold the hook")
        #expect(try pool.ssh("web1", "pgrep -x \(marker)").status == 0, "the daemon keeps running")
        let validateOutput = events(events1, named: "hook_output").filter { $0["hook"] as? String == "validate" }
        #expect(validateOutput.compactMap { $0["line"] as? String } == ["nobody"])
        _ = try pool.ssh("web1", "pkill -x \(marker)")
        let release1 = try #require(finished(events1)?["release"] as? String)

        let sleeper = "shipt-\(UUID().uuidString.prefix(6).lowercased())"
        try app.writeAppspec("""
            version: 1
            hooks:
              install: [{ run: "cp /bin/sleep /tmp/\(sleeper) && (/tmp/\(sleeper) 300 &) && /tmp/\(sleeper) 301", timeout: 2 }]

            """)
        try app.commit("hangs")
        let (deploy2, events2) = try app.ship(["deploy", "test"])
        #expect(deploy2.status == 1)
        let install = try #require(events(events2, named: "hook_finished").first { $0["hook"] as? String == "install" })
        #expect(install["status"] as? String == "timed_out")
        #expect(finished(events2)?["status"] as? String == "failed")
        #expect(try pool.ssh("web1", "pgrep -x \(sleeper)").status == 1, "the hook's whole process group was killed")
        #expect(try pool.output("web1", "readlink /srv/hooks/current") == "releases/\(release1)")
        #expect(try pool.output("web1", "cat /srv/hooks/current/REVISION") == good)
        #expect(try pool.output("web1", "ls /srv/hooks/releases") == release1, "the failed release is removed")
        #expect(try pool.ssh("web1", "test -e /srv/hooks/.ship/lock").status == 1, "the lock is released")
    }

    @Test("preflight: a missing shared file or an unreachable host exits 5 and changes nothing")
    func preflightFailures() throws {
        let pool = try SandboxPool(hosts: 2)
        let app = try SandboxApp(pool: pool, sharedFiles: ["config/settings.local.ini"])
        try app.writeAppspec("version: 1\n")
        try app.commit()
        _ = try pool.output("web1", "mkdir -p /srv/shop/shared/config && echo x > /srv/shop/shared/config/settings.local.ini")
        let (missing, missingEvents) = try app.ship(["deploy", "test"])
        #expect(missing.status == 5)
        let failure = try #require(events(missingEvents, named: "host_failed", host: "web2").first)
        #expect((failure["message"] as? String)?.contains("/srv/shop/shared/config/settings.local.ini") == true)
        #expect(events(missingEvents, named: "host_failed", host: "web1").isEmpty)
        for host in pool.hosts {
            #expect(try pool.ssh(host, "test -e /srv/shop/releases || test -e /srv/shop/current").status == 1)
        }

        let unreachable = try SandboxApp(pool: pool, app: "other", hosts: ["web1", "nowhere.invalid"])
        try unreachable.writeAppspec("version: 1\n")
        try unreachable.commit()
        let (lost, lostEvents) = try unreachable.ship(["deploy", "test"])
        #expect(lost.status == 5)
        #expect(events(lostEvents, named: "host_failed", host: "nowhere.invalid").count == 1)
        #expect(try pool.ssh("web1", "test -e /srv/other").status == 1, "nothing was created on the reachable host")

        let check = try ShipperTests.ship(["check", "--hosts"], in: unreachable.repo.path)
        #expect(check.status == 5)
        #expect(check.stdout.contains("test web1: reachable"))
        #expect(check.stdout.contains("test nowhere.invalid: UNREACHABLE"))

        // A changed host key is refused by ssh's own checking: exit 5, naming the cause.
        let hostKey = try String(contentsOfFile: pool.directory.file("pool/known_hosts"), encoding: .utf8)
        let forged = hostKey.split(separator: "\n").map { line -> String in
            let parts = line.split(separator: " ")
            return "\(parts[0]) ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvZ6m3Xb0tqZ0C2m6gS0m8yq3Xh5rR1lYp7vT8c9dQk"
        }.joined(separator: "\n")
        let knownHosts = pool.directory.file("forged_known_hosts")
        try forged.write(toFile: knownHosts, atomically: true, encoding: .utf8)
        let config = try String(contentsOfFile: pool.sshConfig, encoding: .utf8)
            .replacingOccurrences(of: pool.directory.file("pool/known_hosts"), with: knownHosts)
        try config.write(toFile: pool.directory.file("forged_ssh_config"), atomically: true, encoding: .utf8)
        let forgedApp = try SandboxApp(pool: pool, app: "forged", hosts: ["web1"])
        try forgedApp.repo.write("ship.yml", try String(contentsOfFile: forgedApp.repo.directory.file("ship.yml"), encoding: .utf8)
            .replacingOccurrences(of: pool.sshConfig, with: pool.directory.file("forged_ssh_config")))
        try forgedApp.writeAppspec("version: 1\n")
        try forgedApp.commit()
        let (changed, changedEvents) = try forgedApp.ship(["deploy", "test"])
        #expect(changed.status == 5)
        let cause = events(changedEvents, named: "host_failed", host: "web1").first?["message"] as? String
        #expect(cause?.contains("Host key verification failed") == true, "\(cause ?? "no message")")
        #expect(try pool.ssh("web1", "test -e /srv/forged").status == 1)
    }

    @Test("a concurrent deploy exits 4 naming the holder; ship unlock removes a stale lock and says whose")
    func locking() async throws {
        let pool = try SandboxPool(hosts: 2)
        let app = try SandboxApp(pool: pool)
        try app.writeAppspec("""
            version: 1
            hooks:
              install: [{ run: "while [ ! -e $SHIP_DEPLOY_TO/shared/log/go ]; do sleep 0.1; done", timeout: 60 }]

            """)
        try app.commit()

        // Deployment A waits in its install hook until told to go.
        var env = ProcessInfo.processInfo.environment
        env["XDG_CACHE_HOME"] = app.repo.directory.file(".cache")
        let environment = env
        let repoPath = app.repo.path
        let (started, signal) = AsyncStream<Void>.makeStream()
        let first = Task {
            await ChildProcess.run(productsDirectory + "/ship", ["deploy", "test", "--json"], input: .none,
                                   environment: environment, directory: repoPath) { line in
                if line.contains("\"hook_started\"") { signal.yield() }
            }
        }
        for await _ in started { break }

        let (second, secondEvents) = try app.ship(["deploy", "test"])
        #expect(second.status == 4)
        #expect((finished(secondEvents)?["message"] as? String)?.contains("locked by") == true)

        // A third one queues with --lock-wait, as CI pipelines do, and deploys once A is done.
        let (waiting, waitSignal) = AsyncStream<Void>.makeStream()
        let third = Task {
            await ChildProcess.run(productsDirectory + "/ship", ["deploy", "test", "--json", "--lock-wait", "120"], input: .none,
                                   environment: environment, directory: repoPath) { line in
                if line.contains("\"lock_waiting\"") { waitSignal.yield() }
            }
        }
        for await _ in waiting { break }

        _ = try pool.output("web1", "mkdir -p /srv/shop/shared/log && touch /srv/shop/shared/log/go")
        _ = try pool.output("web2", "mkdir -p /srv/shop/shared/log && touch /srv/shop/shared/log/go")
        #expect(await first.value.status == 0)
        #expect(await third.value.status == 0, "the queued deployment ran after the lock was released")

        // A stale lock left by a crashed controller.
        _ = try pool.output("web2", #"printf '{"deploymentId":"dstale","holder":"ci@runner-7","started":"2026-01-01T00:00:00Z"}' > /srv/shop/.ship/lock"#)
        let (blocked, _) = try app.ship(["deploy", "test"])
        #expect(blocked.status == 4)
        let unlock = try ShipperTests.ship(["unlock", "test"], in: app.repo.path)
        #expect(unlock.status == 0)
        #expect(unlock.stdout.contains("web2: removed the lock of ci@runner-7 (deployment dstale"))
        #expect(unlock.stdout.contains("web1: not locked"))
        let (after, _) = try app.ship(["deploy", "test"])
        #expect(after.status == 0, "\(after.stderr)")
    }
}
