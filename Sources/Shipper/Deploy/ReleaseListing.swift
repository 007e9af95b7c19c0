import Foundation
import Hooks

/// `ship releases`: every host's releases with revision, state, age and size, which one is
/// current, and where `ship rollback` would go.
public struct ReleaseListing: Sendable {
    public struct HostReleases: Sendable {
        public var host: String
        public var current: String?
        public var releases: [ReleaseInfo]
        /// Why the host could not be read.
        public var error: String?
    }

    public var hosts: [HostReleases]
    /// The release `ship rollback` (without --to) would pick, or why it would refuse.
    public var rollbackTarget: Result<String, RollbackRefusal>

    public static func read(config: ShipConfig, environment: Environment, agents: AgentCatalog,
                            makeTransport: @escaping @Sendable (Host) -> any Transport) async -> ReleaseListing {
        let states = await StatusReport.states(config: config, environment: environment, agents: agents, journalLimit: 0,
                                               measure: true, makeTransport: makeTransport)
        let hosts = states.map { host, state -> HostReleases in
            switch state {
            case .success(let result):
                HostReleases(host: host, current: result.currentRelease, releases: result.releaseInfos ?? [])
            case .failure(let error):
                HostReleases(host: host, current: nil, releases: [], error: error.message)
            }
        }
        let readable = hosts.filter { $0.error == nil }
        let target = readable.count == hosts.count
            ? RollbackTarget.choose(requested: nil, hosts: readable.map { .init(host: $0.host, current: $0.current, releases: $0.releases) })
            : .failure(RollbackRefusal(message: "not every host could be read"))
        return ReleaseListing(hosts: hosts, rollbackTarget: target)
    }

    /// Seconds since a release was made, from its name (`YYYYMMDDHHMMSS`, UTC).
    public static func age(of release: String, now: Date = Date()) -> TimeInterval? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMddHHmmss"
        return formatter.date(from: release).map { max(0, now.timeIntervalSince($0)) }
    }
}
