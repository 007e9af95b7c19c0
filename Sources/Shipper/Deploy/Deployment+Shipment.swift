import CGit2
import Foundation
import Hooks

/// What each host is sent to make the new release: a delta from a release it holds, the full
/// bundle, or nothing (the full bundle is in its cache).
extension Deployment {
    struct Shipment: Sendable {
        /// The host's bundle cache holds the full bundle.
        var fullPresent: Bool
        /// A delta from `baseRelease`, a release on the host of the delta's base revision.
        var delta: DeltaBundle?
        var baseRelease: String?
    }

    /// The release each host's delta starts from: one of the new revision when the host has it
    /// (a redeploy copies it whole), else the current release; only releases the agent sealed
    /// when it made them can be a base.
    static func deltaBase(of state: AgentResult, revision: String) -> ReleaseInfo? {
        let candidates = (state.releaseInfos ?? []).filter { $0.deltaBase == true && $0.revision != nil && $0.state != .failed }
        return candidates.last { $0.revision == revision } ?? candidates.first { $0.release == state.currentRelease }
    }

    /// Plans every host's shipment, writing one delta bundle per base revision in the bundle
    /// cache. A delta is used only when the controller's repository has the base commit and the
    /// delta is smaller than the full bundle; otherwise the host gets the full bundle.
    func shipments(for hosts: [Host], states: [AgentResult], prepared: Prepared) -> [String: Shipment] {
        let bundle = prepared.bundle
        var deltas: [String: DeltaBundle?] = [:]
        var plan: [String: Shipment] = [:]
        for (host, state) in zip(hosts, states) {
            var shipment = Shipment(fullPresent: state.present == true)
            if ProcessInfo.processInfo.environment["SHIP_FULL_BUNDLES"] != "1",
               let base = Self.deltaBase(of: state, revision: bundle.revision.commit), let baseRevision = base.revision {
                if deltas[baseRevision] == nil { deltas[baseRevision] = writeDelta(from: baseRevision, prepared: prepared) }
                if let delta = deltas[baseRevision] ?? nil {
                    shipment.delta = delta
                    shipment.baseRelease = base.release
                }
            }
            plan[host.description] = shipment
        }
        return plan
    }

    private func writeDelta(from base: String, prepared: Prepared) -> DeltaBundle? {
        let bundle = prepared.bundle
        guard let repository = try? GitRepository.open(containing: config.directory), (try? repository.lookupCommit(base)).map({ git_commit_free($0); return true }) == true else { return nil }
        let path = Deployment.bundleCache(app: config.app) + "/\(config.app)-\(base.prefix(12))-\(bundle.revision.commit).delta.tar.gz"
        guard let delta = try? BundleWriter.writeDelta(repository: repository, base: base, revision: bundle.revision, to: path,
                                                       level: environment.compression.level) else {
            unlink(path)
            return nil
        }
        guard delta.bundle.bytes < bundle.bytes else {
            unlink(path)
            return nil
        }
        return delta
    }
}
