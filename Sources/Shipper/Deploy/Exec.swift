import Foundation
import Hooks

/// What `ship exec` was asked to run, and where.
public struct ExecRequest: Sendable {
    /// As given after `--`: one argument is a shell line (`'drush cr && drush cron'`); several
    /// are words, each quoted, so `ship exec -- echo "a b"` prints `a b`.
    public var arguments: [String]
    /// `--hosts`: these hosts of the environment, as ship.yml writes them.
    public var hosts: [String]?
    /// `--role`: the hosts with this role.
    public var role: String?
    /// `--once`: the first host (of the role) that is reachable and has a current release.
    public var once = false
    /// `--lock`: hold the environment's deploy lock while the command runs.
    public var lock = false
    /// `--batch`: a few hosts at a time, stopping after a batch with a failure; default: all at once.
    public var batch: BatchSpec?
    public var runas: String?
    /// Seconds before the command's processes are killed on a host.
    public var timeout = 3600

    public init(arguments: [String]) {
        self.arguments = arguments
    }

    /// The line the hosts' `/bin/sh -c` runs.
    public var line: String {
        arguments.count == 1 ? arguments[0] : arguments.map(ShellQuote.quote).joined(separator: " ")
    }
}

extension Deployment {
    /// `ship exec`: the command in `current` on the chosen hosts, with the hook environment; each
    /// host's output as it comes, a line per host at the end; exit 1 when any host failed.
    public func exec(_ exec: ExecRequest) async -> DeploymentResult {
        let id = "x" + ReleaseName.deploymentId().dropFirst()
        let hosts: [Host]
        do {
            hosts = try execHosts(exec)
        } catch {
            return execFinished(id: id, line: exec.line, succeeded: [], failed: [], exit: .usage, message: error.description, hint: error.hint)
        }
        let clients = hosts.map { AgentClient(transport: makeTransport($0), deployTo: environment.deployTo) }
        let agents = self.agents
        // Every host reachable and its agent current first: nothing runs anywhere otherwise,
        // except with --once, where the first host that answers is the one.
        var ready = clients
        if exec.once {
            var chosen: AgentClient?
            var problems: [String] = []
            for client in clients {
                do throws(HostError) {
                    _ = try await client.ensureAgent(agents)
                    let state = try await client.require(client.request(.state))
                    guard state.currentRelease != nil else {
                        problems.append("\(client.hostName): no release is current")
                        continue
                    }
                    chosen = client
                    break
                } catch {
                    problems.append(error.description)
                    reporter.report(Event(host: error.host, .hostWarning(message: "skipped for --once: \(error.message)")))
                }
            }
            guard let chosen else {
                return execFinished(id: id, line: exec.line, succeeded: [], failed: [], exit: .preflight,
                                    message: "no host can run it: " + problems.joined(separator: "; "),
                                    hint: "check the hosts with `ship status \(environment.name)`")
            }
            ready = [chosen]
        } else {
            let probes = await forEachHost(clients) { client throws(HostError) -> HostProbe in try await client.ensureAgent(agents) }
            do {
                try reportPreflight(probes)
            } catch {
                return execFinished(id: id, line: exec.line, succeeded: [], failed: [], exit: .preflight, message: error.description, hint: error.hint)
            }
        }
        let lock = LockInfo(deploymentId: id, holder: ReleaseName.holder, started: Event.timestamp(Date()), pid: getpid())
        // The lock is the environment's: every host of it, not only those the command runs on.
        let lockClients = exec.lock ? environment.hosts.map { AgentClient(transport: makeTransport($0), deployTo: environment.deployTo) } : []
        if exec.lock {
            do {
                try await takeLocks(lockClients, lock: lock)
            } catch {
                return execFinished(id: id, line: exec.line, succeeded: [], failed: [], exit: error.exitCode, message: error.description, hint: error.hint)
            }
        }
        reporter.report(Event(.execStarted(id: id, environment: environment.name, command: exec.line, hosts: ready.map(\.hostName))))
        let batches = exec.batch.map { spec in BatchPlan(hosts: ready.map(\.transport.host), spec: spec).batches.map { batch in
            batch.map { host in ready.first { $0.transport.host == host }! }
        } } ?? [ready]
        var succeeded: [String] = []
        var failed: [(host: String, message: String)] = []
        var skipped: [String] = []
        for (number, batch) in batches.enumerated() {
            guard failed.isEmpty, !interruption.requested else {
                skipped += batch.map(\.hostName)
                continue
            }
            if batches.count > 1 { reporter.report(Event(.batchStarted(number: number + 1, of: batches.count, hosts: batch.map(\.hostName)))) }
            let results = await forEachHost(batch) { client throws(HostError) -> HookOutcome? in
                try await self.execute(exec, id: id, on: client)
            }
            for (client, result) in zip(batch, results) {
                switch result {
                case .success: succeeded.append(client.hostName)
                case .failure(let error):
                    failed.append((client.hostName, error.message))
                    if error.unreachable || error.step != "exec" {
                        reporter.report(Event(host: client.hostName, .hostFailed(step: error.step, message: error.message)))
                    }
                }
            }
        }
        if exec.lock { await releaseLocks(lockClients, lock: lock) }
        let interrupted = interruption.requested
        var message: String?
        if !failed.isEmpty {
            message = "failed on " + failed.map { "\($0.host) (\($0.message))" }.joined(separator: ", ")
                + (skipped.isEmpty ? "" : "; not run on " + skipped.joined(separator: ", "))
        } else if interrupted, !skipped.isEmpty {
            message = "interrupted; not run on " + skipped.joined(separator: ", ")
        }
        return execFinished(id: id, line: exec.line, succeeded: succeeded, failed: failed.map(\.host),
                            exit: !failed.isEmpty ? .failed : (interrupted ? .interrupted : nil), message: message)
    }

