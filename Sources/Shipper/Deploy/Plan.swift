import Foundation
import Hooks

/// What a deployment or a rollback would do, host by host, read from the hosts without changing
/// anything on them: `--dry-run` prints it instead of running, and a real run on a terminal
/// opens with it.
public struct DeploymentPlan: Sendable {
    public struct HostPlan: Sendable {
        public var host: String
        public var batch: Int
        public var currentRelease: String?
        public var currentRevision: String?
        /// A rollback's destination on this host.
        public var target: String?
        /// What the host would be sent, in words, and its size.
        public var sends: String?
        public var sendBytes: Int64?
        /// Releases the prune after a successful run would remove.
        public var prunes: [String] = []
        /// What a real run would also do or meet here (the agent installed or updated).
        public var notes: [String] = []
        /// Why a real run would stop at this host's preflight.
        public var problem: String?
    }

    /// `deploy` or `rollback`.
    public var kind: String
    public var environment: String
    /// The revision deployed, or the release rolled back to.
    public var revision: String?
    public var summary: String?
    /// The new release's name (it is chosen again under the lock by a real run).
    public var release: String
    public var migrateHost: String?
    public var batches: [[String]]
    /// The appspec in words: hooks per event in order, files, permissions.
    public var appspec: [String]
    public var hosts: [HostPlan]
    public var lock: LockInfo?
    /// A dry run's last word: nothing changed, or what would stop a real run.
    public var verdict: String?
    /// Printed instead of a run (`--dry-run`), rather than opening one.
    public var dryRun = false

    /// The plan in lines; past `hostLimit` hosts and `appspecLimit` appspec lines the rest is
    /// counted, not listed (a real run's opening plan stays within one screen).
    public func lines(hostLimit: Int = .max, appspecLimit: Int = .max) -> [String] {
        var lines: [String] = []
        if kind == "deploy" {
            lines.append("plan: deploy \(revision.map { String($0.prefix(12)) } ?? "?")" + (summary.map { " (\($0))" } ?? "")
                         + " to \(environment) as release \(release), \(hosts.count) host\(hosts.count == 1 ? "" : "s")")
        } else {
            lines.append("plan: roll \(environment) back to release \(release), \(hosts.count) host\(hosts.count == 1 ? "" : "s")")
        }
        for (index, batch) in batches.enumerated() {
            lines.append("  batch \(index + 1)/\(batches.count): " + batch.map { $0 == migrateHost ? "\($0) (migrate)" : $0 }.joined(separator: ", "))
        }
        if !appspec.isEmpty {
            lines.append("  hooks and files, in order:")
            lines += appspec.prefix(appspecLimit).map { "    " + $0 }
            if appspec.count > appspecLimit { lines.append("    … (`ship check` lists them all)") }
        }
        let listed = hosts.count <= hostLimit ? hosts : Array(hosts.prefix(hostLimit))
        for host in listed {
            var line = "  \(host.host): "
            if let current = host.currentRelease {
                line += "on \(current)" + (host.currentRevision.map { " (\($0.prefix(12)))" } ?? "")
            } else {
                line += "no release yet"
            }
            if let target = host.target { line += target == host.currentRelease ? ", stays on \(target)" : " -> \(target)" }
            if let sends = host.sends { line += "; sends \(sends)" }
            if !host.prunes.isEmpty { line += "; prunes \(host.prunes.joined(separator: ", "))" }
            if !host.notes.isEmpty { line += "; " + host.notes.joined(separator: "; ") }
            if let problem = host.problem { line += "; WOULD FAIL its preflight: \(problem)" }
            lines.append(line)
        }
        if listed.count < hosts.count { lines.append("  … and \(hosts.count - listed.count) more hosts") }
        if let lock { lines.append("  the lock is held by \(lock.described()): a real run waits (--lock-wait) or exits 4") }
        if let verdict { lines.append(verdict) }
        return lines
    }

