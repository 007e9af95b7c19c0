import Foundation
import Hooks

/// One deployment of a revision to an environment: preflight, lock, then every host through the
/// lifecycle of CONTRACT.md section 4, rolling switched hosts back when one fails.
public struct Deployment: Sendable {
    public let config: ShipConfig
    public let environment: Environment
    public let request: DeployRequest
    public let agents: AgentCatalog
    public let reporter: any Reporter
    public let interruption: Interruption
    let makeTransport: @Sendable (Host) -> any Transport
    /// `secrets:` resolved (Secrets.resolve): given to hooks and `ship exec`, masked by the agent.
    public var secrets: [String: String] = [:]

    public init(config: ShipConfig, environment: Environment, request: DeployRequest, agents: AgentCatalog,
                reporter: any Reporter, interruption: Interruption = Interruption(),
                makeTransport: @escaping @Sendable (Host) -> any Transport) {
        self.config = config
        self.environment = environment
        self.request = request
        self.agents = agents
        self.reporter = reporter
        self.interruption = interruption
        self.makeTransport = makeTransport
    }

    /// What the deployment needs from the repository: the commit, its appspec, and its bundle,
    /// written only when a host needs it (hosts with a base get a delta) and reused from the
    /// bundle cache when an earlier run wrote it.
    struct Prepared: Sendable {
        var revision: ResolvedRevision
        var appspec: Appspec
        var bundles: BundleMaker
        /// CodeDeploy `files` destinations: symlinks into `<deploy_to>/current`.
        var links: [DestinationLink] = []
        /// `build:`'s key: the bundle holds the build's output (and no delta is made from Git).
        var buildKey: String?
    }

    /// Resolves the revision, reads its appspec.yml and checks its tree can be packaged
    /// (configuration and packaging errors exit 2, before any host).
    func prepare() throws(ShipError) -> Prepared {
        let repository = try GitRepository.open(containing: config.directory)
        let revision = try repository.resolve(request.revision ?? environment.revision ?? "HEAD")
        var appspec = Appspec.empty
        if let data = try repository.fileContents(ConfigLoader.appspecName, at: revision.commit) {
            let name = "appspec.yml (at \(revision.shortCommit))"
            let reporter = self.reporter
            appspec = try AppspecDecoder.decode(yaml: String(decoding: data, as: UTF8.self), file: name) { warning in
                reporter.report(Event(.hostWarning(message: warning.description + (warning.hint.map { " (\($0))" } ?? ""))))
            }
            // A script that is not there, or not executable, fails here rather than on a host; so
            // does a files source ship cannot link.
            try AppspecDecoder.checkScripts(appspec, file: name) { path throws(ShipError) in
                try repository.entryKind(path, at: revision.commit)
            }
            try AppspecDecoder.checkFiles(appspec, file: name) { path throws(ShipError) in
                try repository.entryKind(path, at: revision.commit)
            }
        }
        let cache = Deployment.bundleCache(app: config.app)
        do {
            try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        } catch {
            throw ShipError("cannot create the bundle cache \(cache): \(error.localizedDescription)")
        }
        let compression = environment.compression
        let buildKey = environment.build.map { RevisionBuild.key($0, commit: revision.commit) }
        let path = cache + "/\(config.app)-\(revision.commit)\(buildKey.map { "-build-" + $0 } ?? "")"
            + "\(compression == .gzip ? "" : "." + compression.rawValue).tar.gz"
        let bundles = BundleMaker(directory: config.directory, revision: revision, path: path, level: compression.level)
        if bundles.cached() == nil {
            try BundleWriter.check(repository: repository, revision: revision)
            // Built once per revision and settings, before any host is touched; a bundle made
            // from the same build already is in the cache (above), and needs no build at all.
            if let settings = environment.build {
                let reporter = self.reporter
                bundles.build = try RevisionBuild.run(settings, repository: repository, revision: revision, app: config.app,
                                                      onStep: { reporter.report(Event(.hostStep(step: $0))) },
                                                      onLine: { reporter.report(Event(host: "build", .hookOutput(event: nil, line: $0))) })
            }
        }
        var prepared = Prepared(revision: revision, appspec: appspec, bundles: bundles,
                                links: try links(appspec, file: "appspec.yml (at \(revision.shortCommit))") { path throws(ShipError) in
                                    try repository.entryKind(path, at: revision.commit)
                                })
        prepared.buildKey = buildKey
        return prepared
    }

