import Foundation
import Hooks

/// Reaching hosts, the deploy lock, and running work on many hosts at once.
extension Deployment {
    // MARK: - Preflight and locks

    /// Every host reachable and of a platform the agent runs on first (nothing touched), then
    /// agents installed where missing and each host checked: deploy_to writable, shared files
    /// present, every `runas` user there and reachable through sudo without a password.
    /// With `bundleSHA256`, each host also says whether it has that bundle already.
    func preflight(_ clients: [AgentClient], bundleSHA256: String? = nil, runasUsers: [String] = [],
                   links: [DestinationLink] = [], appspec: Appspec? = nil) async throws(ShipError) -> [AgentResult] {
        let agents = self.agents
        // The agent each host needs, and whether it has it: one round trip per host.
        let probes = await forEachHost(clients) { client throws(HostError) -> (agent: AgentBinary, current: Bool) in
            let probe = try await client.probe()
            let agent = try client.agent(for: probe, in: agents)
            return (agent, probe.installedAgentSHA256 == agent.sha256)
        }
        let needed = try reportPreflight(probes)
        let states = await forEachHost(clients) { client throws(HostError) -> AgentResult in
            let index = clients.firstIndex { $0.transport.host == client.transport.host }!
            if !needed[index].current { try await client.upload(needed[index].agent) }
            return try await client.require(preflightRequest(client, bundleSHA256: bundleSHA256, runasUsers: runasUsers, links: links,
                                                             appspec: appspec))
        }
        return try reportPreflight(states)
    }

    /// The agent's preflight (it only looks): shared files, deploy_to, the bundle cached or not,
    /// `runas` users, the files destinations and whether this host's agent may apply the permissions.
    func preflightRequest(_ client: AgentClient, bundleSHA256: String?, runasUsers: [String], links: [DestinationLink],
                          appspec: Appspec?) -> AgentRequest {
        var request = client.request(.preflight)
        request.shared = SharedSpec(dirs: config.shared.dirs, files: config.shared.files)
        request.bundleSHA256 = bundleSHA256
        request.runasUsers = runasUsers.isEmpty ? nil : runasUsers
        request.links = links.isEmpty ? nil : links
        if appspec?.permissions?.isEmpty == false { request.appspec = appspec }
        return request
    }

    @discardableResult
    func reportPreflight<T>(_ results: [Result<T, HostError>]) throws(ShipError) -> [T] {
        var values: [T] = []
        var problems: [String] = []
        var hints: [String] = []
        for result in results {
            switch result {
            case .success(let value): values.append(value)
            case .failure(let error):
                problems.append(error.description)
                if let hint = error.hint, !hints.contains(hint) { hints.append(hint) }
                reporter.report(Event(host: error.host, .hostFailed(step: "preflight", message: error.message)))
            }
        }
        guard problems.isEmpty else {
            throw ShipError("preflight failed, no release was changed:\n  " + problems.joined(separator: "\n  "),
                            hint: hints.isEmpty ? "check that every host answers `ssh HOST` and holds the shared files"
                                : hints.joined(separator: "\n"),
                            exitCode: .preflight)
        }
        return values
    }

    /// Runs `body` on every host, at most `width` at a time (default: the environment's
    /// `max_concurrency`, else 32); results in host order.
    func forEachHost<T: Sendable>(_ clients: [AgentClient], width: Int? = nil,
                                  _ body: @escaping @Sendable (AgentClient) async throws(HostError) -> T) async -> [Result<T, HostError>] {
        let width = width ?? environment.concurrency
        return await withTaskGroup(of: (Int, Result<T, HostError>).self) { group in
            var next = 0
            func addNext() {
                guard next < clients.count else { return }
                let index = next
                let client = clients[index]
                next += 1
                group.addTask {
                    do throws(HostError) {
                        return (index, .success(try await body(client)))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            for _ in 0..<min(max(1, width), clients.count) { addNext() }
            var collected: [(Int, Result<T, HostError>)] = []
            for await result in group {
                collected.append(result)
                addNext()
            }
            return collected.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    /// Takes the lock on every host in one sorted order; a held lock releases what was taken.
    /// Returns each host's state read under the lock (current release, releases), by host.
    @discardableResult
    func takeLocks(_ clients: [AgentClient], lock: LockInfo) async throws(ShipError) -> [String: AgentResult] {
        let sorted = clients.sorted { $0.transport.host.description < $1.transport.host.description }
        let deadline = request.lockWait.map { Date().addingTimeInterval($0) }
        var announced = false
        let store = environment.lockInStore ? try environmentStore() : nil
        while true {
            var taken: [AgentClient] = []
            var states: [String: AgentResult] = [:]
            // lock: store: the store's lock first, so controllers on different machines exclude
            // each other before either touches a host.
            var holder = try store?.takeLock(lock)
            for client in sorted where holder == nil {
                var lockRequest = client.request(.lock)
                lockRequest.lock = lock
                let result: AgentResult
                do {
                    result = try await client.call(lockRequest)
                } catch {
                    await releaseLocks(taken, lock: lock)
                    throw ShipError("cannot take the deploy lock: \(error)", exitCode: .preflight)
                }
                if result.ok {
                    taken.append(client)
                    states[client.transport.host.description] = result
                } else {
                    holder = result.lock
                    break
                }
            }
            guard let holder else { return states }
            await releaseLocks(taken, lock: lock)
            guard let deadline, Date() < deadline else {
                throw ShipError("\(environment.name) is locked by \(holder.described())",
                                hint: holder.controllerGone == true
                                    ? "the deployment that holds it was killed: remove the lock with `ship unlock \(environment.name)`"
                                    : "wait for it (--lock-wait SECONDS), or if it is stale: ship unlock \(environment.name)",
                                exitCode: .locked)
            }
            if !announced {
                reporter.report(Event(.lockWaiting(holder: holder)))
                announced = true
            }
            try? await Task.sleep(for: .seconds(1)) // waiting on another process's lock: no event to await
        }
    }

    /// The environment's state in its artifact store, when it has one.
    func environmentStore() throws(ShipError) -> EnvironmentStore? {
        guard let settings = environment.artifacts else { return nil }
        return EnvironmentStore(artifacts: try ArtifactStore(settings, app: config.app), environment: environment.name)
    }

    /// Releases the lock on every host; `finalEntry` (the run's end, for the journal) travels in
    /// the same request, so ending a deployment is one round trip per host.
    func releaseLocks(_ clients: [AgentClient], lock: LockInfo,
                      finalEntry: (@Sendable (AgentClient) -> JournalEntry)? = nil) async {
        // The store's lock goes last: a controller that takes it finds the hosts free.
        defer { if environment.lockInStore { (try? environmentStore())??.releaseLock(lock) } }
        _ = await forEachHost(clients) { client -> Bool in
            var unlock = client.request(.unlock)
            unlock.lock = lock
            unlock.journal = finalEntry?(client)
            // A lock left behind is reported by the next deployment, and `ship unlock` removes it.
            _ = try? await client.call(unlock)
            // Done with the host: its session ends here rather than with the whole run.
            await client.endSession(deploymentId: lock.deploymentId)
            return true
        }
    }
}
