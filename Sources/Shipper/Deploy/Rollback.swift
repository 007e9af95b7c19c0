import Foundation
import Hooks

/// `ship rollback`: every host back to the release it ran before `current` (as its journal
/// records), or to a named release, in the environment's batches, with the same hooks.
extension Deployment {
    /// `requested` is a release name or a revision (`requestedRevision`: it resolved to this commit).
    public func rollback(to requested: String?, requestedRevision: String? = nil) async -> DeploymentResult {
        let deploymentId = ReleaseName.deploymentId()
        let clients = Deployment.orderedHosts(environment.hosts).map {
            AgentClient.withSession(transport: makeTransport($0), deployTo: environment.deployTo)
        }
        let tunnel = healthTunnel()
        let result = await rollback(to: requested, requestedRevision: requestedRevision, deploymentId: deploymentId, clients: clients,
                                    tunnel: tunnel)
        await tunnel?.close()
        _ = await forEachHost(clients) { client -> Bool in
            await client.endSession(deploymentId: deploymentId)
            return true
        }
        return result
    }

    func rollback(to requested: String?, requestedRevision: String?, deploymentId: String, clients: [AgentClient],
                  tunnel: HealthTunnel?) async -> DeploymentResult {
        let hosts = clients.map(\.transport.host)
        func done(_ status: DeploymentResult.Status, _ exit: ShipError.ExitCode?, _ release: String, _ message: String?,
                  hint: String? = nil) -> DeploymentResult {
            reporter.report(Event(.rollbackFinished(status: status.rawValue, release: release, deploymentId: deploymentId, message: message)))
            return DeploymentResult(status: status, exitCode: exit, deploymentId: deploymentId, release: release, message: message,
                                    hint: hint)
        }
        do {
            _ = try await preflight(clients)
        } catch {
            return done(.failed, .preflight, requested ?? "", error.description, hint: error.hint)
        }
        // Where the environment goes, decided before anything changes: one release, good on
        // every host.
        let states = await forEachHost(clients) { client throws(HostError) in try await client.require(client.request(.state)) }
        var reported: [RollbackTarget.HostReleases] = []
        var problems: [String] = []
        for (client, state) in zip(clients, states) {
            switch state {
            case .failure(let error): problems.append(error.description)
            case .success(let state):
                reported.append(RollbackTarget.HostReleases(host: client.transport.host.description, current: state.currentRelease,
                                                            releases: state.releaseInfos ?? []))
            }
        }
        guard problems.isEmpty else {
            return done(.failed, .failed, requested ?? "", "nothing was changed: " + problems.joined(separator: "; "))
        }
        let target: String
        switch RollbackTarget.choose(requested: requested, revision: requestedRevision, hosts: reported) {
        case .success(let chosen): target = chosen
        case .failure(let refusal):
            return done(.failed, .failed, requested ?? "", "nothing was changed: " + refusal.message, hint: refusal.hint)
        }
        let targets = Dictionary(uniqueKeysWithValues: reported.map { ($0.host, (current: $0.current, target: target)) })
        let destinations = targets
        let lock = LockInfo(deploymentId: deploymentId, holder: ReleaseName.holder, started: Event.timestamp(Date()), pid: getpid())
        do {
            try await takeLocks(clients, lock: lock)
        } catch {
            return done(.failed, error.exitCode, requested ?? "", error.description)
        }
        // The store's record of the environment as the rollback found it (artifacts:).
        var recorded: (store: EnvironmentStore, etag: String?)?
        if let store = try? environmentStore() {
            do throws(ShipError) {
                recorded = (store, try store.readCurrent().etag)
            } catch {
                reporter.report(Event(.hostWarning(message: "cannot read \(store.artifacts.client.describe(store.currentKey)): \(error.description); "
                    + "this rollback will not update it")))
            }
        }
        let plan = BatchPlan(hosts: hosts, spec: request.batch ?? environment.batch)
        let clientByHost = Dictionary(uniqueKeysWithValues: clients.map { ($0.transport.host.description, $0) })
        var failures: [HostError] = []
        var interrupted = false
        var reached: Set<String> = []
        let traffic = trafficControl()
        for (number, batch) in plan.batches.enumerated() {
            if interruption.requested {
                interrupted = true
                break
            }
            reporter.report(Event(.batchStarted(number: number + 1, of: plan.batches.count, hosts: batch.map(\.description))))
            reached.formUnion(batch.map(\.description))
            let results = await forEachHost(batch.map { clientByHost[$0.description]! }) { client throws(HostError) in
                let host = client.transport.host.description
                let (current, target) = destinations[host]!
                try await rollBackHost(client, from: current, to: target, deploymentId: deploymentId, lock: lock, traffic: traffic, tunnel: tunnel)
            }
            for case .failure(let error) in results { failures.append(error) }
            if failures.count > environment.allowedFailures { break }
        }
        let status: DeploymentResult.Status = failures.isEmpty && !interrupted ? .succeeded : .failed
        var message: String? = interrupted ? "interrupted: no new host started"
            : failures.isEmpty ? nil : failures.map(\.description).joined(separator: "; ")
        let sweep = HostContext(deploymentId: deploymentId, kind: "rollback", release: "", revision: "", prepared: nil, lock: lock, traffic: traffic)
        if let out = await reportOutOfRotation(sweep, hosts: hosts) {
            message = message.map { $0 + "; " + out } ?? out
        }
        let finalMessage = message
        let environmentName = environment.name
        let failedHosts = Set(failures.map(\.host))
        let reachedHosts = reached
        await releaseLocks(clients, lock: lock) { client in
            let host = client.transport.host.description
            var entry = JournalEntry(time: Event.timestamp(Date()), deploymentId: deploymentId, kind: "rollback", step: "finished",
                                     release: destinations[host]?.target, status: status.rawValue,
                                     user: ReleaseName.holder, environment: environmentName, detail: finalMessage)
            entry.hostStatus = failedHosts.contains(host) ? "failed" : (reachedHosts.contains(host) ? "succeeded" : "not_started")
            return entry
        }
        let release = requested ?? Set(destinations.values.map(\.target)).sorted().joined(separator: ",")
        // Every host is on the target: the store says so too, from the target's own record.
        if status == .succeeded, let recorded {
            do throws(ShipError) {
                if var current = try recorded.store.record(of: target) {
                    current.deploymentId = deploymentId
                    current.holder = lock.holder
                    current.time = Event.timestamp(Date())
                    try recorded.store.claim(current, replacing: recorded.etag)
                    reporter.report(Event(.hostStep(step: "\(recorded.store.artifacts.client.describe(recorded.store.currentKey)) says release \(target)")))
                } else {
                    reporter.report(Event(.hostWarning(message: "the artifact store has no record of release \(target) (deployed before artifacts: was set): "
                        + "\(recorded.store.artifacts.client.describe(recorded.store.currentKey)) still names the release it did")))
                }
            } catch {
                return done(.failed, error.exitCode, release, error.description, hint: error.hint)
            }
        }
        return done(status, interrupted ? .interrupted : (failures.isEmpty ? nil : .failed), release, finalMessage)
    }