    /// The `files` destinations ship links into `current` (the root, or a directory of the
    /// revision): none that is, holds or lies in deploy_to.
    func links(_ appspec: Appspec, file: String,
               kind: (String) throws(ShipError) -> GitRepository.EntryKind) throws(ShipError) -> [DestinationLink] {
        let deployTo = environment.deployTo
        var links: [DestinationLink] = []
        // A file source is copied by the agent at the switch, not linked.
        for (index, mapping) in appspec.files.enumerated() {
            if mapping.source != "/" { guard try kind(mapping.source) == .directory else { continue } }
            let destination = mapping.destination
            let target = deployTo + "/current" + (mapping.source == "/" ? "" : "/" + mapping.source)
            if destination == target || links.contains(where: { $0.destination == destination && $0.target == target }) { continue }
            if let other = links.first(where: { $0.destination == destination }) {
                throw ShipError.config("\(destination) is the destination of two sources (\(other.target) and \(target))",
                                       at: .init(file: file, line: mapping.line), key: "files[\(index)].destination",
                                       hint: "CodeDeploy refuses this too: give each source its own destination")
            }
            if destination == deployTo || destination.hasPrefix(deployTo + "/") || deployTo.hasPrefix(destination + "/") || destination == "/" {
                throw ShipError.config("destination \(destination) overlaps deploy_to \(deployTo), where ship keeps releases/, shared/ and current",
                                       at: .init(file: file, line: mapping.line), key: "files[\(index)].destination",
                                       hint: "keep the destination and move deploy_to beside it (e.g. deploy_to: \(destination)-releases in ship.yml): "
                                           + "ship makes \(destination) a link to the live release")
            }
            links.append(DestinationLink(destination: destination, target: target))
        }
        return links
    }

    static func bundleCache(app: String) -> String {
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")
        return base + "/ship/bundles"
    }

    public func run() async -> DeploymentResult {
        let deploymentId = ReleaseName.deploymentId()
        // One agent session per host for the whole run, ended once every host is settled.
        let clients = Deployment.orderedHosts(environment.hosts).map {
            AgentClient.withSession(transport: makeTransport($0), deployTo: environment.deployTo)
        }
        let tunnel = healthTunnel()
        let result = await run(deploymentId: deploymentId, clients: clients, tunnel: tunnel)
        await tunnel?.close()
        _ = await forEachHost(clients) { client -> Bool in
            await client.endSession(deploymentId: deploymentId)
            return true
        }
        return result
    }

