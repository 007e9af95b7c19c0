import Foundation
import Hooks

/// `ship sync`: the hosts that lack the environment's current good release get it (a host added
/// to the pool, an instance an autoscaler started, a host that failed within `max_fail`), the
/// others are not touched. The release is the newest one that is `current` and good on some
/// host; its revision is deployed to the hosts whose `current` is another revision (or none),
/// with every hook but `migrate` (the database is on that revision already), in the
/// environment's batches. Nothing to do is a success that changes nothing and takes no lock.
extension Deployment {
    ///
    /// `pinned`: the release and revision to bring hosts to, instead of the newest good one (a
    /// deployment catching up the hosts that joined while it ran).
    public func sync(to pinned: (release: String, revision: String)? = nil) async -> DeploymentResult {
        let deploymentId = ReleaseName.deploymentId()
        func done(_ status: DeploymentResult.Status, _ exit: ShipError.ExitCode?, _ message: String, hint: String? = nil) -> DeploymentResult {
            finish(status, exit: exit, id: deploymentId, release: "", message: message, hint: hint)
        }
        let hosts = Deployment.orderedHosts(environment.hosts)
        let clients = hosts.map { AgentClient(transport: makeTransport($0), deployTo: environment.deployTo) }
        let agents = self.agents
        let surveyed = await forEachHost(clients) { client throws(HostError) -> AgentResult in
            try await client.ensureAgent(agents)
            return try await client.require(client.request(.state))
        }
        var unreachable: [HostError] = []
        var currents: [(host: Host, release: String?, revision: String?)] = []
        var candidates: [ReleaseInfo] = []
        for (host, result) in zip(hosts, surveyed) {
            switch result {
            case .failure(let error):
                reporter.report(Event(host: error.host, .hostFailed(step: "sync", message: error.message)))
                unreachable.append(error)
            case .success(let state):
                let info = state.releaseInfos?.first { $0.release == state.currentRelease }
                currents.append((host, state.currentRelease, info?.revision ?? state.currentRevision))
                if let info, info.state == .good, info.revision != nil { candidates.append(info) }
            }
        }
        let newest = candidates.max(by: { $0.release < $1.release }).flatMap { info in info.revision.map { (info.release, $0) } }
        guard let (targetRelease, revision) = pinned ?? newest else {
            return done(.failed, .failed, "no host has a good release to sync from" + (unreachable.isEmpty ? "" : " (\(unreachable.count) not reached)"),
                        hint: "deploy the environment first: ship deploy \(environment.name)")
        }
        let lacking = currents.filter { $0.revision != revision }
        for current in currents where current.revision == revision {
            reporter.report(Event(host: current.host.description, .hostStep(step: "has \(revision.prefix(12)) (release \(current.release ?? "")): untouched")))
        }
        let unreached = unreachable.isEmpty ? "" : "; not reached: " + unreachable.map(\.description).joined(separator: "; ")
        guard !lacking.isEmpty else {
            let message = "every host reached runs \(revision.prefix(12)) (release \(targetRelease)): nothing to do" + unreached
            guard unreachable.isEmpty else { return done(.failed, .failed, message) }
            reporter.report(Event(.syncUnchanged(release: targetRelease, revision: revision, message: message)))
            return DeploymentResult(status: .succeeded, exitCode: nil, deploymentId: deploymentId, release: targetRelease, message: message)
        }
        for host in lacking {
            reporter.report(Event(host: host.host.description, .hostStep(step: "lacks \(revision.prefix(12)) (release \(targetRelease)): "
                + (host.release.map { "on release \($0)" + (host.revision.map { " (\($0.prefix(12)))" } ?? "") } ?? "no release yet"))))
        }
        var subset = environment
        subset.hosts = lacking.map(\.host)
        var request = self.request
        request.revision = revision
        request.sync = Dictionary(uniqueKeysWithValues: lacking.map { ($0.host.description, $0.release) })
        var deployment = Deployment(config: config, environment: subset, request: request, agents: agents, reporter: reporter,
                                    interruption: interruption, makeTransport: makeTransport)
        deployment.secrets = secrets
        var result = await deployment.run()
        if !unreachable.isEmpty {
            result.message = (result.message.map { $0 + "; " } ?? "") + "not reached: " + unreachable.map(\.description).joined(separator: "; ")
            if result.exitCode == nil {
                result.exitCode = .failed
                result.status = .failed
            }
        }
        return result
    }
}