    public var json: [String: Any] {
        var object: [String: Any] = ["kind": kind, "environment": environment, "release": release, "batches": batches, "appspec": appspec,
                                     "dry_run": dryRun]
        if let revision { object["revision"] = revision }
        if let migrateHost { object["migrate_host"] = migrateHost }
        if let lock { object["lock"] = ["holder": lock.holder, "deployment_id": lock.deploymentId] }
        if let verdict { object["verdict"] = verdict }
        object["hosts"] = hosts.map { host -> [String: Any] in
            var entry: [String: Any] = ["host": host.host, "batch": host.batch, "prunes": host.prunes, "notes": host.notes]
            entry["current_release"] = host.currentRelease ?? NSNull()
            entry["current_revision"] = host.currentRevision ?? NSNull()
            if let target = host.target { entry["target"] = target }
            if let sends = host.sends { entry["sends"] = sends }
            if let bytes = host.sendBytes { entry["send_bytes"] = bytes }
            if let problem = host.problem { entry["problem"] = problem }
            return entry
        }
        return object
    }
}

extension Deployment {
    /// What each host is like now, read without changing anything: through the agent when the
    /// host has ship's own (its preflight answers, lock and release states included), else with
    /// plain shell reads of the layout (a real run would install its agent first).
    struct Look: Sendable {
        var state: AgentResult
        /// The host has this ship's agent, so `state` has release states and its preflight's verdict.
        var agentCurrent: Bool
        var note: String?
    }

    func look(at clients: [AgentClient], bundleSHA256: String?, runasUsers: [String], links: [DestinationLink],
              appspec: Appspec?) async -> [Result<Look, HostError>] {
        let agents = self.agents
        return await forEachHost(clients) { client throws(HostError) -> Look in
            let probe = try await client.probe()
            let agent = try client.agent(for: probe, in: agents)
            guard probe.installedAgentSHA256 == agent.sha256 else {
                return Look(state: try await client.readLayout(), agentCurrent: false,
                            note: probe.installedAgentSHA256 == nil ? "ship's agent would be installed" : "ship's agent would be updated")
            }
            let request = preflightRequest(client, bundleSHA256: bundleSHA256, runasUsers: runasUsers, links: links, appspec: appspec)
            return Look(state: try await client.call(request), agentCurrent: true, note: nil)
        }
    }

    /// `ship deploy --dry-run`: the plan, with nothing sent, locked or changed on any host.
    public func dryRun() async -> DeploymentResult {
        let prepared: Prepared
        do {
            prepared = try prepare()
        } catch {
            return DeploymentResult(status: .failed, exitCode: error.exitCode, deploymentId: "dry-run", release: "", message: error.description,
                                    hint: error.hint)
        }
        let hosts = Self.orderedHosts(environment.hosts)
        let clients = hosts.map { AgentClient(transport: makeTransport($0), deployTo: environment.deployTo) }
        let runas = Set(LifecycleEvent.order.flatMap { prepared.appspec.hooks(for: $0) }.compactMap(\.runas)).sorted()
        let looks = await look(at: clients, bundleSHA256: prepared.bundles.cached()?.sha256, runasUsers: runas,
                               links: prepared.links, appspec: prepared.appspec)
        var unreachable: [String] = []
        var states: [AgentResult] = []
        var notes: [String: String] = [:]
        for (host, look) in zip(hosts, looks) {
            switch look {
            case .success(let found):
                states.append(found.state)
                notes[host.description] = found.note
            case .failure(let error):
                unreachable.append(error.description)
                states.append(AgentResult(ok: false, message: error.message))
            }
        }
        let release = ReleaseName.make(after: states.flatMap { $0.releases ?? [] })
        let shipments: [String: Shipment]
        do {
            // Bundles are written to the local cache only: a real run then sends them as they are.
            let reachable = zip(hosts, zip(states, looks)).filter { if case .success = $0.1.1 { true } else { false } }
            shipments = try plan(for: reachable.map(\.0), states: reachable.map(\.1.0), prepared: prepared)
        } catch {
            return DeploymentResult(status: .failed, exitCode: error.exitCode, deploymentId: "dry-run", release: release,
                                    message: error.description, hint: error.hint)
        }
        defer { for path in Set(shipments.values.compactMap(\.delta?.bundle.path)) { unlink(path) } }
        var plan = makePlan(hosts: hosts, states: states, prepared: prepared, release: release, shipments: shipments)
        plan.dryRun = true
        for (index, host) in hosts.enumerated() {
            if case .failure(let error) = looks[index] {
                plan.hosts[index].problem = error.message
            } else if !states[index].ok {
                plan.hosts[index].problem = states[index].message
            }
            if let note = notes[host.description] { plan.hosts[index].notes.append(note) }
        }
        return planResult(plan, unreachable: unreachable)
    }

