import Foundation
import Hooks
@testable import Shipper

/// An in-memory host at the Transport seam: it answers the agent protocol the way ship-agent
/// does (lock, bundles, releases, hooks, switch, prune, journal) without ssh or processes, so
/// orchestration can be driven over hundreds of hosts. Scripted failures per host and event.
final class SimulatedHost: @unchecked Sendable {
    let name: String
    private let lock = NSLock()
    var releases: [String] = []
    var current: String?
    var lockInfo: LockInfo?
    var bundles: Set<String> = []
    var records: [String: ReleaseRecord] = [:]
    var journal: [JournalEntry] = []
    var hookRuns: [(release: String, event: LifecycleEvent)] = []
    var bytesReceived = 0
    /// Agent sessions that ended, and the deployments that said `settle`.
    var sessions = 0
    var settled: Set<String> = []
    /// Events whose hooks fail on this host.
    var failing: Set<LifecycleEvent> = []
    var agentSHA: String?
    /// From the first request of this operation on, the host is unreachable (ssh exits 255).
    var lostAt: AgentOperation?
    /// From the first `run-hooks` of this event on, the host is unreachable.
    var lostAtEvent: LifecycleEvent?
    var lost = false

    /// Whether the host is gone once it receives `request` (and from then on).
    func loses(_ request: AgentRequest) -> Bool {
        if lostAt == request.operation || (request.operation == .runHooks && request.event != nil && request.event == lostAtEvent) { lost = true }
        return lost
    }
    /// A balancer host: what `traffic` requests it took, in order ("out web1", "back web1").
    var trafficLog: [String] = []
    /// Runs once when a lock request is refused: another deployment finishing meanwhile.
    var afterLockRefused: ((SimulatedHost) -> Void)?
    /// When set, each `run-hooks` takes this long and is counted in flight while it runs.
    var hookTime: (seconds: Double, counter: InFlight)?

    init(name: String) {
        self.name = name
    }

    /// Each release's state, derived as the agent derives it.
    var releaseInfos: [ReleaseInfo] {
        releases.map { name in
            let record = records[name]
            var state = record?.state ?? .good
            if state == .prepared { state = name == current ? .live : (record?.deploymentId == lockInfo?.deploymentId ? .prepared : .abandoned) }
            if state == .live && name != current { state = .unverified }
            return ReleaseInfo(release: name, revision: record?.revision, state: state)
        }
    }

    func withLock<T>(_ body: (SimulatedHost) -> T) -> T {
        lock.withLock { body(self) }
    }
}

final class SimulatedTransport: Transport {
    let host: Host
    let state: SimulatedHost

    init(host: Host, state: SimulatedHost) {
        self.host = host
        self.state = state
    }

    func close() async {}

    /// Simulated hosts hold no databases or assets: binary streams are not part of the simulation.
    func stream(_ line: ShellLine, input: TransportInput,
                onBytes: @escaping @Sendable (UnsafeRawBufferPointer?) -> Void) async -> CommandResult {
        onBytes(nil)
        return CommandResult(status: 127, stderr: "the simulated transport carries no binary streams: \(line.text)")
    }

    func run(_ line: ShellLine, input: TransportInput, onLine: @escaping @Sendable (String) -> Void) async -> CommandResult {
        if line.text.hasPrefix("echo ship-probe:uname") {   // the probe: platform, /proc, installed agent
            onLine("ship-probe:uname")
            onLine("Linux x86_64")
            onLine("ship-probe:proc")
            guard let sha = state.withLock({ $0.agentSHA }) else { return CommandResult(status: 1, stderr: "No such file") }
            onLine("\(sha)  agent")
            return CommandResult(status: 0, stderr: "")
        }
        if line.text.hasPrefix("mkdir -p ") {   // agent upload
            if case .dataThenFile(_, let path) = input, let agent = try? AgentBinary(path: path) {
                state.withLock { $0.agentSHA = agent.sha256 }
            }
            return CommandResult(status: 0, stderr: "")
        }
        if line.text.hasSuffix(" serve") { return await serve(input, onLine: onLine) }
        guard let opText = line.text.split(separator: " ").last, let operation = AgentOperation(rawValue: String(opText)) else {
            return CommandResult(status: 127, stderr: "unexpected command: \(line.text)")
        }
        var requestData = Data()
        var bundleBytes = 0
        switch input {
        case .data(let data): requestData = data
        case .dataThenFile(let data, let path):
            requestData = data
            bundleBytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        case .dataThenStream(let data, _): requestData = data
        case .none: break
        }
        guard let request = try? JSONDecoder().decode(AgentRequest.self, from: requestData.prefix { $0 != 0x0A }) else {
            return CommandResult(status: 2, stderr: "bad request")
        }
        let lost = state.withLock { host -> Bool in host.loses(request) }
        if lost { return CommandResult(status: 255, stderr: "ssh: connect to host \(host.name) port 22: Connection refused") }
        let (events, result) = state.withLock { host in respond(host, request, bundleBytes: bundleBytes) }
        for event in events + [AgentEvent(kind: .result, result: result)] {
            if let data = try? JSONEncoder().encode(event) { onLine(String(decoding: data, as: UTF8.self)) }
        }
        return CommandResult(status: result.ok ? 0 : 1, stderr: "")
    }

