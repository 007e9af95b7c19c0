import Foundation
import Hooks
import Testing
@testable import Shipper

@Suite("batch plans")
struct BatchPlanTests {
    static func hosts(_ count: Int) -> [Host] { (1...count).map { Host(name: "h\($0)") } }

    @Test("sizes: counts, percentages rounded down (at least 1), the last size repeats", arguments: [
        (5, [BatchSize.count(1), .percent(50)], [1, 2, 2]),
        (8, [.count(1), .percent(50)], [1, 4, 3]),
        (10, [.percent(25)], [2, 2, 2, 2, 2]),
        (3, [.percent(10)], [1, 1, 1]),
        (7, [.count(3)], [3, 3, 1]),
        (4, [.count(10)], [4]),
        (6, [.count(1), .count(2), .percent(100)], [1, 2, 3]),
    ])
    func sizes(_ count: Int, _ sizes: [BatchSize], _ expected: [Int]) {
        let plan = BatchPlan(hosts: Self.hosts(count), spec: BatchSpec(sizes))
        #expect(plan.batches.map(\.count) == expected)
        #expect(plan.batches.flatMap { $0 } == Self.hosts(count), "every host once, in order")
    }
}

/// Orchestration over simulated hosts at the Transport seam: no ssh, no processes.
@Suite("orchestration over simulated hosts")
struct OrchestrationTests {
    let repo: TestRepository
    let pool: SimulatedPool

    init(hosts: Int = 8, batch: String = #"[1, "50%"]"#, maxFail: Int = 0) throws {
        repo = try TestRepository()
        pool = SimulatedPool(count: hosts)
        try repo.write("appspec.yml", """
            version: 1
            hooks:
              stop: [echo stop]
              install: [echo install]
              migrate: [echo migrate]
              start: [echo start]
              validate: [echo validate]

            """)
        try write(batch: batch, maxFail: maxFail)
        try repo.commitAll("v1")
    }

    func write(batch: String, maxFail: Int) throws {
        try repo.write("ship.yml", """
            app: shop
            deploy_to: /srv/shop
            environments:
              prod:
                hosts: [\(pool.hosts.map(\.name).joined(separator: ", "))]
                batch: \(batch)
                max_fail: \(maxFail)

            """)
    }

    func deploy(request: DeployRequest = DeployRequest(), interruption: Interruption = Interruption(),
                reporter: (any Reporter)? = nil) async throws -> (DeploymentResult, CollectingReporter) {
        let config = try ConfigLoader.load(currentDirectory: repo.path)
        let collector = CollectingReporter()
        useTestBundleCache()
        let pool = self.pool
        let deployment = Deployment(config: config, environment: try config.environment(named: nil), request: request,
                                    agents: try testAgents(),
                                    reporter: reporter ?? collector, interruption: interruption,
                                    makeTransport: { pool.transport(for: $0) })
        return (await deployment.run(), collector)
    }

    func currents() -> [String?] { pool.hosts.map { pool[$0.name].withLock { $0.current } } }