    /// `stop` of the current release (best effort), switch to `target`, `start` and `validate` of it.
    func rollBackHost(_ client: AgentClient, from current: String?, to target: String, deploymentId: String,
                      lock: LockInfo, traffic: TrafficControl?, tunnel: HealthTunnel?) async throws(HostError) {
        let host = client.transport.host.description
        guard current != target else {
            reporter.report(Event(host: host, .hostStep(step: "already on \(target)")))
            return
        }
        var context = HostContext(deploymentId: deploymentId, kind: "rollback", release: target, revision: "", prepared: nil, lock: lock,
                                  traffic: traffic, healthTunnel: tunnel)
        let env = hookEnvironment(client, context: context, previous: current)
        if let current {
            _ = try? await runHooks(client, release: current, event: .beforeBlockTraffic, env: env, context: context) // best effort, as stop
        }
        do throws(HostError) {
            try await traffic?.takeOut(client.transport.host)
        } catch {
            // Nothing changed on the host: it serves as before, so it goes back in rotation.
            reporter.report(Event(host: host, .hostFailed(step: error.step, message: error.message)))
            await traffic?.putBackReporting(client.transport.host)
            throw error
        }
        if let current {
            _ = try? await runHooks(client, release: current, event: .afterBlockTraffic, env: env, context: context)
            _ = try? await runHooks(client, release: current, event: .stop, env: env, context: context) // best effort, as the contract says
        }
        var step = "switch"
        do throws(HostError) {
            var switchRequest = client.request(.switchCurrent)
            switchRequest.release = target
            switchRequest.journal = journalEntry(context, step: "switched")
            let switched = try await client.require(switchRequest)
            reporter.report(Event(host: host, .hostSwitched(release: target, previous: switched.previousRelease)))
            context.revision = switched.currentRevision ?? ""
            let targetEnv = hookEnvironment(client, context: context, previous: current)
            step = "start"
            try await runHooks(client, release: target, event: .start, env: targetEnv, context: context)
            step = "validate"
            try await runHooks(client, release: target, event: .validate, env: targetEnv, context: context, settles: true)
            try await checkAndPutBack(client, release: target, env: targetEnv, context: context, step: &step)
            reporter.report(Event(host: host, .hostRolledBack(release: target)))
        } catch {
            reporter.report(Event(host: host, .hostFailed(step: step, message: error.message)))
            throw HostError(host: host, step: step, message: error.message, unreachable: error.unreachable)
        }
    }
}
