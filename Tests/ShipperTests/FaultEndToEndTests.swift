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
        #expect(message.contains(" free, about 7.6 MiB needed)"), "\(message)")
        #expect(try pool.output("web1", "readlink /srv/shop/current") == "releases/\(release1)")
        #expect(try pool.output("web1", "ls -A /srv/shop/releases") == release1, "no partial release left behind")
        #expect(try pool.ssh("web1", "test -e /srv/shop/.ship/lock").status == 1, "the lock is released")
    }

    @Test("a full disk while a delta copies its files from the base: said as such, nothing half-made left, current untouched")
    func fullDiskDuringDelta() throws {
        let pool = try SandboxPool(hosts: 1)
        _ = try pool.output("web1", "install -d -o deploy -g deploy /srv/shop && mount -t tmpfs -o size=34m,uid=2000,gid=2000 tmpfs /srv/shop")
        let app = try SandboxApp(pool: pool, extraEnvironment: "    ssh: { user: deploy }")
        try app.writeAppspec("version: 1\n")
        // 8 MB that barely compresses: the agent (15 MB), the release and its cached bundle take
        // about 29 MB of the 34, so a second copy of the release does not fit.
        try app.repo.write("public/media.bin", String(decoding: (0..<8_000_000).map { _ in UInt8.random(in: 32...126) }, as: UTF8.self))
        try app.repo.write("public/index.html", "v1\n")
        try app.commit("v1")
        let (first, firstEvents) = try app.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let release1 = try #require(named(firstEvents, "deployment_finished").last?["release"] as? String)
        try app.repo.write("public/index.html", "v2\n")
        try app.commit("v2")
        let (second, events) = try app.ship(["deploy", "test"])
        #expect(second.status == 1)
        let message = (named(events, "deployment_finished").last?["message"] as? String) ?? ""
        #expect(message.contains("no space left on device in /srv/shop/releases while copying release "), "\(message)")
        #expect(message.contains(" from \(release1) ("), "\(message)")
        #expect(try pool.output("web1", "readlink /srv/shop/current") == "releases/\(release1)")
        #expect(try pool.output("web1", "ls -A /srv/shop/releases") == release1, "no partial release left behind")
        #expect(try pool.ssh("web1", "test -e /srv/shop/.ship/lock").status == 1, "the lock is released")
    }

    @Test("a hostile bundle on a real host, deployed as deploy: refused before anything is linked, nothing outside the release touched")
    func hostileBundleOverSSH() throws {
        let pool = try SandboxPool(hosts: 1, os: ["bullseye"])
        let app = try SandboxApp(pool: pool, extraEnvironment: "    ssh: { user: deploy }")
        try app.writeAppspec("version: 1\n")
        // A deploy-owned file beside the releases, which the chain below would reach.
        _ = try pool.output("web1", "install -d -o deploy /srv/shop /srv/shop/sentinel && echo keep > /srv/shop/sentinel/keep.txt && chown deploy /srv/shop/sentinel/keep.txt")
        // Read as text, t stays inside (a/b/c/d/e/f/…); followed, s is the release root and the
        // '..' after it climb out to /srv/shop.
        try app.repo.write("a/b/c/d/e/f/.keep", "")
        try FileManager.default.createSymbolicLink(atPath: app.repo.directory.file("a/b/c/d/e/f/s"), withDestinationPath: "../../../../../..")
        try FileManager.default.createSymbolicLink(atPath: app.repo.directory.file("a/b/c/d/e/f/t"),
                                                   withDestinationPath: "s/../../../../../sentinel/keep.txt")
        try app.commit("hostile")
        let (deploy, events) = try app.ship(["deploy", "test"])
        #expect(deploy.status == 1)
        let message = (named(events, "deployment_finished").last?["message"] as? String) ?? ""
        #expect(message.contains("symlink a/b/c/d/e/f/t points outside the release (it climbs above the release)"), "\(message)")
        #expect(try pool.output("web1", "cat /srv/shop/sentinel/keep.txt") == "keep")
        #expect(try pool.output("web1", "ls -A /srv/shop/releases").isEmpty, "no release, no hidden partial one")
        #expect(try pool.ssh("web1", "test -e /srv/shop/current").status == 1)
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

    @Test("files www-data wrote in an old release: pruning deletes them as www-data through the runas sudoers line; a user with no such line: the release moves out whole, a warning in every output mode, never a failed deployment, and retries; ship releases tells states")
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
        // With the runas line (deploy may run the agent as www-data), www-data deletes its own
        // files in what is pruned: nothing is left behind, nothing to warn about.
        for version in 1...3 {
            try app.repo.write("version.txt", "w\(version)\n")
            try app.commit("w\(version)")
            let (deploy, events) = try app.ship(["deploy", "test"])
            #expect(deploy.status == 0, "\(deploy.stderr)")
            #expect(named(events, "host_warning").isEmpty, "\(named(events, "host_warning"))")
        }
        #expect(try pool.output("web1", "ls -A /srv/shop/.ship/trash").isEmpty)
        #expect(try pool.output("web1", "ls /srv/shop/releases | wc -l") == "2")

        // Files of a user deploy has no sudoers line for (`nobody`): only root could delete them.
        let othersFiles = "su nobody -s /bin/sh -c 'mkdir /srv/shop/current/cache/other && touch /srv/shop/current/cache/other/f'"
        var deployed: [String] = []
        for version in 1...3 {
            try app.repo.write("version.txt", "v\(version)\n")
            try app.commit("v\(version)")
            let (deploy, events) = try app.ship(["deploy", "test"])
            #expect(deploy.status == 0, "pruning never fails a deployment: \(deploy.stderr)")
            _ = try pool.output("web1", othersFiles)
            deployed.append(try #require(named(events, "deployment_finished").last?["release"] as? String))
            if version == 3 {
                let warnings = named(events, "host_warning").compactMap { $0["message"] as? String }
                #expect(warnings.contains { $0.contains("cannot delete /srv/shop/.ship/trash/\(deployed[0])") && $0.contains("root to remove them") }, "\(warnings)")
            }
        }
        // keep_releases 1: current and the rollback target stay; the oldest left releases/ whole.
        #expect(try pool.output("web1", "ls /srv/shop/releases") == "\(deployed[1])\n\(deployed[2])")
        #expect(try pool.output("web1", "stat -c %U /srv/shop/.ship/trash/*/cache/other") == "nobody")
        #expect(try pool.ssh("web1", "test -e /srv/shop/.ship/trash/*/cache/www").status == 1, "www-data's own files were deleted")
        // The plain output says it too, under the summary.
        try app.repo.write("version.txt", "v4\n")
        try app.commit("v4")
        let plain = try ShipperTests.ship(["deploy", "test"], in: app.repo.path, environment: ["CI": "true"])
        #expect(plain.status == 0)
        #expect(plain.stdout.contains("  warning: web1: cannot delete /srv/shop/.ship/trash/"), "\(plain.stdout)")
        // Once root gives the files back, the next prune deletes what was left (the release it
        // prunes now has nobody's files of its own, and is warned about in turn).
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

    /// A signal sent to `ship deploy` while one step runs on the first host (web2, the migrate host).
    struct SignalCase: CustomTestStringConvertible, Sendable {
        var signal: String
        var step: String
        var testDescription: String { "SIG\(signal) during \(step)" }
    }

    static let signalCases = ["INT", "TERM"].flatMap { signal in ["upload", "install", "migrate", "start"].map { SignalCase(signal: signal, step: $0) } }
        + ["upload", "install", "migrate", "start"].map { SignalCase(signal: "KILL", step: $0) }
        + [SignalCase(signal: "ssh-drop", step: "install")]

    @Test("a signal at each step: current complete everywhere, every host serving (its start ran last), the lock released or reported stale", arguments: signalCases)
    func signalAtEachStep(_ fault: SignalCase) async throws {
        let pool = try SandboxPool(hosts: 2)
        let app = try SandboxApp(pool: pool, extraEnvironment: "    batch: 1\n    ssh: { user: deploy }")
        // Each hook notes itself; the hook of the step under test waits for the test's go. The
        // bundle carries 1 MB of random bytes, so its upload takes a moment.
        try app.repo.write("public/random.bin", String(decoding: (0..<1_000_000).map { _ in UInt8.random(in: 32...126) }, as: UTF8.self))
        let log = "$SHIP_DEPLOY_TO/shared/log"
        func hook(_ event: String) -> String {
            // An upload is over in a moment: install waits too, so the run is still going when the signal lands.
            let waits = event == fault.step || (fault.step == "upload" && event == "install")
            let wait = waits ? " && while [ ! -e \(log)/go ]; do sleep 0.05; done" : ""
            return "{ run: 'echo \(event) $SHIP_RELEASE >> \(log)/order\(wait)' }"
        }
        try app.writeAppspec("version: 1\nhooks:\n" + ["stop", "install", "migrate", "start", "validate"].map { "  \($0): [\(hook($0))]" }.joined(separator: "\n") + "\n")
        try app.repo.write("version.txt", "v1\n")
        try app.commit("v1")
        _ = try pool.output("web1", "install -d -o deploy /srv/shop /srv/shop/shared /srv/shop/shared/log && touch /srv/shop/shared/log/go && chown deploy /srv/shop/shared/log/go")
        _ = try pool.output("web2", "install -d -o deploy /srv/shop /srv/shop/shared /srv/shop/shared/log && touch /srv/shop/shared/log/go && chown deploy /srv/shop/shared/log/go")
        let (first, _) = try app.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stderr)")
        for host in pool.hosts { _ = try pool.output(host, "rm /srv/shop/shared/log/go") }

        try app.repo.write("version.txt", "v2\n")
        let revision = try app.commit("v2")
        var environment = ProcessInfo.processInfo.environment
        environment["XDG_CACHE_HOME"] = app.repo.directory.file(".cache")
        let env = environment, repoPath = app.repo.path, step = fault.step
        let (reached, reachedStep) = AsyncStream<Void>.makeStream()
        let deployment = Task {
            await ChildProcess.run(productsDirectory + "/ship", ["deploy", "test", "--json", "--revision", revision], input: .none,
                                   environment: env, directory: repoPath) { line in
                let upload = step == "upload" && line.contains("\"host_step\"") && line.contains("sending bundle")
                if upload || (line.contains("\"hook_started\"") && line.contains("\"hook\":\"\(step)\"")) { reachedStep.yield() }
            }
        }
        for await _ in reached { break }
        if fault.signal == "ssh-drop" {
            // The first host's ssh sessions die (its sshd children for deploy), not ship.
            _ = try pool.ssh("web2", "pkill -f 'sshd: deploy'")
        } else {
            _ = try run("pkill", ["-\(fault.signal)", "-f", "ship deploy test --json --revision \(revision)"])
        }
        for host in pool.hosts { _ = try pool.output(host, "touch /srv/shop/shared/log/go") }
        let result = await deployment.value
        let expected: Int32 = switch fault.signal { case "KILL": 137; case "ssh-drop": 1; default: 130 }
        #expect(result.status == expected, "\(result.stderr)")
        // The agent on web2 finishes the step it was in after ship is gone, and the host's guard,
        // whose session ended without ship's word, starts it again once that step is over.
        for _ in 0..<400 {
            // pgrep exits 1 when none runs.
            guard try pool.ssh("web2", "pgrep -f 'ship-agent serve'").status == 0 else { break }
            try await Task.sleep(for: .milliseconds(50)) // the agents outlive ship; their exit has no event to await here
        }
        for host in pool.hosts {
            let current = try pool.output(host, "readlink /srv/shop/current")
            #expect(try pool.ssh(host, "test -s /srv/shop/current/REVISION").status == 0, "\(host): \(current) is complete")
            let order = try pool.output(host, "cat /srv/shop/shared/log/order").split(separator: "\n").map(String.init)
            let lastStopOrStart = order.last { $0.hasPrefix("stop ") || $0.hasPrefix("start ") }
            #expect(lastStopOrStart?.hasPrefix("start ") == true, "\(host) is serving: \(order)")
            #expect(lastStopOrStart == "start " + current.replacingOccurrences(of: "releases/", with: ""), "\(host) started the release it is on")
            #expect(try pool.ssh(host, "test -e /srv/shop/.ship/stopped.json").status == 1, "\(host) is settled")
        }
        if fault.signal == "KILL" && fault.step != "upload" {
            // What the guard did is in the journal.
            let journal = try pool.output("web2", "cat /srv/shop/.ship/journal.jsonl")
            #expect(journal.contains("\"step\":\"guard_restarted\""), "\(journal)")
        }
        if fault.signal == "KILL" {
            // The killed run's lock is reported, stale, with the way out.
            let (next, events) = try app.ship(["deploy", "test"])
            #expect(next.status == 4)
            let message = (named(events, "deployment_finished").last?["message"] as? String) ?? ""
            #expect(message.contains("is gone: the lock is stale"), "\(message)")
            #expect(next.stderr.contains("ship unlock test"), "\(next.stderr)")
        } else {
            for host in pool.hosts { #expect(try pool.ssh(host, "test -e /srv/shop/.ship/lock").status == 1, "\(host): lock released") }
            // web2 has role migrate and goes first; web1, in the batch never started, is untouched.
            #expect(try pool.output("web1", "ls /srv/shop/releases | wc -l") == "1", "web1 was never started")
        }
    }
}