    /// The hosts `--hosts`, `--role` and `--once` choose, in ship.yml's order.
    func execHosts(_ exec: ExecRequest) throws(ShipError) -> [Host] {
        var hosts = environment.hosts
        if let names = exec.hosts {
            let known = Set(hosts.map(\.description)).union(hosts.map(\.name))
            if let unknown = names.first(where: { !known.contains($0) }) {
                throw ShipError.usage("\(unknown) is not a host of \(environment.name)",
                                      hint: "its hosts: " + hosts.map(\.description).joined(separator: ", "))
            }
            hosts = hosts.filter { names.contains($0.description) || names.contains($0.name) }
        }
        if let role = exec.role {
            let roles = Set(environment.hosts.flatMap(\.roles)).sorted()
            hosts = hosts.filter { $0.roles.contains(role) }
            guard !hosts.isEmpty else {
                throw ShipError.usage("no host of \(environment.name)\(exec.hosts == nil ? "" : " among --hosts") has the role \(role)",
                                      hint: roles.isEmpty ? "give hosts roles in ship.yml: { name: web1, roles: [\(role)] }"
                                          : "roles of \(environment.name): " + roles.joined(separator: ", "))
            }
        }
        return hosts
    }

    /// Runs the command on one host; its output is reported as it comes. A command that fails is
    /// an error of step `exec`.
    func execute(_ exec: ExecRequest, id: String, on client: AgentClient) async throws(HostError) -> HookOutcome? {
        let host = client.hostName
        var request = client.request(.exec)
        request.command = exec.line
        request.runas = exec.runas
        request.timeout = exec.timeout
        request.hookEnvironment = hostEnvironment(client)
        request.secretNames = secrets.isEmpty ? nil : secrets.keys.sorted()
        request.journal = JournalEntry(time: Event.timestamp(Date()), deploymentId: id, kind: "exec", step: "exec")
        let reporter = self.reporter
        let finished = SendableBox<HookOutcome?>(nil)
        let result = try await client.call(request) { agentEvent in
            switch agentEvent.kind {
            case .output: reporter.report(Event(host: host, .execOutput(line: agentEvent.line ?? "")))
            case .hookFinished:
                finished.value = agentEvent.outcome
                if let outcome = agentEvent.outcome { reporter.report(Event(host: host, .execHostFinished(outcome: outcome))) }
            default: break
            }
        }
        guard result.ok else {
            if finished.value == nil { reporter.report(Event(host: host, .hostFailed(step: "exec", message: result.message ?? "failed"))) }
            throw HostError(host: host, step: "exec", message: result.message ?? "failed", unreachable: false, hint: result.hint)
        }
        return finished.value
    }

    func execFinished(id: String, line: String, succeeded: [String], failed: [String], exit: ShipError.ExitCode?,
                      message: String?, hint: String? = nil) -> DeploymentResult {
        let status = exit == nil ? "succeeded" : (exit == .interrupted ? "interrupted" : "failed")
        reporter.report(Event(.execFinished(id: id, status: status, succeeded: succeeded, failed: failed, message: message)))
        return DeploymentResult(status: exit == nil ? .succeeded : .failed, exitCode: exit, deploymentId: id, release: "",
                                message: message, hint: hint)
    }
}
