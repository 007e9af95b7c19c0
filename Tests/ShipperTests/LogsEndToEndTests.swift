import Foundation
import Testing
@testable import Shipper

/// `ship logs` on real hosts: a deployment's hook output as the hosts logged it, matching what
/// the hooks printed, per host and event; `--follow` on a running deployment.
@Suite("ship logs on real hosts", .tags(.endToEnd), .serialized)
struct LogsEndToEndTests {
    @Test("the latest deployment's output matches what the hooks printed; --host, --event (CodeDeploy's names too), an older id; --follow until it finished")
    func logs() throws {
        let pool = try SandboxPool(hosts: 2)
        for host in pool.hosts { _ = try pool.output(host, "install -d -o deploy /srv/shop") }
        let app = try SandboxApp(pool: pool, extraEnvironment: "    ssh: { user: deploy }\n    batch: 100%",
                                 hosts: ["{ host: web1, roles: [migrate] }", "web2"])
        try app.writeAppspec("""
            version: 1
            hooks:
              install: [{ run: 'echo "install on $SHIP_HOST"; echo "second line"' }]
              migrate: [{ run: echo "migrate $(cat version.txt)" }]
              start: [{ run: 'for i in 1 2 3; do echo "tick $i $(cat version.txt)"; [ -e slow ] && sleep 1; done; true' }]
              validate: [{ run: echo "validate $SHIP_HOST" }]
            """)
        try app.repo.write("version.txt", "v1\n")
        try app.commit("v1")
        let (first, firstEvents) = try app.ship(["deploy", "test"])
        #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
        let firstId = try #require(named(firstEvents, "deployment_started").first?["deployment_id"] as? String)
        try app.repo.write("version.txt", "v2\n")
        try app.commit("v2")
        let (second, events) = try app.ship(["deploy", "test"])
        #expect(second.status == 0, "\(second.stdout)\(second.stderr)")

        // What the hooks printed, per host in the order it came.
        func printed(_ events: [[String: Any]]) -> [String: [String]] {
            named(events, "hook_output").reduce(into: [:]) { $0[$1["host"] as? String ?? "", default: []].append("\($1["hook"] as? String ?? "") \($1["line"] as? String ?? "")") }
        }
        func logged(_ arguments: [String]) throws -> (status: Int32, lines: [String: [String]]) {
            let (result, logEvents) = try app.ship(["logs", "test"] + arguments)
            let lines = named(logEvents, "log_line").reduce(into: [String: [String]]()) {
                $0[$1["host"] as? String ?? "", default: []].append("\($1["hook"] as? String ?? "") \($1["line"] as? String ?? "")")
            }
            return (result.status, lines)
        }
        let latest = try logged([])
        #expect(latest.status == 0)
        #expect(latest.lines == printed(events), "\(latest.lines)")
        #expect(latest.lines["web1"] == ["install install on web1", "install second line", "migrate migrate v2",
                                         "start tick 1 v2", "start tick 2 v2", "start tick 3 v2", "validate validate web1"])
        #expect(try logged(["--host", "web2", "--event", "ApplicationStart"]).lines == ["web2": ["start tick 1 v2", "start tick 2 v2", "start tick 3 v2"]])
        #expect(try logged([firstId, "--event", "migrate"]).lines == ["web1": ["migrate migrate v1"]], "an older deployment by its id")

        let plain = try ship(["logs", "test", "--host", "web2", "--event", "validate"], in: app.repo.path)
        #expect(plain.status == 0 && plain.stdout.hasSuffix("web2 validate | validate web2\n"), "\(plain.stdout)")
        #expect(plain.stdout.hasPrefix("== deploy "), "the deployment shown is named first: \(plain.stdout)")
        // A reader that is gone before the first line (`| true`): no crash, the output is dropped, exit 0.
        let shipPath = (productsDirectory as NSString).appendingPathComponent("ship")
        let piped = try run("bash", ["-c", "set -o pipefail; \(shipPath) logs test | true; echo \"status $?\""], in: app.repo.path)
        #expect(piped.stdout == "status 0\n" && !piped.stderr.contains("Fatal error") && !piped.stderr.contains("crashed"), "\(piped.stdout)\(piped.stderr)")
        let badEvent = try ship(["logs", "test", "--event", "restart"], in: app.repo.path)
        #expect(badEvent.status == 2 && badEvent.stderr.contains("unknown event restart"), "\(badEvent.stderr)")
        let unknown = try ship(["logs", "test", "d00000000"], in: app.repo.path)
        #expect(unknown.status == 1 && unknown.stderr.contains("no hook output of d00000000"), "\(unknown.stderr)")

        // --follow: a deployment whose start takes a few seconds, followed while it runs.
        try app.repo.write("version.txt", "v3\n")
        try app.repo.write("slow", "")
        try app.commit("v3")
        let finished = DispatchSemaphore(value: 0)
        let running = LineCollector()
        let repoPath = app.repo.path
        let cache = app.repo.directory.file(".cache")
        DispatchQueue.global().async {
            let result = try? ship(["deploy", "test", "--json"], in: repoPath, environment: ["XDG_CACHE_HOME": cache])
            running.append("\(result?.status ?? -1)")
            finished.signal()
        }
        // The first tick is in web1's log: the deployment is running; its id is the journal's last.
        _ = try pool.output("web1", "timeout 60 sh -c 'until grep -qs \"tick 1 v3\" /srv/shop/.ship/logs/*-start.log; do sleep 0.1; done'")
        let runningId = try pool.output("web1", "tail -n 1 /srv/shop/.ship/journal.jsonl | sed 's/.*\"deploymentId\":\"\\([^\"]*\\)\".*/\\1/'")
        let followed = try logged([runningId, "--follow", "--event", "start"])
        #expect(finished.wait(timeout: .now() + 120) == .success)
        #expect(running.text == "0\n", "the followed deployment succeeded")
        #expect(followed.status == 0)
        #expect(followed.lines == ["web1": ["start tick 1 v3", "start tick 2 v3", "start tick 3 v3"],
                                   "web2": ["start tick 1 v3", "start tick 2 v3", "start tick 3 v3"]], "every line, once: \(followed.lines)")
    }
}