    @Test("max_concurrency bounds the hosts in flight in a batch of the whole pool; without it, all of them (up to 32) run at once")
    func maxConcurrency() async throws {
        let test = try OrchestrationTests(hosts: 12, batch: #""100%""#)
        let counter = InFlight()
        for host in test.pool.hosts { test.pool[host.name].withLock { $0.hookTime = (0.05, counter) } }
        let yml = try String(contentsOfFile: test.repo.directory.file("ship.yml"), encoding: .utf8)
        try test.repo.write("ship.yml", yml.replacingOccurrences(of: "    max_fail: 0\n", with: "    max_concurrency: \"25%\"\n"))
        let (bounded, _) = try await test.deploy()
        #expect(bounded.status == .succeeded)
        #expect(counter.peak <= 3 && counter.peak >= 2, "25% of 12 hosts: at most 3 at once, saw \(counter.peak)")

        let unbounded = InFlight()
        for host in test.pool.hosts { test.pool[host.name].withLock { $0.hookTime = (0.05, unbounded) } }
        try test.repo.write("ship.yml", yml)
        let (all, _) = try await test.deploy()
        #expect(all.status == .succeeded)
        #expect(unbounded.peak > 3, "without max_concurrency the batch runs wider: \(unbounded.peak)")
    }

    @Test("max_errors and min_healthy_hosts: shares of the pool that may fail before the deployment stops", arguments: [
        ("max_errors: \"25%\"", 2, true), ("max_errors: \"10%\"", 2, false), ("max_errors: 2", 2, true),
        ("min_healthy_hosts: \"75%\"", 2, true), ("min_healthy_hosts: 7", 2, false),
    ])
    func failureShares(_ setting: String, _ failing: Int, _ carriesOn: Bool) async throws {
        let test = try OrchestrationTests(hosts: 8, batch: #""100%""#)
        let yml = try String(contentsOfFile: test.repo.directory.file("ship.yml"), encoding: .utf8)
        try test.repo.write("ship.yml", yml.replacingOccurrences(of: "    max_fail: 0\n", with: "    \(setting)\n"))
        try test.repo.commitAll("limits")
        let (first, _) = try await test.deploy()
        #expect(first.status == .succeeded)
        let before = try #require(test.currents().first ?? nil)
        for host in test.pool.hosts.suffix(failing) { test.pool[host.name].withLock { $0.failing = [.validate] } }
        try test.repo.write("index.html", "v2\n")
        try test.repo.commitAll("v2")
        let (result, _) = try await test.deploy()
        let currents = test.currents()
        if carriesOn {
            // Within the limit: the failed hosts roll back alone, the others keep the release.
            #expect(result.status == .succeeded, "\(result.message ?? "")")
            #expect(currents.prefix(8 - failing).allSatisfy { $0 != before } && currents.suffix(failing).allSatisfy { $0 == before }, "\(currents)")
            #expect(result.message?.contains(setting.components(separatedBy: ":")[0]) == true, "\(result.message ?? "")")
        } else {
            // Over it: the deployment stops and every host is back on the release it had.
            #expect(result.status != .succeeded, "\(result.message ?? "")")
            #expect(currents.allSatisfy { $0 == before }, "\(currents)")
        }
    }

    @Test("batches run in order: a batch is validated before the next begins; migrate once")
    func batchesInOrder() async throws {
        let (result, reporter) = try await deploy()
        #expect(result.status == .succeeded)
        #expect(currents().allSatisfy { $0 == result.release })
        let events = reporter.events
        func firstIndex(of host: String) -> Int { events.firstIndex { $0.host == host }! }
        func succeeded(_ host: String) -> Int {
            events.firstIndex { if case .hostSucceeded = $0.kind { return $0.host == host } else { return false } }!
        }
        #expect(succeeded("web1") < firstIndex(of: "web2"), "batch 2 starts after batch 1 validated")
        for host in ["web2", "web3", "web4", "web5"] {
            #expect(succeeded(host) < firstIndex(of: "web6"), "batch 3 starts after all of batch 2 validated")
        }
        let migrations = pool.hosts.flatMap { host in pool[host.name].withLock { $0.hookRuns.filter { $0.event == .migrate } } }
        #expect(migrations.count == 1)
        #expect(pool["web1"].withLock { $0.hookRuns.map(\.event) } == [.install, .migrate, .start, .validate])
        // One agent session per host for the whole run, settled at its end.
        for host in pool.hosts {
            #expect(pool[host.name].withLock { $0.sessions } == 1, "\(host.name)")
            #expect(pool[host.name].withLock { $0.settled } == [result.deploymentId], "\(host.name)")
        }
    }

    @Test("a validate failure on the fourth host rolls every switched host back and leaves later batches untouched")
    func rollbackOnFailure() async throws {
        let (first, _) = try await deploy()
        try repo.write("index.html", "v2\n")
        try repo.commitAll("v2")
        pool["web4"].withLock { $0.failing = [.validate] }
        let (second, _) = try await deploy()
        #expect(second.status == .rolledBack)
        #expect(second.exitCode == .failed)
        #expect(currents().allSatisfy { $0 == first.release }, "every host on its previous release")
        for host in ["web6", "web7", "web8"] {
            #expect(pool[host].withLock { $0.releases } == [first.release], "\(host) untouched: the new release never reached it")
        }
        #expect(pool.hosts.allSatisfy { host in pool[host.name].withLock { $0.lockInfo == nil } })
    }

    @Test("max_fail 1 tolerates one failed host, rolled back alone; a second failure stops the deployment")
    func maxFail() async throws {
        try write(batch: "2", maxFail: 1)
        try repo.commitAll("max_fail 1")
        let (first, _) = try await deploy()
        try repo.write("index.html", "v2\n")
        try repo.commitAll("v2")
        pool["web3"].withLock { $0.failing = [.validate] }
        let (second, _) = try await deploy()
        #expect(second.status == .succeeded)
        #expect(second.exitCode == nil)
        #expect(second.message?.contains("web3") == true)
        let expected = pool.hosts.map { $0.name == "web3" ? first.release : second.release }
        #expect(currents() == expected)

        try repo.write("index.html", "v3\n")
        try repo.commitAll("v3")
        pool["web5"].withLock { $0.failing = [.validate] }
        let (third, _) = try await deploy()
        #expect(third.status == .rolledBack)
        #expect(third.exitCode == .failed)
        #expect(currents() == expected, "the third deployment left every host where it was")
    }

    @Test("an interruption starts no new batch, releases the locks and exits 130")
    func interruption() async throws {
        let interruption = Interruption()
        let collector = CollectingReporter()
        let (result, _) = try await deploy(interruption: interruption, reporter: InterruptingReporter(interruption, collector))
        #expect(result.exitCode == .interrupted)
        // The batch under way installed, but nothing switched after the signal; its release was removed.
        #expect(pool.hosts.allSatisfy { host in pool[host.name].withLock { $0.current == nil && $0.releases.isEmpty } })
        #expect(pool.hosts.dropFirst().allSatisfy { host in pool[host.name].withLock { $0.hookRuns.isEmpty } }, "no new batch started")
        #expect(pool.hosts.allSatisfy { host in pool[host.name].withLock { $0.lockInfo == nil } })
    }

    /// Signals the interruption as soon as the first batch is under way.
    final class InterruptingReporter: Reporter, @unchecked Sendable {
        let interruption: Interruption
        let inner: CollectingReporter
        init(_ interruption: Interruption, _ inner: CollectingReporter) { self.interruption = interruption; self.inner = inner }
        func report(_ event: Event) {
            inner.report(event)
            if case .batchStarted = event.kind { interruption.signal() }
        }
    }

    /// The events a host's hooks ran, as `release:event`, in order.
    func hookRuns(_ host: String) -> [String] {
        pool[host].withLock { $0.hookRuns.map { "\($0.release):\($0.event.rawValue)" } }
    }

    @Test("the first interrupt stops migrate: no migrate, the stopped host is started again on its release, and nobody claims a switch")
    func interruptBeforeMigrate() async throws {
        let (first, _) = try await deploy()
        try repo.write("index.html", "v2\n")
        try repo.commitAll("v2")
        let interruption = Interruption()
        let collector = CollectingReporter()
        let (second, _) = try await deploy(interruption: interruption, reporter: InterruptingReporter(interruption, collector))
        #expect(second.exitCode == .interrupted)
        #expect(second.message?.contains("no host switched to \(second.release)") == true, "\(second.message ?? "")")
        let runs = hookRuns("web1").dropFirst(4) // the first deployment: install, migrate, start, validate
        #expect(Array(runs) == ["\(first.release):stop", "\(second.release):install", "\(first.release):start", "\(first.release):validate"],
                "no migrate after the interrupt; the old release started again after its stop")
        #expect(currents().allSatisfy { $0 == first.release })
        #expect(collector.events.contains { $0.host == "web1" && { if case .hostRestarted(first.release) = $0.kind { true } else { false } }($0) })
        #expect(collector.events.contains { $0.host == "web1" && { if case .hostNotSwitched = $0.kind { true } else { false } }($0) })
    }

    @Test("a host whose install fails after its old release stopped is started again on that release; history tells each host's fate")
    func installFailureRestarts() async throws {
        let (first, _) = try await deploy()
        try repo.write("index.html", "v2\n")
        try repo.commitAll("v2")
        pool["web1"].withLock { $0.failing = [.install] }
        let (second, reporter) = try await deploy()
        #expect(second.status == .failed && second.exitCode == .failed)
        #expect(Array(hookRuns("web1").dropFirst(4)) == ["\(first.release):stop", "\(second.release):install",
                                                        "\(first.release):start", "\(first.release):validate"])
        #expect(reporter.events.contains { $0.host == "web1" && { if case .hostRestarted(first.release) = $0.kind { true } else { false } }($0) })
        #expect(currents().allSatisfy { $0 == first.release })
        let finals = pool.hosts.map { host in pool[host.name].withLock { $0.journal.last { $0.step == "finished" }?.hostStatus } }
        #expect(finals == ["failed"] + Array(repeating: "not_started", count: pool.hosts.count - 1))
    }

    @Test("a deployment queued behind another picks its release name, and the release it replaces, once it holds the lock")
    func queuedDeployment() async throws {
        let (first, _) = try await deploy()
        try repo.write("index.html", "v2\n")
        try repo.commitAll("v2")
        // Another deployment holds the lock; while this one waits, that one finishes, having made
        // a release named for this very second and switched every host to it.
        let other = ReleaseName.make()
        let finishOther: (SimulatedHost) -> Void = { state in
            var record = state.records[first.release]!
            record.release = other
            state.records[other] = record
            state.releases.append(other)
            state.current = other
            state.lockInfo = nil
        }
        for host in pool.hosts {
            pool[host.name].withLock { $0.lockInfo = LockInfo(deploymentId: "dother", holder: "ci@runner", started: "2026-12-03T00:00:00Z") }
        }
        // The first refusal (web1, which locks first) sees the other run end on every host.
        let pool = self.pool
        pool["web1"].withLock { web1 in
            web1.afterLockRefused = { web1 in
                finishOther(web1)
                for host in pool.hosts.dropFirst() { pool[host.name].withLock(finishOther) }
            }
        }
        let (second, _) = try await deploy(request: DeployRequest(lockWait: 300))
        #expect(second.status == .succeeded, "\(second.message ?? "")")
        #expect(second.release > other, "a new name on every host, not 'release \(other) already exists'")
        #expect(hookRuns("web1").contains("\(other):stop"), "the stop hooks of the release current when the lock was taken")
        #expect(currents().allSatisfy { $0 == second.release })
    }

    @Test("a lock left by a killed ship on this machine is reported with its age as stale, with the unlock hint")
    func staleLock() async throws {
        let dead = try #require(Int32(try run("/bin/sh", ["-c", "sh -c 'echo $$'"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        let started = Event.timestamp(Date(timeIntervalSinceNow: -3 * 3600 - 120))
        let holder = "deployer@\(ProcessInfo.processInfo.hostName)"
        pool["web3"].withLock { $0.lockInfo = LockInfo(deploymentId: "dkilled1", holder: holder, started: started, pid: dead) }
        let (result, _) = try await deploy()
        #expect(result.exitCode == .locked)
        // 3h02m, or a little more when the machine is busy with other tests.
        let message = result.message ?? ""
        #expect(message.contains("locked by \(holder) (deployment dkilled1, since \(started), 3h0")
                && message.firstMatch(of: /, 3h0[2-9]m ago\)/) != nil, "\(message)")
        #expect(result.message?.contains("its ship process \(dead) on this machine is gone: the lock is stale") == true)
        #expect(result.hint?.contains("ship unlock prod") == true)
        #expect(pool.hosts.allSatisfy { host in pool[host.name].withLock { $0.current == nil } })
        // A live holder (this test's own process) is an ordinary lock.
        pool["web3"].withLock { $0.lockInfo = LockInfo(deploymentId: "dlive", holder: holder, started: started, pid: getpid()) }
        let (live, _) = try await deploy()
        #expect(live.exitCode == .locked && live.message?.contains("stale") == false)
    }

    @Test("a host lost mid-deployment fails, and the report says what state it was left in")
    func lostHost() async throws {
        let (first, _) = try await deploy()
        try repo.write("index.html", "v2\n")
        try repo.commitAll("v2")
        pool["web3"].withLock { $0.lostAt = .runHooks }
        let (second, reporter) = try await deploy()
        #expect(second.status == .rolledBack)
        #expect(second.exitCode == .failed)
        let failure = reporter.events.compactMap { event -> String? in
            if case .hostFailed(_, let message) = event.kind, event.host == "web3" { return message }
            return nil
        }.first
        #expect(failure?.contains("Connection refused") == true)
        #expect(failure?.contains("host lost before switching: current still releases/\(first.release)") == true, "\(failure ?? "")")
        #expect(currents().allSatisfy { $0 == first.release })
    }

    @Test("scale: 500 hosts (SHIP_SCALE_HOSTS) in batches of 10%, controller time, memory, threads and descriptors printed")
    func scale() async throws {
        let environment = ProcessInfo.processInfo.environment
        let count = environment["SHIP_SCALE_HOSTS"].flatMap(Int.init) ?? 500
        let big = try OrchestrationTests(hosts: count, batch: #""10%""#)
        if let width = environment["SHIP_SCALE_CONCURRENCY"] {
            let yml = try String(contentsOfFile: big.repo.directory.file("ship.yml"), encoding: .utf8)
            try big.repo.write("ship.yml", yml.replacingOccurrences(of: "    max_fail: 0\n", with: "    max_fail: 0\n    max_concurrency: \(width)\n"))
        }
        // The process's threads and open descriptors, sampled while the deployment runs.
        let peaks = ResourcePeaks()
        var usage = rusage()
        let start = ContinuousClock.now
        let (result, reporter) = try await big.deploy()
        let elapsed = ContinuousClock.now - start
        let (threads, descriptors) = peaks.stop()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #expect(result.status == .succeeded)
        #expect(big.currents().allSatisfy { $0 == result.release })
        #expect(reporter.events.filter { if case .batchStarted = $0.kind { return true } else { return false } }.count == 10)
        print("scale: \(count) simulated hosts, 10 batches, max_concurrency \(environment["SHIP_SCALE_CONCURRENCY"] ?? "32"): \(elapsed) controller time, "
              + "peak RSS \(usage.ru_maxrss / 1024) MiB, peak \(threads) threads, peak \(descriptors) descriptors, \(reporter.events.count) events")
    }
}

/// The most threads and open descriptors this process had, sampled every 5 ms until stopped.
final class ResourcePeaks: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private var threads = 0
    private var descriptors = 0
    private let done = DispatchSemaphore(value: 0)

    init() {
        Thread { [self] in
            while !lock.withLock({ stopped }) {
                let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
                let now = status.split(separator: "\n").first { $0.hasPrefix("Threads:") }
                    .flatMap { Int($0.dropFirst("Threads:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
                lock.withLock {
                    threads = max(threads, now)
                    descriptors = max(descriptors, open)
                }
                usleep(5_000)
            }
            done.signal()
        }.start()
    }

    func stop() -> (threads: Int, descriptors: Int) {
        lock.withLock { stopped = true }
        done.wait()
        return lock.withLock { (threads, descriptors) }
    }
}