    /// The plan of a deployment from what the hosts said (`states`, in `hosts` order) and what
    /// each is to be sent.
    func makePlan(hosts: [Host], states: [AgentResult], prepared: Prepared, release: String,
                  shipments: [String: Shipment]) -> DeploymentPlan {
        let batches = BatchPlan(hosts: hosts, spec: request.batch ?? environment.batch).batches
        let repository = try? GitRepository.open(containing: config.directory)
        let copies = Set(prepared.appspec.files.map(\.source).filter { source in
            source != "/" && (try? repository?.entryKind(source, at: prepared.revision.commit)) != .directory
        })
        var plan = DeploymentPlan(kind: "deploy", environment: environment.name, revision: prepared.revision.commit,
                                  summary: prepared.revision.summary, release: release,
                                  migrateHost: prepared.appspec.hooks(for: .migrate).isEmpty || request.sync != nil ? nil : hosts.first?.description,
                                  batches: batches.map { $0.map(\.description) },
                                  appspec: AppspecSummary.lines(prepared.appspec, copies: copies), hosts: [], lock: nil)
        for (host, state) in zip(hosts, states) {
            let name = host.description
            var entry = DeploymentPlan.HostPlan(host: name, batch: (batches.firstIndex { $0.contains(host) } ?? 0) + 1,
                                                currentRelease: state.currentRelease, currentRevision: state.currentRevision)
            if let shipment = shipments[name] {
                if let delta = shipment.delta {
                    entry.sends = "a delta of \(ByteCountFormatter.string(fromByteCount: delta.bundle.bytes, countStyle: .file)) "
                        + "(\(delta.changedFiles) changed file\(delta.changedFiles == 1 ? "" : "s"); \(delta.unchanged.count) copied from \(shipment.baseRelease ?? "its base"))"
                    entry.sendBytes = delta.bundle.bytes
                } else if shipment.fullPresent {
                    entry.sends = "nothing (the bundle is in its cache)"
                    entry.sendBytes = 0
                } else if let full = prepared.bundles.cached() {
                    let size = ByteCountFormatter.string(fromByteCount: full.bytes, countStyle: .file)
                    if let artifacts = environment.artifacts {
                        // The host fetches it; the controller sends a link.
                        entry.sends = (artifacts.hostCredentials ? "nothing: with its own credentials," : "a link:")
                            + " it fetches the bundle (\(size)) from s3://\(artifacts.bucket)"
                            + (artifacts.prefix.isEmpty ? "" : "/\(artifacts.prefix)")
                        entry.sendBytes = 0
                    } else {
                        entry.sends = "the bundle (\(size))"
                        entry.sendBytes = full.bytes
                    }
                }
            }
            entry.prunes = Self.wouldPrune(state, newRelease: release, keep: environment.keepReleases)
            if plan.lock == nil, let lock = state.lock { plan.lock = lock }
            plan.hosts.append(entry)
        }
        return plan
    }

    /// The exit code a real run would meet first: a host it cannot reach or whose preflight fails
    /// (5), a held lock (4); else 0.
    func planResult(_ plan: DeploymentPlan, unreachable: [String]) -> DeploymentResult {
        var plan = plan
        defer { reporter.report(Event(.plan(plan))) }
        let problems = plan.hosts.compactMap { host in host.problem.map { "\(host.host): \($0)" } }
        var result = DeploymentResult(status: .succeeded, exitCode: nil, deploymentId: "dry-run", release: plan.release,
                                      message: "dry run: nothing was changed")
        if !problems.isEmpty {
            result.status = .failed
            result.exitCode = .preflight
            result.message = "dry run: the preflight would fail on " + problems.joined(separator: "; ")
            result.hint = unreachable.isEmpty ? nil : "check that every host answers `ssh HOST`"
        } else if let lock = plan.lock {
            result.status = .failed
            result.exitCode = .locked
            result.message = "dry run: \(environment.name) is locked by \(lock.described())"
        }
        plan.verdict = result.message
        return result
    }

    /// What the agent's prune would remove once the new release is current and good: failed and
    /// abandoned releases, and counted ones past `keep` (the replaced release stays, it is the
    /// rollback target).
    static func wouldPrune(_ state: AgentResult, newRelease: String, keep: Int) -> [String] {
        guard let infos = state.releaseInfos else { return [] }
        let counted = infos.filter { $0.state.counts }.map(\.release) + [newRelease]
        let kept = Set(counted.suffix(max(1, keep))).union(state.currentRelease.map { [$0] } ?? [])
            .union(infos.filter { $0.state == .prepared }.map(\.release))
        return infos.map(\.release).filter { !kept.contains($0) }
    }

