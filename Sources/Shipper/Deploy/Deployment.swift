import Foundation
import Hooks

/// One deployment of a revision to an environment: preflight, lock, then every host through the
/// lifecycle of CONTRACT.md section 4, rolling switched hosts back when one fails.
public struct Deployment: Sendable {
    public let config: ShipConfig
    public let environment: Environment
    public let request: DeployRequest
    public let agent: AgentBinary
    public let reporter: any Reporter
    let makeTransport: @Sendable (Host) -> any Transport

    public init(config: ShipConfig, environment: Environment, request: DeployRequest, agent: AgentBinary,
                reporter: any Reporter, makeTransport: @escaping @Sendable (Host) -> any Transport) {
        self.config = config
        self.environment = environment
        self.request = request
        self.agent = agent
        self.reporter = reporter
        self.makeTransport = makeTransport
    }

    /// What the deployment needs from the repository: the commit, its bundle and its appspec.
    struct Prepared: Sendable {
        var bundle: RevisionBundle
        var appspec: Appspec
    }

    /// Packages the revision and reads its appspec.yml (configuration errors exit 2, before any host).
    func prepare() throws(ShipError) -> Prepared {
        let repository = try GitRepository.open(containing: config.directory)
        let revision = try repository.resolve(request.revision ?? environment.revision ?? "HEAD")
        var appspec = Appspec.empty
        if let data = try repository.fileContents(ConfigLoader.appspecName, at: revision.commit) {
            appspec = try AppspecDecoder.decode(yaml: String(decoding: data, as: UTF8.self),
                                                file: "appspec.yml (at \(revision.shortCommit))")
        }
        let cache = Deployment.bundleCache(app: config.app)
        do {
            try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        } catch {
            throw ShipError("cannot create the bundle cache \(cache): \(error.localizedDescription)")
        }
        let path = cache + "/\(config.app)-\(revision.commit).tar.gz"
        let bundle = try BundleWriter.write(repository: repository, revision: revision, to: path)
        return Prepared(bundle: bundle, appspec: appspec)
    }

    static func bundleCache(app: String) -> String {
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")
        return base + "/ship/bundles"
    }

    public func run() async -> DeploymentResult {
        let deploymentId = ReleaseName.deploymentId()
        var release = ReleaseName.make()
        let prepared: Prepared
        do {
            prepared = try prepare()
        } catch {
            return finish(.failed, exit: error.exitCode, id: deploymentId, release: release, message: error.description)
        }
        let hosts = Deployment.orderedHosts(environment.hosts)
        let clients = hosts.map { AgentClient(transport: makeTransport($0), deployTo: config.deployTo) }

        // Preflight: every host reachable, agent installed, shared files present. Nothing changes yet.
        let states: [AgentResult]
        do {
            states = try await preflight(clients)
        } catch {
            return finish(.failed, exit: .preflight, id: deploymentId, release: release, message: error.description)
        }
        release = ReleaseName.make(after: states.flatMap { $0.releases ?? [] })
        reporter.report(Event(.deploymentStarted(deploymentId: deploymentId, environment: environment.name,
                                                 revision: prepared.bundle.revision.commit, release: release,
                                                 hosts: hosts.map(\.description))))

        let lock = LockInfo(deploymentId: deploymentId, holder: ReleaseName.holder, started: Event.timestamp(Date()))
        do {
            try await takeLocks(clients, lock: lock)
        } catch {
            return finish(.failed, exit: error.exitCode, id: deploymentId, release: release, message: error.description)
        }

        let context = HostContext(deploymentId: deploymentId, release: release, prepared: prepared, lock: lock)
        var switched: [(client: AgentClient, previous: String?)] = []
        var failure: HostError?
        var migrated = false
        for (client, state) in zip(clients, states) {
            let outcome = await deployHost(client, previous: state.currentRelease, context: context, runMigrate: !migrated)
            migrated = migrated || prepared.appspec.hooks(for: .migrate).isEmpty || outcome.migrated
            if outcome.switched { switched.append((client, state.currentRelease)) }
            if let error = outcome.error {
                failure = error
                break
            }
        }

        var status: DeploymentResult.Status = .succeeded
        var exit: ShipError.ExitCode?
        var message: String?
        if let failure {
            status = .failed
            exit = .failed
            message = failure.description
            if environment.rollback == .auto && !switched.isEmpty {
                let failedRollbacks = await rollBack(switched.reversed(), context: context)
                if failedRollbacks.isEmpty {
                    status = .rolledBack
                } else {
                    exit = .rollbackFailed
                    message = (message ?? "") + "; rollback failed on " + failedRollbacks.map(\.description).joined(separator: "; ")
                }
            }
        } else {
            for (client, state) in zip(clients, states) {
                await prune(client, previous: state.currentRelease, context: context)
            }
        }
        for client in clients {
            var journal = journalEntry(context, step: "finished")
            journal.status = status.rawValue
            journal.detail = message
            var record = client.request(.record)
            record.journal = journal
            _ = try? await client.call(record) // history is best effort; the deployment's outcome stands
        }
        await releaseLocks(clients, lock: lock)
        return finish(status, exit: exit, id: deploymentId, release: release, message: message)
    }

