import Foundation
import Hooks

/// `ship status` and `ship history`: read live from the hosts' agents and journals, so every
/// controller (a laptop, a CI runner) sees the same.
public enum StatusReport {
    public struct HostStatus: Sendable {
        public var host: String
        public var reachable: Bool
        public var error: String?
        public var release: String?
        public var revision: String?
        public var lock: LockInfo?
        /// Why this host stands out: differs from the majority or from the last deployment, or
        /// was left stopped.
        public var flags: [String] = []

        /// On another release than the others, or than the last successful deployment left, or
        /// stopped by a deployment that never started it again.
        public var drifted: Bool { flags.contains { $0.hasPrefix("differs") || $0.hasPrefix("stopped") } }
    }

    public struct DeploymentRecord: Sendable {
        public var id: String
        public var kind: String
        public var environment: String?
        public var revision: String?
        public var release: String?
        public var user: String?
        public var started: String
        public var finished: String?
        public var status: String
        /// Host → what happened there.
        public var hosts: [String: String]

        public var duration: TimeInterval? {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            guard let finished, let end = formatter.date(from: finished), let start = formatter.date(from: started) else { return nil }
            return end.timeIntervalSince(start)
        }
    }

    /// Each host's state (agent installed where missing), in host order.
    static func states(config: ShipConfig, environment: Environment, agents: AgentCatalog, journalLimit: Int, measure: Bool = false,
                       makeTransport: @escaping @Sendable (Host) -> any Transport) async -> [(String, Result<AgentResult, HostError>)] {
        await AgentClient.onEachHost(of: environment, makeTransport: makeTransport) { client throws(HostError) -> AgentResult in
            try await client.ensureAgent(agents)
            var request = client.request(.state)
            request.journalLimit = journalLimit
            request.measureReleases = measure
            return try await client.require(request)
        }.map { ($0.host, $0.result) }
    }

    public static func status(config: ShipConfig, environment: Environment, agents: AgentCatalog,
                              makeTransport: @escaping @Sendable (Host) -> any Transport) async -> [HostStatus] {
        let states = await states(config: config, environment: environment, agents: agents, journalLimit: 200, makeTransport: makeTransport)
        var hosts: [HostStatus] = []
        var lastFinished: JournalEntry?
        for (host, state) in states {
            switch state {
            case .failure(let error):
                hosts.append(HostStatus(host: host, reachable: !error.unreachable, error: error.message))
            case .success(let result):
                var status = HostStatus(host: host, reachable: true, release: result.currentRelease,
                                        revision: result.currentRevision, lock: result.lock)
                // A deployment still holding the lock is running: its hosts are stopped on purpose.
                if let stopped = result.stopped, result.lock?.deploymentId != stopped.deploymentId {
                    status.flags.append("stopped by deployment \(stopped.deploymentId) (\(stopped.since)) and "
                        + (stopped.restartFailed == true ? "starting it again failed (see the journal and .ship/logs)"
                                                         : "not started again since (its run was lost)")
                        + ": deploy or roll back to start it")
                }
                hosts.append(status)
                for entry in result.journal ?? [] where entry.step == "finished" && entry.environment == environment.name {
                    if lastFinished == nil || entry.time > lastFinished!.time { lastFinished = entry }
                }
            }
        }
        let releases = hosts.compactMap(\.release)
        let counts = Dictionary(releases.map { ($0, 1) }, uniquingKeysWith: +)
        let majority = counts.max { $0.value < $1.value || ($0.value == $1.value && $0.key < $1.key) }
        for index in hosts.indices where hosts[index].error == nil {
            let release = hosts[index].release
            if let majority, counts.count > 1, release != majority.key {
                hosts[index].flags.append("differs from the majority (\(majority.key))")
            }
            if let last = lastFinished, last.status == "succeeded", let expected = last.release, release != expected {
                hosts[index].flags.append("differs from the last \(last.kind) \(last.deploymentId) (\(expected))")
            }
            if release == nil { hosts[index].flags.append("nothing deployed") }
        }
        return hosts
    }

    public static func history(config: ShipConfig, environment: Environment, agents: AgentCatalog, limit: Int,
                               makeTransport: @escaping @Sendable (Host) -> any Transport) async -> (records: [DeploymentRecord], unreachable: [String]) {
        let states = await states(config: config, environment: environment, agents: agents, journalLimit: 5000, makeTransport: makeTransport)
        var byId: [String: DeploymentRecord] = [:]
        var unreachable: [String] = []
        for (host, state) in states {
            guard case .success(let result) = state else {
                unreachable.append(host)
                continue
            }
            for entry in result.journal ?? [] where entry.environment == nil || entry.environment == environment.name {
                var record = byId[entry.deploymentId] ?? DeploymentRecord(id: entry.deploymentId, kind: entry.kind, environment: entry.environment,
                                                                          started: entry.time, status: "running", hosts: [:])
                if entry.time < record.started { record.started = entry.time }
                record.user = record.user ?? entry.user
                if entry.kind == "deploy" || entry.kind == "pull" { record.revision = record.revision ?? entry.revision }
                if entry.step == "switched" && entry.kind == "rollback" { record.revision = record.revision ?? entry.revision }
                if entry.step == "finished" {
                    record.status = entry.status ?? record.status
                    record.release = record.release ?? entry.release
                    if record.finished == nil || entry.time > record.finished! { record.finished = entry.time }
                    record.hosts[host] = entry.hostStatus ?? (entry.detail == "host failed" ? "failed" : (entry.status ?? "?"))
                } else if record.hosts[host] == nil {
                    record.hosts[host] = "unfinished"
                }
                if entry.step == "switched", record.release == nil, entry.kind == "deploy" || entry.kind == "pull" { record.release = entry.release }
                byId[entry.deploymentId] = record
            }
        }
        let records = byId.values.sorted { $0.started > $1.started }
        return (Array(records.prefix(max(0, limit))), unreachable)
    }
}
