import Foundation
import Hooks
import Testing
@testable import Shipper

/// Collects events for assertions.
final class CollectingReporter: Reporter, @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [Event] = []

    func report(_ event: Event) { lock.withLock { collected.append(event) } }
    var events: [Event] { lock.withLock { collected } }

    /// `event: line` for hook output, in order.
    var hookLines: [String] {
        events.compactMap {
            if case .hookOutput(let event, let line) = $0.kind { return "\(event?.rawValue ?? "?"): \(line)" }
            return nil
        }
    }

    var bundlesSent: Int {
        events.filter { if case .bundleSent = $0.kind { return true } else { return false } }.count
    }

    /// Every host step said, in order.
    var steps: [String] {
        events.compactMap { if case .hostStep(let step) = $0.kind { return step } else { return nil } }
    }
}

/// The lifecycle on this machine through the local transport: a temp dir is the host.
@Suite("lifecycle over the local transport")
struct LocalLifecycleTests {
    let repo: TestRepository
    let deployTo: TemporaryDirectory

    init() throws {
        repo = try TestRepository()
        deployTo = try TemporaryDirectory("ship-host")
        try repo.write("ship.yml", """
            app: shop
            deploy_to: \(deployTo.path)/app
            keep_releases: 2
            shared:
              dirs: [files]
            environments:
              local:
                hosts: [localhost]
                env: { APP_ENV: local }

            """)
    }

    func appspec(stop: String = "echo stop $(cat REVISION)", validate: String = "echo validate $APP_ENV") throws {
        try repo.write("appspec.yml", """
            version: 1
            hooks:
              stop: [{ run: "\(stop)" }]
              install: [{ run: "echo install $SHIP_RELEASE" }]
              migrate: [{ run: "echo migrate" }]
              start: [{ run: "echo start" }]
              validate: [{ run: "\(validate)" }]

            """)
    }

    /// `wrap`: what the deployment reports to, in front of the collector (a Notifier).
    func deploy(ignoreStopFailures: Bool = false,
                wrap: (ShipConfig, Environment, CollectingReporter) -> any Reporter = { $2 }) async throws -> (DeploymentResult, CollectingReporter) {
        let config = try ConfigLoader.load(currentDirectory: repo.path)
        let reporter = CollectingReporter()
        let environment = try config.environment(named: nil)
        let deployment = Deployment(config: config, environment: environment,
                                    request: DeployRequest(ignoreStopFailures: ignoreStopFailures),
                                    agents: try testAgents(), reporter: wrap(config, environment, reporter),
                                    makeTransport: { LocalTransport(host: $0) })
        useTestBundleCache()
        return (await deployment.run(), reporter)
    }