    func run(deploymentId: String, clients: [AgentClient], tunnel: HealthTunnel?) async -> DeploymentResult {
        var release = ReleaseName.make()
        let prepared: Prepared
        do {
            prepared = try prepare()
        } catch {
            return finish(.failed, exit: error.exitCode, id: deploymentId, release: release, message: error.description, hint: error.hint)
        }
        // No backup, no migrate: a pre-migrate backup that cannot even start stops the deployment here.
        var backups: Backups?
        if let settings = environment.backup, settings.beforeMigrate, request.sync == nil, !prepared.appspec.hooks(for: .migrate).isEmpty {
            do {
                let configured = try Backups(config: config, environment: environment, agents: agents, makeTransport: makeTransport)
                _ = try configured.databaseTarget(configured.databaseSettings())
                backups = configured
            } catch {
                return finish(.failed, exit: error.exitCode, id: deploymentId, release: release, message: error.description, hint: error.hint)
            }
        }
        let hosts = clients.map(\.transport.host)
        // A pool larger than max_concurrency keeps at most that many agent sessions open: the
        // preflight and the locks use one ssh command per host, each host's session lasts its
        // batch, pruning and unlocking. A smaller pool keeps one session per host for the run.
        let bounded = hosts.count > environment.concurrency
        let firstContact = bounded ? clients.map { $0.withoutSession() } : clients

        // Preflight: every host reachable, agent installed, shared files present. Nothing changes yet.
        var states: [AgentResult]
        do {
            let runas = Set(LifecycleEvent.order.flatMap { prepared.appspec.hooks(for: $0) }.compactMap(\.runas))
            states = try await preflight(firstContact, bundleSHA256: prepared.bundles.cached()?.sha256, runasUsers: runas.sorted(),
                                         links: prepared.links, appspec: prepared.appspec)
        } catch {
            return finish(.failed, exit: .preflight, id: deploymentId, release: release, message: error.description, hint: error.hint)
        }
        let lock = LockInfo(deploymentId: deploymentId, holder: ReleaseName.holder, started: Event.timestamp(Date()), pid: getpid())
        do {
            // The name is chosen under the lock, after every release a deployment queued ahead
            // of this one made: new on every host.
            let locked = try await takeLocks(firstContact, lock: lock)
            for (index, host) in hosts.enumerated() {
                guard let state = locked[host.description] else { continue }
                states[index].currentRelease = state.currentRelease
                states[index].currentRevision = state.currentRevision
                states[index].releases = state.releases
                states[index].releaseInfos = state.releaseInfos
            }
            release = ReleaseName.make(after: states.flatMap { $0.releases ?? [] })
            if let expected = request.sync {
                let changed = zip(hosts, states).filter { host, state in expected[host.description].map { $0 != state.currentRelease } ?? false }
                if !changed.isEmpty {
                    await releaseLocks(clients, lock: lock)
                    let what = changed.map { "\($0.0) is now on \($0.1.currentRelease ?? "no release")" }.joined(separator: ", ")
                    return finish(.failed, exit: .failed, id: deploymentId, release: release,
                                  message: "nothing was changed: the environment changed since sync looked (\(what))", hint: "run ship sync again")
                }
            }
        } catch {
            return finish(.failed, exit: error.exitCode, id: deploymentId, release: release, message: error.description, hint: error.hint)
        }
        // The store's record of the environment as this deployment found it: it claims it at the
        // end only if no other deployment did meanwhile.
        var recorded: (store: EnvironmentStore, etag: String?)?
        if request.sync == nil, let store = try? environmentStore() {
            do throws(ShipError) {
                recorded = (store, try store.readCurrent().etag)
            } catch {
                reporter.report(Event(.hostWarning(message: "cannot read \(store.artifacts.client.describe(store.currentKey)): \(error.description); "
                    + "this deployment will not update it")))
            }
        }
        reporter.report(Event(.deploymentStarted(deploymentId: deploymentId, environment: environment.name,
                                                 revision: prepared.revision.commit, release: release,
                                                 hosts: hosts.map(\.description))))

        var runContext = HostContext(deploymentId: deploymentId, kind: request.sync == nil ? "deploy" : "sync", release: release,
                                  revision: prepared.revision.commit, prepared: prepared, lock: lock, traffic: trafficControl(),
                                  healthTunnel: tunnel)
        let previousByHost = Dictionary(uniqueKeysWithValues: zip(hosts.map(\.description), states.map(\.currentRelease)))
        let shipments: [String: Shipment]
        do throws(ShipError) {
            shipments = try plan(for: hosts, states: states, prepared: prepared)
        } catch {
            await releaseLocks(clients, lock: lock)
            return finish(.failed, exit: error.exitCode, id: deploymentId, release: release, message: error.description, hint: error.hint)
        }
        // Deltas are made for this run's hosts only.
        defer { for path in Set(shipments.values.compactMap(\.delta?.bundle.path)) { unlink(path) } }
        // artifacts: the bundle goes to the store once (and is there for hosts that pull it);
        // each host that lacks it fetches it there.
        if let settings = environment.artifacts {
            do throws(ShipError) {
                runContext.artifacts = try publish(settings, prepared: prepared)
            } catch {
                await releaseLocks(clients, lock: lock)
                return finish(.failed, exit: error.exitCode, id: deploymentId, release: release, message: error.description, hint: error.hint)
            }
        }
        let context = runContext
        // What is about to happen: above the live view on a terminal, an event in JSON.
        var opening = makePlan(hosts: hosts, states: states, prepared: prepared, release: release, shipments: shipments)
        opening.lock = nil // this run's own
        reporter.report(Event(.plan(opening)))
        let plan = BatchPlan(hosts: hosts, spec: request.batch ?? environment.batch)
        let clientByHost = Dictionary(uniqueKeysWithValues: clients.map { ($0.transport.host.description, $0) })
        var switched: [(client: AgentClient, previous: String?)] = []
        var rollbackFailed: [HostError] = []
        var failures: [HostError] = []
        var failure: HostError?
        var interrupted = false
        var migrated = prepared.appspec.hooks(for: .migrate).isEmpty || request.sync != nil
        /// Hosts whose old release was stopped and that will not switch: started again on it.
        func restart(_ clients: [AgentClient]) async {
            // A host still unreachable is already failed as lost (its state said); a reachable
            // host that cannot be started again is down, and the run says so with exit 3.
            rollbackFailed += await restartStopped(clients, previousByHost: previousByHost, context: context).filter { !$0.unreachable }
        }
        /// Installed hosts that will not switch: release removed, old release started again.
        var startedHosts: Set<String> = []
        var abandonedHosts: Set<String> = []
        func giveUp(_ clients: [AgentClient], reason: String) async {
            abandonedHosts.formUnion(clients.map(\.transport.host.description))
            await abandon(clients, reason: reason, context: context)
            await restart(clients)
        }
        /// After a first interrupt nothing new starts on any host: installed hosts give up.
        func stopsForInterrupt(_ ready: [AgentClient], before step: String) async -> Bool {
            guard interruption.requested else { return false }
            interrupted = true
            await giveUp(ready, reason: "interrupted before \(step)")
            return true
        }
        for (number, batch) in plan.batches.enumerated() {
            if interruption.requested {
                interrupted = true
                break
            }
            reporter.report(Event(.batchStarted(number: number + 1, of: plan.batches.count, hosts: batch.map(\.description))))
            startedHosts.formUnion(batch.map(\.description))
            let batchClients = batch.map { clientByHost[$0.description]! }
            // Phase 1, in parallel: bundle, unpack, stop, install. Nothing switches yet.
            let installed = await forEachHost(batchClients, width: environment.concurrency) { client -> InstallOutcome in
                let host = client.transport.host.description
                return await installHost(client, previous: previousByHost[host] ?? nil,
                                         shipment: shipments[host] ?? Shipment(fullPresent: false), context: context)
            }
            var ready: [AgentClient] = []
            var stoppedFailures: [AgentClient] = []
            for (client, result) in zip(batchClients, installed) {
                guard case .success(let outcome) = result else { continue }
                if let error = outcome.error {
                    failures.append(error)
                    // A lost session is often a dropped connection, not a dead host: the restart
                    // is tried over a new one, and said to have failed if the host is gone.
                    if outcome.stopped { stoppedFailures.append(client) }
                } else {
                    ready.append(client)
                }
            }
            await restart(stoppedFailures)
            // Migrate once, on the first host (the migrate host goes first), before any host switches.
            if !migrated {
                guard let migrateClient = ready.first, migrateClient.transport.host == hosts[0] else {
                    failure = failures.first ?? HostError(host: hosts[0].description, step: "migrate", message: "the migrate host failed", unreachable: false)
                    await giveUp(ready, reason: "the migrate host failed")
                    break
                }
                // No backup and no migrate after a first interrupt.
                if await stopsForInterrupt(ready, before: "migrate") { break }
                if let backups, let site = backups.settings.db?.site {
                    reporter.report(Event(host: site.description, .hostStep(step: "backup before migrate")))
                    do {
                        // What the migrate host runs now: the revision this backup can go back to.
                        let manifest = try await backups.backupDatabase(deployed: .known(states[0].currentRevision), purpose: "before_migrate",
                                                                     deploymentId: deploymentId)
                        reporter.report(Event(host: site.description, .backupTaken(id: manifest.id, bytes: manifest.bytes, sha256: manifest.sha256)))
                    } catch {
                        reporter.report(Event(host: site.description, .hostFailed(step: "backup", message: error.description)))
                        failure = HostError(host: site.description, step: "backup before migrate",
                                            message: error.description + " (nothing was migrated or switched)", unreachable: false)
                        await giveUp(ready, reason: "the backup before migrate failed")
                        break
                    }
                    if await stopsForInterrupt(ready, before: "migrate") { break }
                }
                do {
                    let previous = previousByHost[migrateClient.transport.host.description] ?? nil
                    try await runHooks(migrateClient, release: context.release, event: .migrate,
                                       env: hookEnvironment(migrateClient, context: context, previous: previous), context: context)
                    migrated = true
                } catch {
                    reporter.report(Event(host: error.host, .hostFailed(step: "migrate", message: error.message)))
                    failure = HostError(host: error.host, step: "migrate", message: error.message, unreachable: error.unreachable)
                    abandonedHosts.formUnion(ready.dropFirst().map(\.transport.host.description))
                    await abandon(Array(ready.dropFirst()), reason: "migrate failed", context: context)
                    await discard([migrateClient], context: context)
                    await restart(ready)
                    break
                }
            }
            if failures.count > environment.allowedFailures || interruption.requested {
                interrupted = interruption.requested && failures.count <= environment.allowedFailures
                await giveUp(ready, reason: interrupted ? "interrupted before switching" : "too many hosts failed")
                break
            }
            // Phase 2, in parallel: switch, start, validate.
            let activated = await forEachHost(ready, width: environment.concurrency) { client -> ActivationOutcome in
                await activateHost(client, context: context)
            }
            var notSwitched: [AgentClient] = []
            for (client, outcome) in zip(ready, activated) {
                let previous = previousByHost[client.transport.host.description] ?? nil
                guard case .success(let activation) = outcome else { continue }
                if let error = activation.error {
                    failures.append(error)
                    if activation.switched {
                        if failures.count <= environment.allowedFailures {
                            // Tolerated: this host goes back alone and the deployment goes on.
                            let rollbackFailures = await rollBack([(client, previous)], context: context)
                            failures += rollbackFailures
                            rollbackFailed += rollbackFailures
                        } else {
                            switched.append((client, previous))
                        }
                    } else if !error.unreachable {
                        notSwitched.append(client)
                    }
                } else {
                    switched.append((client, previous))
                }
            }
            await restart(notSwitched)
            // A pool larger than max_concurrency: the hosts this batch validated are settled and
            // their agent sessions end now, so no idle session per host is kept for the whole
            // run (a rollback later opens one again).
            if bounded {
                let validated = zip(ready, activated).compactMap { client, outcome -> AgentClient? in
                    guard case .success(let activation) = outcome, activation.error == nil else { return nil }
                    return client
                }
                _ = await forEachHost(validated) { client -> Bool in
                    await client.endSession(deploymentId: deploymentId)
                    return true
                }
            }
            if failures.count > environment.allowedFailures { break }
        }
        if failure == nil, failures.count > environment.allowedFailures { failure = failures.first }

        var rollbackFailedHosts: Set<String> = []
        var status: DeploymentResult.Status = .succeeded
        var exit: ShipError.ExitCode?
        var message: String?
        if interrupted && failure == nil {
            status = .failed
            exit = .interrupted
            let hostsOnRelease = switched.map(\.client.transport.host.description)
            message = "interrupted: no new host started; "
                + (hostsOnRelease.isEmpty ? "no host switched to \(release)"
                    : "\(hostsOnRelease.joined(separator: ", ")) switched to \(release) and stay on it")
        } else if let failure {
            status = .failed
            exit = .failed
            message = failure.description
            if environment.rollback == .auto && !switched.isEmpty {
                let failedRollbacks = await rollBack(switched.reversed(), context: context) + rollbackFailed
                rollbackFailedHosts = Set(failedRollbacks.map(\.host))
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
                message = "\(failures.count) host\(failures.count == 1 ? "" : "s") failed and rolled back (\(environment.failureLimit?.description ?? "max_fail \(environment.maxFail)"): "
                    + failures.map(\.description).joined(separator: "; ")
            }
            _ = await forEachHost(clients, width: environment.concurrency) { client -> Bool in
                await prune(client, previous: previousByHost[client.transport.host.description] ?? nil, context: context)
                if bounded { await client.endSession(deploymentId: deploymentId) }
                return true
            }
        }
        if let out = await reportOutOfRotation(context, hosts: hosts) {
            message = message.map { $0 + "; " + out } ?? out
        }
        let failedHosts = Set(failures.map(\.host)).union(rollbackFailedHosts).union(rollbackFailed.map(\.host))
        let switchedHosts = Set(switched.map(\.client.transport.host.description))
        // What happened to each host, for its journal: history tells the truth per host.
        let hostStatus: [String: String] = Dictionary(uniqueKeysWithValues: hosts.map { host in
            let name = host.description
            let outcome: String
            if !startedHosts.contains(name) { outcome = "not_started" }
            else if failedHosts.contains(name) { outcome = "failed" }
            else if abandonedHosts.contains(name) { outcome = "not_switched" }
            else if switchedHosts.contains(name) && status == .rolledBack { outcome = "rolled_back" }
            else { outcome = "succeeded" }
            return (name, outcome)
        })
        let finalStatus = status, finalMessage = message
        await releaseLocks(clients, lock: lock) { client in
            var journal = journalEntry(context, step: "finished")
            journal.status = finalStatus.rawValue
            journal.detail = failedHosts.contains(client.transport.host.description) ? "host failed" : finalMessage
            journal.hostStatus = hostStatus[client.transport.host.description]
            return journal
        }
        // Every host validated: the store says which release the environment is on.
        if status == .succeeded, exit == nil, let recorded, let bundle = prepared.bundles.cached() {
            let current = EnvironmentStore.Current(app: config.app, environment: environment.name, release: release,
                                                   revision: prepared.revision.commit, sha256: bundle.sha256,
                                                   bundle: recorded.store.artifacts.key(bundle.sha256), deploymentId: deploymentId,
                                                   holder: lock.holder, time: Event.timestamp(Date()), install: installSpec(prepared))
            do throws(ShipError) {
                try recorded.store.claim(current, replacing: recorded.etag)
                reporter.report(Event(.hostStep(step: "\(recorded.store.artifacts.client.describe(recorded.store.currentKey)) says release \(release)")))
            } catch {
                return finish(.failed, exit: error.exitCode, id: deploymentId, release: release, message: error.description, hint: error.hint)
            }
        }
        if status == .succeeded, exit == nil,
           let caughtUp = await catchUp(deployed: hosts, release: release, revision: prepared.revision.commit) {
            let what = "\(caughtUp.hosts.count) host\(caughtUp.hosts.count == 1 ? "" : "s") that joined during the deployment (\(caughtUp.hosts.joined(separator: ", ")))"
            guard caughtUp.result.status == .succeeded else {
                return finish(.failed, exit: caughtUp.result.exitCode ?? .failed, id: deploymentId, release: release,
                              message: "every host deployed validated, but \(what) could not be brought to it: "
                                + (caughtUp.result.message ?? "failed"),
                              hint: "see the catch-up's steps above; then run ship sync \(environment.name)")
            }
            message = (message.map { $0 + "; " } ?? "") + "\(what) brought to it too"
        }
        return finish(status, exit: exit, id: deploymentId, release: release, message: message)
    }

