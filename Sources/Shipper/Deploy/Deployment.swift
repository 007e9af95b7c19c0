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
    public let interruption: Interruption
    let makeTransport: @Sendable (Host) -> any Transport

    public init(config: ShipConfig, environment: Environment, request: DeployRequest, agent: AgentBinary,
                reporter: any Reporter, interruption: Interruption = Interruption(),
                makeTransport: @escaping @Sendable (Host) -> any Transport) {
        self.config = config
        self.environment = environment
        self.request = request
        self.agent = agent
        self.reporter = reporter
        self.interruption = interruption
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

        let context = HostContext(deploymentId: deploymentId, kind: "deploy", release: release,
                                  revision: prepared.bundle.revision.commit, prepared: prepared, lock: lock)
        let previousByHost = Dictionary(uniqueKeysWithValues: zip(hosts.map(\.description), states.map(\.currentRelease)))
        let plan = BatchPlan(hosts: hosts, spec: request.batch ?? environment.batch)
        let clientByHost = Dictionary(uniqueKeysWithValues: clients.map { ($0.transport.host.description, $0) })
        var switched: [(client: AgentClient, previous: String?)] = []
        var rollbackFailed: [HostError] = []
        var failures: [HostError] = []
        var failure: HostError?
        var interrupted = false
        var migrated = prepared.appspec.hooks(for: .migrate).isEmpty
        for (number, batch) in plan.batches.enumerated() {
            if interruption.requested {
                interrupted = true
                break
            }
            reporter.report(Event(.batchStarted(number: number + 1, of: plan.batches.count, hosts: batch.map(\.description))))
            let batchClients = batch.map { clientByHost[$0.description]! }
            // Phase 1, in parallel: bundle, unpack, stop, install. Nothing switches yet.
            let installed = await forEachHost(batchClients, width: Deployment.parallelism) { client throws(HostError) in
                try await installHost(client, previous: previousByHost[client.transport.host.description] ?? nil, context: context)
            }
            var ready: [AgentClient] = []
            for (client, outcome) in zip(batchClients, installed) {
                switch outcome {
                case .success: ready.append(client)
                case .failure(let error): failures.append(error)
                }
            }
            // Migrate once, on the first host (the migrate host goes first), before any host switches.
            if !migrated {
                guard let migrateClient = ready.first, migrateClient.transport.host == hosts[0] else {
                    failure = failures.first ?? HostError(host: hosts[0].description, step: "migrate", message: "the migrate host failed", unreachable: false)
                    await discard(ready, context: context)
                    break
                }
                do {
                    let previous = previousByHost[migrateClient.transport.host.description] ?? nil
                    try await runHooks(migrateClient, release: context.release, event: .migrate,
                                       env: hookEnvironment(migrateClient, context: context, previous: previous), context: context)
                    migrated = true
                } catch {
                    reporter.report(Event(host: error.host, .hostFailed(step: "migrate", message: error.message)))
                    failure = HostError(host: error.host, step: "migrate", message: error.message, unreachable: error.unreachable)
                    await discard(ready, context: context)
                    break
                }
            }
            if failures.count > environment.maxFail || interruption.requested {
                interrupted = interruption.requested && failures.count <= environment.maxFail
                await discard(ready, context: context)
                break
            }
            // Phase 2, in parallel: switch, start, validate.
            let activated = await forEachHost(ready, width: Deployment.parallelism) { client -> ActivationOutcome in
                await activateHost(client, context: context)
            }
            for (client, outcome) in zip(ready, activated) {
                let previous = previousByHost[client.transport.host.description] ?? nil
                guard case .success(let activation) = outcome else { continue }
                if let error = activation.error {
                    failures.append(error)
                    if activation.switched {
                        if failures.count <= environment.maxFail {
                            // Tolerated: this host goes back alone and the deployment goes on.
                            let rollbackFailures = await rollBack([(client, previous)], context: context)
                            failures += rollbackFailures
                            rollbackFailed += rollbackFailures
                        } else {
                            switched.append((client, previous))
                        }
                    }
                } else {
                    switched.append((client, previous))
                }
            }
            if failures.count > environment.maxFail { break }
        }
        if failure == nil, failures.count > environment.maxFail { failure = failures.first }

        var status: DeploymentResult.Status = .succeeded
        var exit: ShipError.ExitCode?
        var message: String?
        if interrupted && failure == nil {
            status = .failed
            exit = .interrupted
            message = "interrupted: no new host started; hosts switched so far stay on \(release)"
        } else if let failure {
            status = .failed
            exit = .failed
            message = failure.description
            if environment.rollback == .auto && !switched.isEmpty {
                let failedRollbacks = await rollBack(switched.reversed(), context: context) + rollbackFailed
                if failedRollbacks.isEmpty {
                    status = .rolledBack
                } else {
                    exit = .rollbackFailed
                    message = (message ?? "") + "; rollback failed on " + failedRollbacks.map(\.description).joined(separator: "; ")
                }
            }
            if !rollbackFailed.isEmpty && exit != .rollbackFailed {
                exit = .rollbackFailed
                message = (message ?? "") + "; rollback failed on " + rollbackFailed.map(\.description).joined(separator: "; ")
            }
        } else if !interrupted {
            if !rollbackFailed.isEmpty {
                exit = .rollbackFailed
                status = .failed
                message = "rollback failed on " + rollbackFailed.map(\.description).joined(separator: "; ")
            } else if !failures.isEmpty {
                message = "\(failures.count) host\(failures.count == 1 ? "" : "s") failed and rolled back (max_fail \(environment.maxFail)): "
                    + failures.map(\.description).joined(separator: "; ")
            }
            _ = await forEachHost(clients, width: Deployment.parallelism) { client -> Bool in
                await prune(client, previous: previousByHost[client.transport.host.description] ?? nil, context: context)
                return true
            }
        }
        let failedHosts = Set(failures.map(\.host))
        let finalStatus = status, finalMessage = message
        _ = await forEachHost(clients, width: Deployment.parallelism) { client -> Bool in
            var journal = journalEntry(context, step: "finished")
            journal.status = finalStatus.rawValue
            journal.detail = failedHosts.contains(client.transport.host.description) ? "host failed" : finalMessage
            var record = client.request(.record)
            record.journal = journal
            _ = try? await client.call(record) // history is best effort; the deployment's outcome stands
            return true
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

    /// How many hosts ship works on at once (within a batch, and for preflight and locks).
    static let parallelism = 32

    /// Runs `body` on every host, at most `width` at a time; results in host order.
    func forEachHost<T: Sendable>(_ clients: [AgentClient], width: Int = Deployment.parallelism,
                                  _ body: @escaping @Sendable (AgentClient) async throws(HostError) -> T) async -> [Result<T, HostError>] {
        await withTaskGroup(of: (Int, Result<T, HostError>).self) { group in
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
        /// `deploy` or `rollback`, as the journal records it.
        var kind: String
        var release: String
        var revision: String
        /// The bundle and appspec of a deployment; nil for a rollback.
        var prepared: Prepared?
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
        env["SHIP_REVISION"] = context.revision
        env["SHIP_DEPLOY_TO"] = config.deployTo
        env["DEPLOYMENT_ID"] = context.deploymentId
        env["APPLICATION_NAME"] = config.app
        env["DEPLOYMENT_GROUP_NAME"] = environment.name
        return env
    }

    func journalEntry(_ context: HostContext, step: String, kind: String? = nil) -> JournalEntry {
        JournalEntry(time: Event.timestamp(Date()), deploymentId: context.deploymentId, kind: kind ?? context.kind, step: step,
                     release: context.release, revision: context.revision,
                     user: ReleaseName.holder, environment: environment.name)
    }

    /// Bundle, unpack, link, `stop` of the release being replaced, `install`. Nothing switches.
    func installHost(_ client: AgentClient, previous: String?, context: HostContext) async throws(HostError) {
        let host = client.transport.host.description
        var step = "bundle"
        guard let prepared = context.prepared else { return }
        let bundle = prepared.bundle
        do throws(HostError) {
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
            prepare.appspec = prepared.appspec
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
        } catch {
            let message = error.unreachable
                ? "\(error.message) (host lost before switching: current still \(previous.map { "releases/\($0)" } ?? "absent"); the unfinished release may remain until the next prune)"
                : error.message
            reporter.report(Event(host: host, .hostFailed(step: step, message: message)))
            if !error.unreachable { await discard([client], context: context) }
            throw HostError(host: host, step: step, message: message, unreachable: error.unreachable)
        }
    }

    struct ActivationOutcome: Sendable {
        var switched = false
        var error: HostError?
    }

    /// Switch `current`, then `start` and `validate`.
    func activateHost(_ client: AgentClient, context: HostContext) async -> ActivationOutcome {
        let host = client.transport.host.description
        var outcome = ActivationOutcome()
        var step = "switch"
        do throws(HostError) {
            var switchRequest = client.request(.switchCurrent)
            switchRequest.release = context.release
            switchRequest.journal = journalEntry(context, step: "switched")
            let switched = try await client.require(switchRequest)
            outcome.switched = true
            reporter.report(Event(host: host, .hostSwitched(release: context.release, previous: switched.previousRelease)))
            let env = hookEnvironment(client, context: context, previous: switched.previousRelease)
            step = "start"
            try await runHooks(client, release: context.release, event: .start, env: env, context: context)
            step = "validate"
            try await runHooks(client, release: context.release, event: .validate, env: env, context: context)
            reporter.report(Event(host: host, .hostSucceeded(release: context.release)))
        } catch {
            var message = error.message
            if error.unreachable {
                message += outcome.switched
                    ? " (host lost after switching: current is releases/\(context.release))"
                    : " (host lost while switching: current is the old release or releases/\(context.release), both complete; see ship status)"
            }
            outcome.error = HostError(host: host, step: step, message: message, unreachable: error.unreachable)
            reporter.report(Event(host: host, .hostFailed(step: step, message: message)))
            if !outcome.switched && !error.unreachable { await discard([client], context: context) }
        }
        return outcome
    }

    /// Removes this deployment's release from hosts where it never went live.
    func discard(_ clients: [AgentClient], context: HostContext) async {
        _ = await forEachHost(clients, width: Deployment.parallelism) { client -> Bool in
            var discard = client.request(.discard)
            discard.release = context.release
            _ = try? await client.call(discard) // leftovers of a release that never went live are pruned later anyway
            return true
        }
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
        guard !interruption.requested else { return }
        var prune = client.request(.prune)
        prune.keepReleases = config.keepReleases
        prune.protectedReleases = previous.map { [$0] } ?? []
        if let result = try? await client.call(prune), let pruned = result.pruned, !pruned.isEmpty {
            reporter.report(Event(host: client.transport.host.description, .hostStep(step: "pruned \(pruned.joined(separator: ", "))")))
        }
    }
}