    func finish(_ status: DeploymentResult.Status, exit: ShipError.ExitCode?, id: String, release: String, message: String?) -> DeploymentResult {
        reporter.report(Event(.deploymentFinished(status: status.rawValue, release: release, deploymentId: id, message: message)))
        return DeploymentResult(status: status, exitCode: exit, deploymentId: id, release: release, message: message)
    }

    /// The first host with role `migrate` goes first, so migrate runs before any host switches.
    static func orderedHosts(_ hosts: [Host]) -> [Host] {
        guard let index = hosts.firstIndex(where: { $0.roles.contains("migrate") }) else { return hosts }
        var ordered = hosts
        ordered.insert(ordered.remove(at: index), at: 0)
        return ordered
    }

    // MARK: - Preflight and locks

    /// Every host reachable first (nothing touched), then agents installed where missing and
    /// each host checked (writable deploy_to, shared files present).
    func preflight(_ clients: [AgentClient]) async throws(ShipError) -> [AgentResult] {
        let agent = self.agent
        let probes = await forEachHost(clients) { client throws(HostError) in try await client.hasAgent(agent) }
        try reportPreflight(probes)
        let shared = SharedSpec(dirs: config.shared.dirs, files: config.shared.files)
        let states = await forEachHost(clients) { client throws(HostError) -> AgentResult in
            let index = clients.firstIndex { $0.transport.host == client.transport.host }!
            if case .success(false) = probes[index] { try await client.upload(agent) }
            var request = client.request(.preflight)
            request.shared = shared
            return try await client.require(request)
        }
        return try reportPreflight(states)
    }

    @discardableResult
    func reportPreflight<T>(_ results: [Result<T, HostError>]) throws(ShipError) -> [T] {
        var values: [T] = []
        var problems: [String] = []
        for result in results {
            switch result {
            case .success(let value): values.append(value)
            case .failure(let error):
                problems.append(error.description)
                reporter.report(Event(host: error.host, .hostFailed(step: "preflight", message: error.message)))
            }
        }
        guard problems.isEmpty else {
            throw ShipError("preflight failed, no release was changed:\n  " + problems.joined(separator: "\n  "),
                            hint: "check that every host answers `ssh HOST` and holds the shared files",
                            exitCode: .preflight)
        }
        return values
    }