    /// `health_check.from`'s tunnel for one run (opened when a check first needs it).
    func healthTunnel() -> HealthTunnel? {
        guard let from = environment.healthCheck?.from else { return nil }
        // A pool host keeps its port and user as the environment gives them.
        let host = environment.hosts.first { $0.description == from.description || $0.name == from.name } ?? from
        return HealthTunnel(host: host, makeTransport: makeTransport)
    }

    /// The environment's `traffic:` for one run.
    func trafficControl() -> TrafficControl? {
        environment.traffic.map {
            TrafficControl(settings: $0, environment: environment, app: config.app, agents: agents, makeTransport: makeTransport, reporter: reporter)
        }
    }

    func finish(_ status: DeploymentResult.Status, exit: ShipError.ExitCode?, id: String, release: String, message: String?,
                hint: String? = nil) -> DeploymentResult {
        reporter.report(Event(.deploymentFinished(status: status.rawValue, release: release, deploymentId: id, message: message)))
        return DeploymentResult(status: status, exitCode: exit, deploymentId: id, release: release, message: message, hint: hint)
    }

    /// The first host with role `migrate` goes first, so migrate runs before any host switches.
    static func orderedHosts(_ hosts: [Host]) -> [Host] {
        guard let index = hosts.firstIndex(where: { $0.roles.contains("migrate") }) else { return hosts }
        var ordered = hosts
        ordered.insert(ordered.remove(at: index), at: 0)
        return ordered
    }
}
