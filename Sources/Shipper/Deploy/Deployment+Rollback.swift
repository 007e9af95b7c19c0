import Foundation
import Hooks

/// Rolling back hosts that switched, and pruning after success.
extension Deployment {
    // MARK: - Rollback and pruning

    /// Rolls switched hosts back: `stop` of the failed release (best effort), switch back,
    /// `start` and `validate` of the release they had. Returns the hosts whose rollback failed.
    func rollBack(_ hosts: [(client: AgentClient, previous: String?)], context: HostContext) async -> [HostError] {
        var failures: [HostError] = []
        for (client, previous) in hosts {
            let host = client.transport.host.description
            guard let previous else {
                let error = HostError(host: host, step: "rollback", message: "no earlier release to return to (first deploy)", unreachable: false)
                reporter.report(Event(host: host, .hostFailed(step: "rollback", message: error.message)))
                failures.append(error)
                continue
            }
            let env = hookEnvironment(client, context: context, previous: previous)
            await leaveRotation(client, release: context.release, env: env, context: context)
            _ = try? await runHooks(client, release: context.release, event: .stop, env: env, context: context) // best effort, as the contract says
            var step = "rollback"
            do throws(HostError) {
                var switchRequest = client.request(.switchCurrent)
                switchRequest.release = previous
                switchRequest.journal = journalEntry(context, step: "switched", kind: "rollback")
                _ = try await client.require(switchRequest)
                reporter.report(Event(host: host, .hostSwitched(release: previous, previous: context.release)))
                try await runHooks(client, release: previous, event: .start, env: env, context: context)
                try await runHooks(client, release: previous, event: .validate, env: env, context: context, settles: true)
                try await checkAndPutBack(client, release: previous, env: env, context: context, step: &step) { "rollback (\($0))" }
                reporter.report(Event(host: host, .hostRolledBack(release: previous)))
            } catch {
                reporter.report(Event(host: host, .hostFailed(step: step, message: error.message)))
                failures.append(HostError(host: host, step: step, message: error.message, unreachable: error.unreachable, hint: error.hint))
            }
        }
        return failures
    }

    /// A switched host about to be rolled back leaves the balancer's rotation first, with the
    /// block-traffic hooks of the release it leaves (best effort, as its `stop`); if it cannot,
    /// the rollback goes on (the host serves that release meanwhile), said as a warning.
    func leaveRotation(_ client: AgentClient, release: String, env: [String: String], context: HostContext) async {
        let host = client.transport.host
        if mayHaveHooks(release, .beforeBlockTraffic, context: context) {
            _ = try? await runHooks(client, release: release, event: .beforeBlockTraffic, env: env, context: context)
        }
        if let traffic = context.traffic {
            do {
                try await traffic.takeOut(host)
            } catch {
                reporter.report(Event(host: host.description, .hostWarning(message: "\(error.message); rolling back while it is in rotation")))
            }
        }
        if mayHaveHooks(release, .afterBlockTraffic, context: context) {
            _ = try? await runHooks(client, release: release, event: .afterBlockTraffic, env: env, context: context)
        }
    }

    /// The end of a run with `traffic:`: the hosts it took out and could not bring back, each
    /// said (they stay out: their app may be down), and a line for the result's message.
    func reportOutOfRotation(_ context: HostContext, hosts: [Host]) async -> String? {
        guard let traffic = context.traffic else { return nil }
        let out = await traffic.hostsOut(order: hosts)
        guard !out.isEmpty else { return nil }
        for host in out {
            reporter.report(Event(host: host.description, .hostWarning(
                message: "left out of rotation (traffic: \(environment.traffic?.name ?? "")): it did not come back up; put it back once it serves")))
        }
        return "out of rotation: " + out.map(\.description).joined(separator: ", ")
    }

    func prune(_ client: AgentClient, previous: String?, context: HostContext) async {
        guard !interruption.requested else { return }
        var prune = client.request(.prune)
        prune.keepReleases = environment.keepReleases
        prune.protectedReleases = previous.map { [$0] } ?? []
        let host = client.transport.host.description
        do throws(HostError) {
            let result = try await client.require(prune)
            if let pruned = result.pruned, !pruned.isEmpty {
                reporter.report(Event(host: host, .hostStep(step: "pruned \(pruned.joined(separator: ", "))")))
            }
            for warning in result.warnings ?? [] { reporter.report(Event(host: host, .hostWarning(message: warning))) }
        } catch {
            // Pruning never fails a deployment; the next one retries.
            reporter.report(Event(host: host, .hostWarning(message: "pruning failed: \(error.message)")))
        }
    }
}
