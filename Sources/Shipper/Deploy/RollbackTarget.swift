import Hooks

/// Where `ship rollback` sends an environment: one release, complete and good on every host,
/// chosen before anything is stopped. Without a request it is the newest release good on every
/// host that is older than the newest current one, so a fleet split by a killed deployment comes
/// back together; `--to` names a release, or a revision (the newest good release of it).
public enum RollbackTarget {
    public struct HostReleases: Sendable {
        public var host: String
        public var current: String?
        public var releases: [ReleaseInfo]

        public init(host: String, current: String?, releases: [ReleaseInfo]) {
            self.host = host
            self.current = current
            self.releases = releases
        }
    }

    /// The release to go to, or why there is none (nothing changes then).
    /// `revision` is `requested` resolved to a full commit id, when it names one.
    public static func choose(requested: String?, revision: String? = nil, hosts: [HostReleases]) -> Result<String, RollbackRefusal> {
        func state(_ release: String, on host: HostReleases) -> ReleaseState? {
            host.releases.first { $0.release == release }?.state
        }
        let goodEverywhere = Set(hosts.flatMap { $0.releases.map(\.release) }).filter { release in
            hosts.allSatisfy { state(release, on: $0) == .good }
        }
        func whyNot(_ release: String) -> String {
            hosts.compactMap { host -> String? in
                guard let found = state(release, on: host) else { return "\(host.host): not on the host" }
                return found == .good ? nil : "\(host.host): \(found.rawValue)"
            }.joined(separator: ", ")
        }
        guard let requested else {
            guard let newestCurrent = hosts.compactMap(\.current).max() else {
                return .failure(RollbackRefusal(message: "no host has a current release to roll back from"))
            }
            guard let target = goodEverywhere.filter({ $0 < newestCurrent }).max() else {
                return .failure(RollbackRefusal(
                    message: "no release older than \(newestCurrent) is good on every host",
                    hint: "`ship releases` shows each host's releases and their states; `ship rollback --to RELEASE` picks one"))
            }
            return .success(target)
        }
        let known = Set(hosts.flatMap { $0.releases.map(\.release) })
        if known.contains(requested) {
            guard goodEverywhere.contains(requested) else {
                return .failure(RollbackRefusal(message: "release \(requested) is not complete and good on every host (\(whyNot(requested)))",
                                                hint: "`ship releases` shows each host's releases and their states"))
            }
            return .success(requested)
        }
        let wanted = (revision ?? requested).lowercased()
        let ofRevision = Set(hosts.flatMap { host in
            host.releases.filter { info in
                guard let full = info.revision?.lowercased() else { return false }
                return revision != nil ? full == wanted : (wanted.count >= 4 && full.hasPrefix(wanted))
            }.map(\.release)
        })
        guard !ofRevision.isEmpty else {
            return .failure(RollbackRefusal(message: "no release named \(requested), and no release of a revision \(requested), on the hosts",
                                            hint: "`ship releases` lists releases and their revisions"))
        }
        guard let target = ofRevision.intersection(goodEverywhere).max() else {
            let newest = ofRevision.max()!
            return .failure(RollbackRefusal(message: "no release of \(requested) is good on every host (newest, \(newest): \(whyNot(newest)))",
                                            hint: "`ship releases` shows each host's releases and their states"))
        }
        return .success(target)
    }
}

public struct RollbackRefusal: Error, Sendable, Equatable {
    public var message: String
    public var hint: String?

    public init(message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }
}