    var current: String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: deployTo.path + "/app/current")
    }

    var releases: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: deployTo.path + "/app/releases")) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    @Test("first deploy, then a second: hooks in order, stop from the previous release, the bundle sent once, then deltas")
    func deployTwice() async throws {
        try appspec()
        let first = try repo.commitAll("one")
        let (result1, report1) = try await deploy()
        #expect(result1.status == .succeeded)
        #expect(result1.exitCode == nil)
        #expect(current == "releases/\(result1.release)")
        #expect(report1.hookLines == ["install: install \(result1.release)", "migrate: migrate", "start: start", "validate: validate local"])
        #expect(report1.bundlesSent == 1)
        #expect(try String(contentsOfFile: deployTo.path + "/app/current/REVISION", encoding: .utf8) == first + "\n")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: deployTo.path + "/app/current/files") == deployTo.path + "/app/shared/files")

        try repo.write("index.html", "two\n")
        let second = try repo.commitAll("two")
        let (result2, report2) = try await deploy()
        #expect(result2.status == .succeeded)
        #expect(result2.release > result1.release)
        #expect(report2.hookLines.first == "stop: stop \(first)")
        #expect(current == "releases/\(result2.release)")
        #expect(report2.steps.contains { $0.hasPrefix("sending bundle: a delta from release \(result1.release) (1 file changed, ") },
                "\(report2.steps)")
        #expect(!FileManager.default.fileExists(atPath: Deployment.bundleCache(app: "shop") + "/shop-\(second).tar.gz"),
                "no host needed the full bundle of the second revision, so it was never written")

        // The same revision again: the release of that revision is copied, nothing of it sent.
        let (result3, report3) = try await deploy()
        #expect(result3.status == .succeeded)
        #expect(report3.steps.contains { $0.hasPrefix("sending bundle: a delta from release \(result2.release) (0 files changed, ") },
                "\(report3.steps)")
        #expect(releases == [result2.release, result3.release], "keep_releases: 2")
    }

    @Test("a revision that cannot be packaged fails before any host changes, even when every host could take a delta")
    func unpackageableDelta() async throws {
        try appspec()
        try repo.commitAll("one")
        let (result1, _) = try await deploy()
        #expect(result1.status == .succeeded)
        try repo.write("media/video.mp4", "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n")
        try repo.commitAll("an LFS pointer")
        let (result2, report2) = try await deploy()
        #expect(result2.status == .failed)
        #expect(result2.message?.contains("media/video.mp4 at ") == true && result2.message?.contains("is a Git LFS pointer") == true,
                "\(result2.message ?? "")")
        #expect(report2.steps.isEmpty, "no host was sent anything: \(report2.steps)")
        #expect(releases == [result1.release])
    }

    /// A local HTTP server answering 200 "healthy NAME" on /ok/NAME, and on /app/NAME unless the
    /// file `page` contains "broken" (the app's own health endpoint); 503 elsewhere.
    static func healthServer(page: String = "/nonexistent") throws -> PythonHTTPServer {
        try PythonHTTPServer(handler: """
            def app_ok():
                try:
                    return "broken" not in open(sys.argv[1]).read()
                except OSError:
                    return False
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    body = ("healthy " + self.path.split("/")[-1]).encode()
                    ok = self.path.startswith("/ok/") or (self.path.startswith("/app/") and app_ok())
                    self.send_response(200 if ok else 503)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                def log_message(self, *args):
                    pass
            """, arguments: [page])
    }

    /// Sets (or replaces) one key of the environment in ship.yml.
    func environmentKey(_ key: String, _ yaml: String) throws {
        let text = try String(contentsOfFile: repo.directory.file("ship.yml"), encoding: .utf8)
        let kept = text.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.contains("    \(key):") }
        let updated = kept.joined(separator: "\n").replacingOccurrences(of: "    env: { APP_ENV: local }\n",
                                                                       with: "    env: { APP_ENV: local }\n    \(key): \(yaml)\n")
        guard updated.contains("\(key):") else { throw TestFailure("no environment to add \(key) to in ship.yml") }
        try repo.write("ship.yml", updated)
    }

    func healthCheck(_ yaml: String) throws {
        try environmentKey("health_check", yaml)
    }

    @Test("a CodeDeploy appspec's events run in CodeDeploy's in-place order, the traffic ones in their places; the outgoing release's scripts for its own events")
    func codeDeployOrder() async throws {
        let events = ["BeforeBlockTraffic", "AfterBlockTraffic", "ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart",
                      "ValidateService", "BeforeAllowTraffic", "AfterAllowTraffic"]
        // Listed out of order: the order they run in is CodeDeploy's, not the file's.
        try repo.write("appspec.yml", "version: 0.0\nos: linux\nhooks:\n"
            + events.reversed().map { "  \($0):\n    - location: scripts/log.sh\n" }.joined())
        try repo.write("scripts/log.sh", "#!/bin/sh\necho \"$LIFECYCLE_EVENT $(cat REVISION)\" >> \"$SHIP_DEPLOY_TO/events.log\"\n", executable: true)
        let first = try repo.commitAll("one")
        let (result1, _) = try await deploy()
        #expect(result1.status == .succeeded, "\(result1.message ?? "")")
        let log = deployTo.path + "/app/events.log"
        #expect(try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map { String($0.split(separator: " ")[0]) }
                == ["BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService", "BeforeAllowTraffic", "AfterAllowTraffic"],
                "a first deploy has no outgoing release")
        try FileManager.default.removeItem(atPath: log)
        try repo.write("index.html", "two\n")
        let second = try repo.commitAll("two")
        let (result2, _) = try await deploy()
        #expect(result2.status == .succeeded, "\(result2.message ?? "")")
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines == events.map { "\($0) \(["BeforeBlockTraffic", "AfterBlockTraffic", "ApplicationStop"].contains($0) ? first : second)" })
    }

    @Test("a deploy whose revision lacks a hook script, or has it not executable, stops before any host (exit 2, file:line:key)")
    func missingScript() async throws {
        try repo.write("appspec.yml", "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: scripts/start.sh\n")
        try repo.write("scripts/start.sh", "#!/bin/sh\n")
        let commit = try repo.commitAll("not executable")
        let (result, reporter) = try await deploy()
        #expect(result.exitCode == .usage)
        #expect(result.message == "appspec.yml (at \(commit.prefix(12))):5: hooks.ApplicationStart[0].location: scripts/start.sh is not executable in the revision",
                "\(result.message ?? "")")
        #expect(reporter.steps.isEmpty, "no host was touched")
        #expect(current == nil)
        try FileManager.default.removeItem(atPath: repo.directory.file("scripts/start.sh"))
        let missing = try repo.commitAll("missing")
        let (again, _) = try await deploy()
        #expect(again.message?.hasPrefix("appspec.yml (at \(missing.prefix(12))):5: hooks.ApplicationStart[0].location: scripts/start.sh is not in the revision") == true)
    }

    @Test("a files destination that overlaps deploy_to stops the deploy before any host (exit 2), with where to move deploy_to")
    func destinationInDeployTo() async throws {
        try repo.write("appspec.yml", "version: 0.0\nos: linux\nfiles:\n  - source: /\n    destination: \(deployTo.path)/app/\n")
        let commit = try repo.commitAll("overlap")
        let (result, reporter) = try await deploy()
        #expect(result.exitCode == .usage)
        #expect(result.message == "appspec.yml (at \(commit.prefix(12))):5: files[0].destination: destination \(deployTo.path)/app overlaps deploy_to "
                + "\(deployTo.path)/app, where ship keeps releases/, shared/ and current", "\(result.message ?? "")")
        #expect(result.hint?.contains("deploy_to: \(deployTo.path)/app-releases") == true)
        #expect(reporter.steps.isEmpty)
        // deploy_to/current itself is what the destination would be linked to: nothing to do.
        try repo.write("appspec.yml", "version: 0.0\nos: linux\nfiles:\n  - source: .\n    destination: \(deployTo.path)/app/current\n")
        try repo.commitAll("current")
        let (fine, _) = try await deploy()
        #expect(fine.status == .succeeded, "\(fine.message ?? "")")
    }

    @Test("notify: webhooks get deployment_started and deployment_finished as JSON with a Slack text, filtered by events; a dead one fails nothing and is said")
    func webhooks() async throws {
        let bodies = deployTo.path + "/webhook-bodies"
        let receiver = try PythonHTTPServer(handler: """
            class H(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    body = self.rfile.read(int(self.headers["Content-Length"]))
                    with open(sys.argv[1], "ab") as f:
                        f.write(self.path.encode() + b" " + body + b"\\n")
                    self.send_response(204)
                    self.end_headers()
                def log_message(self, *args):
                    pass
            """, arguments: [bodies])
        let dead = try freePort()
        try appspec()
        try environmentKey("notify", "[{ webhook: \"\(receiver.base)/all\" }, { webhook_env: SHIP_TEST_HOOK, events: [deployment_finished] }, "
            + "{ webhook: \"http://127.0.0.1:\(dead)/secret-token\" }]")
        try repo.commitAll("one")
        var notifier: Notifier?
        let (result, reporter) = try await deploy { config, environment, collector in
            let made = Notifier(config: config, environment: environment, reporter: collector,
                                variables: ["SHIP_TEST_HOOK": receiver.base + "/finished"])
            notifier = made
            return made
        }
        await notifier?.flush()
        #expect(result.status == .succeeded, "a dead webhook fails nothing: \(result.message ?? "")")
        let lines = try String(contentsOfFile: bodies, encoding: .utf8).split(separator: "\n").map(String.init)
        let posted = lines.map { line -> (path: String, object: [String: Any]) in
            let space = line.firstIndex(of: " ")!
            let object = (try? JSONSerialization.jsonObject(with: Data(line[line.index(after: space)...].utf8))) as? [String: Any] ?? [:]
            return (String(line[..<space]), object)
        }
        #expect(posted.filter { $0.path == "/all" }.map { $0.object["event"] as? String } == ["deployment_started", "deployment_finished"])
        #expect(posted.filter { $0.path == "/finished" }.map { $0.object["event"] as? String } == ["deployment_finished"])
        let finished = try #require(posted.first { $0.path == "/finished" }?.object)
        #expect(finished["status"] as? String == "succeeded" && finished["app"] as? String == "shop" && finished["environment"] as? String == "local")
        #expect(finished["release"] as? String == result.release)
        #expect((finished["text"] as? String)?.hasPrefix("shop local: deployment \(result.deploymentId) of ") == true, "\(finished)")
        let failures = reporter.events.compactMap { event -> String? in
            if case .notifyFailed(let webhook, let notified, _) = event.kind { "\(notified) \(webhook)" } else { nil }
        }
        #expect(failures == ["deployment_started http://127.0.0.1:\(dead)/…", "deployment_finished http://127.0.0.1:\(dead)/…"],
                "said, with the URL's path (its token) left out")
        _ = receiver
    }

    @Test("a health check after validate: a host that answers passes; one that does not is rolled back like a failed validate, its rollback checked too")
    func healthChecks() async throws {
        let server = try Self.healthServer(page: deployTo.path + "/app/current/index.html")
        let base = "http://127.0.0.1:\(server.port)"
        try appspec()
        try healthCheck("{ url: \"\(base)/ok/{host}\", expect_body: healthy localhost }")
        try repo.write("index.html", "one\n")
        try repo.commitAll("one")
        let (result1, report1) = try await deploy()
        #expect(result1.status == .succeeded, "\(result1.message ?? "")")
        #expect(report1.steps.contains("health check: GET \(base)/ok/localhost answered 200"), "\(report1.steps)")

        // The app's own endpoint: release two is broken, release one (rolled back to) is not.
        try healthCheck("{ url: \"\(base)/app/{host}\", retries: 1, interval: 0 }")
        try repo.write("index.html", "two, broken\n")
        try repo.commitAll("two")
        let (result2, report2) = try await deploy()
        #expect(result2.status == .rolledBack, "\(result2.message ?? "")")
        #expect(result2.message?.contains("health check GET \(base)/app/localhost failed after 2 attempts: status 503, expected 200") == true,
                "\(result2.message ?? "")")
        #expect(report2.steps.last == "health check: GET \(base)/app/localhost answered 200", "the rollback's check: \(report2.steps)")
        #expect(current == "releases/\(result1.release)")

        // A check no release passes: the rollback's check fails too, and the run says so (exit 3).
        try healthCheck("{ url: \"\(base)/ok/{host}\", expect_status: [200, 204], expect_body: unhealthy, retries: 0 }")
        try repo.write("index.html", "three\n")
        try repo.commitAll("three")
        let (result3, _) = try await deploy()
        #expect(result3.exitCode == .rollbackFailed)
        #expect(result3.message?.contains("failed after 1 attempt: status 200, but the body does not contain \"unhealthy\"") == true,
                "\(result3.message ?? "")")
        #expect(result3.message?.contains("rollback failed on localhost: rollback (health check)") == true, "\(result3.message ?? "")")
        _ = server
    }

    @Test("compression: none sends the bundle stored, uncompressed, and says so; the release is the same")
    func uncompressed() async throws {
        try appspec()
        try repo.write("ship.yml", try String(contentsOfFile: repo.directory.file("ship.yml"), encoding: .utf8)
            .replacingOccurrences(of: "keep_releases: 2\n", with: "keep_releases: 2\ncompression: none\n"))
        let text = String(repeating: "compressible text ", count: 20_000)
        try repo.write("big.txt", text)
        let commit = try repo.commitAll("one")
        let (result, report) = try await deploy()
        #expect(result.status == .succeeded, "\(result.message ?? "")")
        #expect(report.steps.contains { $0.hasPrefix("sending bundle (") && $0.hasSuffix(", uncompressed, compression: none)") }, "\(report.steps)")
        let cached = Deployment.bundleCache(app: "shop") + "/shop-\(commit).none.tar.gz"
        let size = try #require(try FileManager.default.attributesOfItem(atPath: cached)[.size] as? Int)
        #expect(size > text.utf8.count, "stored: \(size) bytes for \(text.utf8.count) of text")
        #expect(try String(contentsOfFile: deployTo.path + "/app/current/big.txt", encoding: .utf8) == text)
    }

    @Test("a failing validate rolls the host back to the release it had")
    func rollbackOnValidateFailure() async throws {
        try appspec()
        try repo.commitAll("good")
        let (good, _) = try await deploy()
        try appspec(validate: "echo broken >&2; exit 3")
        try repo.commitAll("bad")
        let (bad, report) = try await deploy()
        #expect(bad.status == .rolledBack)
        #expect(bad.exitCode == .failed)
        #expect(current == "releases/\(good.release)")
        #expect(report.hookLines.contains("validate: broken"))
        // The rollback ran stop of the failed release, then start and validate of the good one.
        #expect(report.hookLines.suffix(3) == ["stop: stop \(try repo.git(["rev-parse", "HEAD"]))", "start: start", "validate: validate local"])
    }

    @Test("a failing first deploy has nothing to roll back to: exit 3")
    func firstDeployCannotRollBack() async throws {
        try appspec(validate: "exit 1")
        try repo.commitAll("bad")
        let (result, _) = try await deploy()
        #expect(result.exitCode == .rollbackFailed)
        #expect(result.status == .failed)
    }

    @Test("a failing stop of the old release fails the host unless --ignore-stop-failures")
    func stopFailures() async throws {
        try appspec(stop: "exit 7")
        try repo.commitAll("stop is broken")
        let (first, _) = try await deploy()
        #expect(first.status == .succeeded, "no stop on a first deploy")
        try appspec()
        try repo.commitAll("fixed")
        let (blocked, _) = try await deploy()
        #expect(blocked.status == .failed)
        #expect(blocked.message?.contains("stop") == true)
        #expect(current == "releases/\(first.release)", "nothing switched")
        #expect(releases == [first.release], "the unswitched release was removed")
        let (passed, _) = try await deploy(ignoreStopFailures: true)
        #expect(passed.status == .succeeded)
        #expect(current == "releases/\(passed.release)")
    }

    @Test("a bundle with a symlink leading out of the release is refused by the agent")
    func symlinkEscape() async throws {
        try appspec()
        try FileManager.default.createSymbolicLink(atPath: repo.directory.file("passwd"), withDestinationPath: "../../../../etc/passwd")
        try repo.commitAll("escape")
        let (result, _) = try await deploy()
        #expect(result.status == .failed)
        #expect(result.message?.contains("symlink passwd points outside the release") == true, "\(result.message ?? "")")
        #expect(current == nil)
        #expect(releases.isEmpty)
    }

    /// A hostile commit's symlinks (relative to the repository root) and what refuses it.
    struct HostileBundle: CustomTestStringConvertible, Sendable {
        var name: String
        var directories: [String] = []
        var links: [(path: String, target: String)]
        var expected: String
        var testDescription: String { name }
    }

    static let hostileBundles: [HostileBundle] = [
        HostileBundle(name: "absolute target", links: [("passwd", "/etc/passwd")],
                      expected: "symlink passwd points outside the release (its target /etc/passwd is absolute)"),
        HostileBundle(name: "plain ..", links: [("up", "../../outside")],
                      expected: "symlink up points outside the release (it climbs above the release)"),
        // Read as text, t stays inside (a/b/c/d/e/f/x); followed, s is the release root and the
        // five '..' after it leave the release.
        HostileBundle(name: "a chain that only escapes once the first link is followed",
                      directories: ["a/b/c/d/e/f"],
                      links: [("a/b/c/d/e/f/s", "../../../../../.."), ("a/b/c/d/e/f/t", "s/../../../../../sentinel/keep.txt")],
                      expected: "symlink a/b/c/d/e/f/t points outside the release (it climbs above the release)"),
        HostileBundle(name: "a link loop", links: [("loop1", "loop2"), ("loop2", "loop1")],
                      expected: "points outside the release (too many levels of symbolic links)"),
        HostileBundle(name: "climbing back out of a shared dir", links: [("leak", "files/..")],
                      expected: "symlink leak points outside the release (it climbs out of the shared path files"),
        HostileBundle(name: "a shared dir reached through a symlink", directories: ["real"], links: [("files", "real")],
                      expected: "refusing the bundle: files is a symlink in the release, so the shared path files/keep cannot be linked inside it"),
    ]

    @Test("a hostile bundle is refused before anything is linked, and nothing outside the release changes", arguments: hostileBundles)
    func hostileBundle(_ bundle: HostileBundle) async throws {
        try appspec()
        try repo.write("ship.yml", """
            app: shop
            deploy_to: \(deployTo.path)/app
            shared:
              dirs: [files, files/keep]
            environments:
              local:
                hosts: [localhost]

            """.replacingOccurrences(of: "dirs: [files, files/keep]", with: bundle.name.contains("through a symlink") ? "dirs: [files/keep]" : "dirs: [files]"))
        try FileManager.default.createDirectory(atPath: deployTo.file("sentinel"), withIntermediateDirectories: true)
        try "keep me\n".write(toFile: deployTo.file("sentinel/keep.txt"), atomically: true, encoding: .utf8)
        for directory in bundle.directories {
            try repo.write(directory + "/.keep", "")
        }
        for link in bundle.links {
            try FileManager.default.createSymbolicLink(atPath: repo.directory.file(link.path), withDestinationPath: link.target)
        }
        try repo.commitAll("hostile")
        let (result, _) = try await deploy()
        #expect(result.status == .failed)
        #expect(result.message?.contains(bundle.expected) == true, "\(result.message ?? "")")
        #expect(current == nil)
        #expect(releases.isEmpty, "no release, and no hidden partial one")
        #expect(try String(contentsOfFile: deployTo.file("sentinel/keep.txt"), encoding: .utf8) == "keep me\n")
    }

    @Test("symlinks that stay inside the release deploy: chains, '..' within it, links into shared dirs")
    func benignLinks() async throws {
        try appspec()
        try repo.write("a/b/c/index.html", "hi\n")
        for (path, target) in [("a/b/up", ".."), ("home", "a/b/c/index.html"), ("chain", "a/b/up/b/c"), ("uploads", "files/2026")] {
            try FileManager.default.createSymbolicLink(atPath: repo.directory.file(path), withDestinationPath: target)
        }
        try repo.commitAll("links")
        let (result, _) = try await deploy()
        #expect(result.status == .succeeded, "\(result.message ?? "")")
        #expect(try String(contentsOfFile: deployTo.file("app/current/chain/index.html"), encoding: .utf8) == "hi\n")
    }

    @Test("an automatic rollback runs the old release's start and validate with that release's own environment")
    func rollbackEnvironment() async throws {
        // validate checks that it runs in its own release, with its own revision.
        let check = #"test \"$PWD\" = \"$SHIP_RELEASE_PATH\" && test \"$(cat REVISION)\" = \"$SHIP_REVISION\" && test ! -e FAIL && echo validate $SHIP_RELEASE $SHIP_REVISION"#
        try appspec(validate: check)
        let good = try repo.commitAll("good")
        let (first, _) = try await deploy()
        #expect(first.status == .succeeded, "\(first.message ?? "")")
        try repo.write("FAIL", "this release's validate fails\n")
        try repo.commitAll("bad")
        let (second, reporter) = try await deploy()
        #expect(second.status == .rolledBack, "the rollback itself worked: \(second.message ?? "")")
        #expect(second.exitCode == .failed, "exit 1, not 3")
        #expect(current == "releases/\(first.release)")
        #expect(reporter.hookLines.contains("validate: validate \(first.release) \(good)"))
    }

    @Test("failed releases never count toward keep_releases and go first; pruned releases leave releases/ whole")
    func failedReleasesDoNotCount() async throws {
        try appspec(validate: "test ! -e FAIL")
        try repo.commitAll("good 1")
        let (good1, _) = try await deploy()
        try repo.write("index.html", "2\n")
        try repo.commitAll("good 2")
        let (good2, _) = try await deploy()
        try repo.write("FAIL", "x\n")
        try repo.commitAll("bad 1")
        let (bad1, _) = try await deploy()
        try repo.write("index.html", "3\n")
        try repo.commitAll("bad 2")
        let (bad2, _) = try await deploy()
        #expect(bad1.status == .rolledBack && bad2.status == .rolledBack)
        #expect(releases == [good1.release, good2.release, bad1.release, bad2.release], "failed releases are kept until a prune")
        try FileManager.default.removeItem(atPath: repo.directory.file("FAIL"))
        try repo.commitAll("good 3")
        let (good3, _) = try await deploy()
        #expect(good3.status == .succeeded)
        // keep_releases 2: good 2 and good 3; the failed ones do not push good 2 out.
        #expect(releases == [good2.release, good3.release])
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: deployTo.path + "/app/.ship/trash")) ?? []).isEmpty)
        let states = try FileManager.default.contentsOfDirectory(atPath: deployTo.path + "/app/.ship/releases").sorted()
        #expect(states == [good2.release + ".json", good3.release + ".json"])
    }

    @Test("the migrate host goes first")
    func migrateHostFirst() {
        let hosts = [Host(name: "a"), Host(name: "b"), Host(name: "c", roles: ["migrate"])]
        #expect(Deployment.orderedHosts(hosts).map(\.name) == ["c", "a", "b"])
        #expect(Deployment.orderedHosts([Host(name: "a"), Host(name: "b")]).map(\.name) == ["a", "b"])
    }

    @Test("release names sort by time and never repeat")
    func releaseNames() {
        let date = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(ReleaseName.make(at: date) == "20270115080000")
        #expect(ReleaseName.make(at: date, after: ["20270115080000"]) == "20270115080001")
        #expect(ReleaseName.make(at: date, after: ["20200101000000"]) == "20270115080000")
    }
}