    /// Runs `body` on every host concurrently; results in host order.
    func forEachHost<T: Sendable>(_ clients: [AgentClient],
                                  _ body: @escaping @Sendable (AgentClient) async throws(HostError) -> T) async -> [Result<T, HostError>] {
        await withTaskGroup(of: (Int, Result<T, HostError>).self) { group in
            for (index, client) in clients.enumerated() {
                group.addTask {
                    do throws(HostError) {
                        return (index, .success(try await body(client)))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            var collected: [(Int, Result<T, HostError>)] = []
            for await result in group { collected.append(result) }
            return collected.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    /// Takes the lock on every host in one sorted order; a held lock releases what was taken.
    func takeLocks(_ clients: [AgentClient], lock: LockInfo) async throws(ShipError) {
        let sorted = clients.sorted { $0.transport.host.description < $1.transport.host.description }
        let deadline = request.lockWait.map { Date().addingTimeInterval($0) }
        var announced = false
        while true {
            var taken: [AgentClient] = []
            var holder: LockInfo?
            for client in sorted {
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
                } else {
                    holder = result.lock
                    break
                }
            }
            guard let holder else { return }
            await releaseLocks(taken, lock: lock)
            guard let deadline, Date() < deadline else {
                throw ShipError("\(environment.name) is locked by \(holder.holder) (deployment \(holder.deploymentId), since \(holder.started))",
                                hint: "wait for it (--lock-wait SECONDS), or if it is stale: ship unlock \(environment.name)",
                                exitCode: .locked)
            }
            if !announced {
                reporter.report(Event(.lockWaiting(holder: holder)))
                announced = true
            }
            try? await Task.sleep(for: .seconds(1)) // waiting on another process's lock: no event to await
        }
    }

    func releaseLocks(_ clients: [AgentClient], lock: LockInfo) async {
        for client in clients {
            var unlock = client.request(.unlock)
            unlock.lock = lock
            _ = try? await client.call(unlock) // a lock left behind is reported by the next deploy and `ship unlock` removes it
        }
    }

    // MARK: - One host

    struct HostContext: Sendable {
        var deploymentId: String
        var release: String
        var prepared: Prepared
        var lock: LockInfo
    }

    struct HostOutcome: Sendable {
        var switched = false
        var migrated = false
        var error: HostError?
    }

    func hookEnvironment(_ client: AgentClient, context: HostContext, previous: String?) -> [String: String] {
        var env: [String: String] = [:]
        for (name, value) in environment.env { env[name] = value }
        let releasePath = config.deployTo + "/releases/" + context.release
        env["SHIP_APP"] = config.app
        env["SHIP_ENV"] = environment.name
        env["SHIP_HOST"] = client.transport.host.description
        env["SHIP_DEPLOYMENT_ID"] = context.deploymentId
        env["SHIP_RELEASE"] = context.release
        env["SHIP_RELEASE_PATH"] = releasePath
        env["SHIP_PREVIOUS_RELEASE_PATH"] = previous.map { config.deployTo + "/releases/" + $0 } ?? ""
        env["SHIP_REVISION"] = context.prepared.bundle.revision.commit
        env["SHIP_DEPLOY_TO"] = config.deployTo
        env["DEPLOYMENT_ID"] = context.deploymentId
        env["APPLICATION_NAME"] = config.app
        env["DEPLOYMENT_GROUP_NAME"] = environment.name
        return env
    }

    func journalEntry(_ context: HostContext, step: String, kind: String = "deploy") -> JournalEntry {
        JournalEntry(time: Event.timestamp(Date()), deploymentId: context.deploymentId, kind: kind, step: step,
                     release: context.release, revision: context.prepared.bundle.revision.commit,
                     user: ReleaseName.holder, environment: environment.name)
    }

    func deployHost(_ client: AgentClient, previous: String?, context: HostContext, runMigrate: Bool) async -> HostOutcome {
        let host = client.transport.host.description
        var outcome = HostOutcome()
        var step = "bundle"
        let bundle = context.prepared.bundle
        do {
            var has = client.request(.hasBundle)
            has.bundleSHA256 = bundle.sha256
            if try await client.require(has).present != true {
                reporter.report(Event(host: host, .hostStep(step: "sending bundle")))
                var receive = client.request(.receiveBundle)
                receive.bundleSHA256 = bundle.sha256
                _ = try await client.require(receive, bundle: bundle.path)
                reporter.report(Event(host: host, .bundleSent(bytes: bundle.bytes)))
            }
            step = "unpack"
            var prepare = client.request(.prepare)
            prepare.bundleSHA256 = bundle.sha256
            prepare.release = context.release
            prepare.revision = bundle.revision.commit
            prepare.appspec = context.prepared.appspec
            prepare.shared = SharedSpec(dirs: config.shared.dirs, files: config.shared.files)
            prepare.journal = journalEntry(context, step: "prepared")
            _ = try await client.require(prepare)
            reporter.report(Event(host: host, .hostStep(step: "release \(context.release) unpacked")))

            let environmentVariables = hookEnvironment(client, context: context, previous: previous)
            if let previous {
                step = "stop"
                do {
                    try await runHooks(client, release: previous, event: .stop, env: environmentVariables, context: context)
                } catch where request.ignoreStopFailures {
                    reporter.report(Event(host: host, .hostStep(step: "stop failed, ignored (--ignore-stop-failures): \(error.message)")))
                }
            }
            step = "install"
            try await runHooks(client, release: context.release, event: .install, env: environmentVariables, context: context)
            if runMigrate && !context.prepared.appspec.hooks(for: .migrate).isEmpty {
                step = "migrate"
                try await runHooks(client, release: context.release, event: .migrate, env: environmentVariables, context: context)
                outcome.migrated = true
            }
            step = "switch"
            var switchRequest = client.request(.switchCurrent)
            switchRequest.release = context.release
            switchRequest.journal = journalEntry(context, step: "switched")
            let switched = try await client.require(switchRequest)
            outcome.switched = true
            reporter.report(Event(host: host, .hostSwitched(release: context.release, previous: switched.previousRelease)))
            step = "start"
            try await runHooks(client, release: context.release, event: .start, env: environmentVariables, context: context)
            step = "validate"
            try await runHooks(client, release: context.release, event: .validate, env: environmentVariables, context: context)
            reporter.report(Event(host: host, .hostSucceeded(release: context.release)))
        } catch {
            outcome.error = HostError(host: host, step: step, message: error.message, unreachable: error.unreachable)
            reporter.report(Event(host: host, .hostFailed(step: step, message: error.message)))
            if !outcome.switched && !error.unreachable {
                var discard = client.request(.discard)
                discard.release = context.release
                _ = try? await client.call(discard) // leftovers of a release that never went live are pruned later anyway
            }
        }
        return outcome
    }

    func runHooks(_ client: AgentClient, release: String, event: LifecycleEvent, env: [String: String],
                  context: HostContext) async throws(HostError) {
        let host = client.transport.host.description
        var request = client.request(.runHooks)
        request.release = release
        request.event = event
        request.hookEnvironment = env
        request.journal = journalEntry(context, step: "hooks")
        let reporter = self.reporter
        _ = try await client.require(request) { agentEvent in
            switch agentEvent.kind {
            case .hookStarted:
                reporter.report(Event(host: host, .hookStarted(event: agentEvent.event ?? event, hook: agentEvent.hook ?? "")))
            case .output:
                reporter.report(Event(host: host, .hookOutput(event: agentEvent.event, line: agentEvent.line ?? "")))
            case .hookFinished:
                if let outcome = agentEvent.outcome {
                    reporter.report(Event(host: host, .hookFinished(event: agentEvent.event ?? event, hook: agentEvent.hook ?? "", outcome: outcome)))
                }
            case .result:
                break
            }
        }
    }

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
            _ = try? await runHooks(client, release: context.release, event: .stop, env: env, context: context) // best effort, as the contract says
            do {
                var switchRequest = client.request(.switchCurrent)
                switchRequest.release = previous
                switchRequest.journal = journalEntry(context, step: "switched", kind: "rollback")
                _ = try await client.require(switchRequest)
                reporter.report(Event(host: host, .hostSwitched(release: previous, previous: context.release)))
                try await runHooks(client, release: previous, event: .start, env: env, context: context)
                try await runHooks(client, release: previous, event: .validate, env: env, context: context)
                reporter.report(Event(host: host, .hostRolledBack(release: previous)))
            } catch {
                reporter.report(Event(host: host, .hostFailed(step: "rollback", message: error.message)))
                failures.append(error)
            }
        }
        return failures
    }

    func prune(_ client: AgentClient, previous: String?, context: HostContext) async {
        var prune = client.request(.prune)
        prune.keepReleases = config.keepReleases
        prune.protectedReleases = previous.map { [$0] } ?? []
        if let result = try? await client.call(prune), let pruned = result.pruned, !pruned.isEmpty {
            reporter.report(Event(host: client.transport.host.description, .hostStep(step: "pruned \(pruned.joined(separator: ", "))")))
        }
    }
}