    /// `ship rollback --dry-run`: where each host would go, changing nothing.
    public func rollbackDryRun(to requested: String?, requestedRevision: String? = nil) async -> DeploymentResult {
        let hosts = Self.orderedHosts(environment.hosts)
        let clients = hosts.map { AgentClient(transport: makeTransport($0), deployTo: environment.deployTo) }
        let looks = await look(at: clients, bundleSHA256: nil, runasUsers: [], links: [], appspec: nil)
        var reported: [RollbackTarget.HostReleases] = []
        var entries: [DeploymentPlan.HostPlan] = []
        var unreachable: [String] = []
        var lock: LockInfo?
        let batches = BatchPlan(hosts: hosts, spec: request.batch ?? environment.batch).batches
        for (host, look) in zip(hosts, looks) {
            var entry = DeploymentPlan.HostPlan(host: host.description, batch: (batches.firstIndex { $0.contains(host) } ?? 0) + 1)
            switch look {
            case .failure(let error):
                unreachable.append(error.description)
                entry.problem = error.message
            case .success(let found):
                entry.currentRelease = found.state.currentRelease
                entry.currentRevision = found.state.currentRevision
                if let note = found.note { entry.notes.append(note) }
                if found.agentCurrent {
                    reported.append(RollbackTarget.HostReleases(host: host.description, current: found.state.currentRelease,
                                                                releases: found.state.releaseInfos ?? []))
                } else {
                    entry.problem = "its agent is not this ship's, so its release states cannot be read without changing it"
                }
                if lock == nil { lock = found.state.lock }
            }
            entries.append(entry)
        }
        var plan = DeploymentPlan(kind: "rollback", environment: environment.name, revision: nil, summary: nil, release: requested ?? "?",
                                  migrateHost: nil, batches: batches.map { $0.map(\.description) },
                                  appspec: ["each host: the stop hooks of its current release, a switch, then the start and validate hooks "
                                      + "(and the rest of the target release's appspec) as recorded with the target"],
                                  hosts: entries, lock: lock)
        plan.dryRun = true
        if entries.allSatisfy({ $0.problem == nil }) {
            switch RollbackTarget.choose(requested: requested, revision: requestedRevision, hosts: reported) {
            case .success(let target):
                plan.release = target
                for index in plan.hosts.indices { plan.hosts[index].target = target }
            case .failure(let refusal):
                plan.verdict = "dry run: a rollback would change nothing: " + refusal.message
                reporter.report(Event(.plan(plan)))
                return DeploymentResult(status: .failed, exitCode: .failed, deploymentId: "dry-run", release: requested ?? "",
                                        message: "dry run: a rollback would change nothing: " + refusal.message, hint: refusal.hint)
            }
        }
        return planResult(plan, unreachable: unreachable)
    }
}

extension AgentClient {
    /// `current`, its revision and the release directories, read with `readlink`, `cat` and a
    /// glob: for a host whose agent is not this ship's (nothing is installed to ask it).
    func readLayout() async throws(HostError) -> AgentResult {
        let script = #"d=$1; printf 'current=%s\n' "$(readlink "$d/current" 2>/dev/null)"; "#
            + #"printf 'revision=%s\n' "$(cat "$d/current/REVISION" 2>/dev/null)"; "#
            + #"for r in "$d"/releases/*; do [ -d "$r" ] && printf 'release=%s\n' "${r##*/}"; done; true"#
        let lines = SendableBox<[String]>([])
        let result = await transport.run(ShellLine(RemoteCommand(["sh", "-c", script, "sh", deployTo])), input: .none) { lines.value.append($0) }
        try failIfUnreachable(result, step: "connect")
        var state = AgentResult(ok: true)
        for line in lines.value {
            if line.hasPrefix("current="), let name = line.split(separator: "/").last, line.count > "current=".count { state.currentRelease = String(name) }
            if line.hasPrefix("revision="), line.count > "revision=".count { state.currentRevision = String(line.dropFirst("revision=".count)) }
            if line.hasPrefix("release=") { state.releases = (state.releases ?? []) + [String(line.dropFirst("release=".count))] }
        }
        return state
    }
}