    /// `ship-agent serve`: request lines (a bundle's bytes after its line) answered one by one,
    /// until the controller ends the session or the host is lost.
    private func serve(_ input: TransportInput, onLine: @escaping @Sendable (String) -> Void) async -> CommandResult {
        guard case .dataThenStream(_, let source) = input else { return CommandResult(status: 2, stderr: "no session input") }
        let state = self.state
        let status: Int32 = await withCheckedContinuation { continuation in
            Thread {
                var buffer = Data()
                var skip = 0
                var status: Int32 = 0
                source.pump { chunk in
                    buffer.append(contentsOf: chunk)
                    while true {
                        if skip > 0 {
                            let count = min(skip, buffer.count)
                            buffer.removeFirst(count)
                            skip -= count
                            if skip > 0 { return true }
                        }
                        guard let newline = buffer.firstIndex(of: 0x0A) else { return true }
                        let line = buffer[buffer.startIndex..<newline]
                        buffer.removeSubrange(buffer.startIndex...newline)
                        guard let request = try? JSONDecoder().decode(AgentRequest.self, from: Data(line)) else {
                            status = 2
                            return false
                        }
                        let lost = state.withLock { host -> Bool in host.loses(request) }
                        if lost {
                            status = 255
                            return false
                        }
                        skip = Int(request.payloadBytes ?? 0)
                        let (events, result) = state.withLock { host in self.respond(host, request, bundleBytes: skip) }
                        for event in events + [AgentEvent(kind: .result, result: result)] {
                            if let data = try? JSONEncoder().encode(event) { onLine(String(decoding: data, as: UTF8.self)) }
                        }
                    }
                }
                continuation.resume(returning: status)
            }.start()
        }
        state.withLock { $0.sessions += 1 }
        return CommandResult(status: status, stderr: status == 255 ? "ssh: connect to host \(host.name) port 22: Connection refused" : "")
    }

    private func respond(_ host: SimulatedHost, _ request: AgentRequest, bundleBytes: Int) -> ([AgentEvent], AgentResult) {
        var result = AgentResult(ok: true)
        var events: [AgentEvent] = []
        switch request.operation {
        case .preflight:
            if let sha = request.bundleSHA256 { result.present = host.bundles.contains(sha) }
            result.currentRelease = host.current
            result.releases = host.releases
        case .lock:
            if let held = host.lockInfo, held.deploymentId != request.lock?.deploymentId {
                result.ok = false
                result.lock = held
                host.afterLockRefused?(host)
                host.afterLockRefused = nil
            } else {
                host.lockInfo = request.lock
                result.releases = host.releases
                result.currentRelease = host.current
                result.currentRevision = host.current.flatMap { host.records[$0]?.revision }
            }
        case .unlock:
            if let entry = request.journal {
                host.journal.append(entry)
                // As the agent does: the run's outcome on this host confirms or fails its release.
                if entry.step == "finished", let release = entry.release, host.records[release] != nil {
                    switch (entry.kind, entry.hostStatus) {
                    case ("deploy", "succeeded"?), ("rollback", "succeeded"?): host.records[release]!.state = .good
                    case ("deploy", "failed"?), ("deploy", "rolled_back"?): host.records[release]!.state = .failed
                    default: break
                    }
                }
            }
            result.lock = host.lockInfo
            if request.force == true || host.lockInfo?.deploymentId == request.lock?.deploymentId { host.lockInfo = nil }
        case .receiveBundle:
            host.bundles.insert(request.bundleSHA256 ?? "")
            host.bytesReceived += bundleBytes
        case .prepare:
            if request.payloadBytes != nil {
                if request.baseRelease == nil { host.bundles.insert(request.bundleSHA256 ?? "") }
                host.bytesReceived += bundleBytes
            }
            let release = request.release ?? ""
            host.releases.append(release)
            host.releases.sort()
            host.records[release] = ReleaseRecord(release: release, revision: request.revision ?? "", deploymentId: request.journal?.deploymentId,
                                                  appspec: request.appspec ?? .empty, bundleSHA256: request.bundleSHA256)
        case .runHooks:
            if let (seconds, counter) = host.hookTime {
                counter.enter()
                usleep(UInt32(seconds * 1_000_000))
                counter.leave()
            }
            let release = request.release ?? ""
            let event = request.event ?? .install
            for hook in host.records[release]?.appspec.hooks(for: event) ?? [] {
                host.hookRuns.append((release, event))
                // Scripted failures hit the newest release only, so a rollback to an older one succeeds.
                let failed = host.failing.contains(event) && release == host.releases.max()
                events.append(AgentEvent(kind: .hookStarted, hook: hook.summary, event: event))
                events.append(AgentEvent(kind: .hookFinished, hook: hook.summary, event: event,
                                         outcome: HookOutcome(exitStatus: failed ? 1 : 0, signal: nil, timedOut: false, duration: 0)))
                if failed {
                    result = AgentResult(ok: false, message: "\(event.rawValue) hook failed")
                    break
                }
            }
        case .switchCurrent:
            let release = request.release ?? ""
            if host.records[release]?.state == .prepared { host.records[release]!.state = .live }
            result.previousRelease = host.current
            host.current = release
            result.currentRelease = release
            result.currentRevision = host.records[release]?.revision
            if var entry = request.journal {
                entry.release = release
                entry.previousRelease = result.previousRelease
                host.journal.append(entry)
            }
        case .discard:
            host.releases.removeAll { $0 == request.release }
        case .prune:
            let keep = request.keepReleases ?? 5
            let protected = Set((request.protectedReleases ?? []) + [host.current].compactMap { $0 })
            let counted = host.releaseInfos.filter { $0.state.counts }.map(\.release)
            let newest = Set(counted.suffix(keep))
            result.pruned = host.releases.filter { !newest.contains($0) && !protected.contains($0) }
            host.releases.removeAll { result.pruned!.contains($0) }
        case .state:
            result.currentRelease = host.current
            result.currentRevision = host.current.flatMap { host.records[$0]?.revision }
            result.releases = host.releases
            result.releaseInfos = host.releaseInfos
            result.lock = host.lockInfo
            result.previousRelease = host.journal.last { $0.step == "switched" && $0.release == host.current }?.previousRelease
            result.journal = Array(host.journal.suffix(request.journalLimit ?? 0))
        case .backupDatabase, .restoreDatabase, .backupAssets, .restoreAssets:
            result = AgentResult(ok: false, message: "simulated hosts hold no databases or assets")
        case .settle:
            host.settled.insert(request.journal?.deploymentId ?? "")
        case .traffic:
            let action = request.traffic
            let entry = "\(action?.direction.rawValue ?? "?") \(action?.haproxy?.server ?? action?.environment?["SHIP_SERVER"] ?? "?")"
            host.trafficLog.append(entry)
            result.message = entry
        case .exec, .logs, .setup, .fetch:
            result = AgentResult(ok: false, message: "simulated hosts run no commands, keep no logs and reach no store")
        }
        return (events, result)
    }
}

/// A pool of simulated hosts.
final class SimulatedPool: @unchecked Sendable {
    let hosts: [Host]
    let states: [String: SimulatedHost]

    /// `others`: hosts outside the pool (balancers).
    init(count: Int, others: [String] = []) {
        hosts = (1...count).map { Host(name: "web\($0)") }
        states = Dictionary(uniqueKeysWithValues: (hosts.map(\.name) + others).map { ($0, SimulatedHost(name: $0)) })
    }

    func transport(for host: Host) -> any Transport {
        SimulatedTransport(host: host, state: states[host.name]!)
    }

    subscript(name: String) -> SimulatedHost { states[name]! }
}

/// How many hosts are busy at once across a pool, and the most there were.
final class InFlight: @unchecked Sendable {
    private let lock = NSLock()
    private var now = 0
    private(set) var most = 0

    func enter() { lock.withLock { now += 1; most = max(most, now) } }
    func leave() { lock.withLock { now -= 1 } }
    var peak: Int { lock.withLock { most } }
}
