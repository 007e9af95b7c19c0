import Foundation
import Hooks

/// `traffic:` hosts out of the load balancer's rotation and back in it, through the agent on each
/// balancer host (the controller's own agent for `local`), all balancers at once. It remembers
/// which hosts this run took out and has not put back: at the end of a run those are the hosts
/// whose app may be down, and the run says so.
actor TrafficControl {
    let settings: TrafficSettings
    let environment: Environment
    let app: String
    let agents: AgentCatalog
    let makeTransport: @Sendable (Host) -> any Transport
    let reporter: any Reporter
    private var clients: [String: Task<Result<AgentClient, HostError>, Never>] = [:]
    private var out: [String: Host] = [:]

    init(settings: TrafficSettings, environment: Environment, app: String, agents: AgentCatalog,
         makeTransport: @escaping @Sendable (Host) -> any Transport, reporter: any Reporter) {
        self.settings = settings
        self.environment = environment
        self.app = app
        self.agents = agents
        self.makeTransport = makeTransport
        self.reporter = reporter
    }

    /// Takes the host out of rotation (HAProxy: drained, then in maintenance). Hosts not behind
    /// the balancer (`roles`) are left alone.
    func takeOut(_ host: Host) async throws(HostError) {
        guard settings.manages(host) else { return }
        guard let server = settings.server(for: host) else {
            throw HostError(host: host.description, step: "out of rotation", message: "no instance id for this host", unreachable: false,
                            hint: "name it under traffic.aws_target_group.instances, or take the host from inventory: { aws: … }")
        }
        out[host.description] = host
        try await apply(.out, host: host, server: server)
    }

    /// Puts back a host this run took out; nothing for another host.
    func putBack(_ host: Host) async throws(HostError) {
        guard out[host.description] != nil, let server = settings.server(for: host) else { return }
        try await apply(.back, host: host, server: server)
        out[host.description] = nil
    }

    /// `putBack`, a failure said as a warning: for hosts whose release never stopped.
    func putBackReporting(_ host: Host) async {
        do {
            try await putBack(host)
        } catch {
            reporter.report(Event(host: host.description, .hostWarning(message: "\(error.message): it stays out of rotation")))
        }
    }

    /// Hosts taken out and not put back, in ship.yml's order.
    func hostsOut(order: [Host]) -> [Host] {
        order.filter { out[$0.description] != nil }
    }

    private func apply(_ direction: TrafficAction.Direction, host: Host, server: String) async throws(HostError) {
        let step = direction == .out ? "out of rotation" : "back in rotation"
        if case .awsTargetGroup(let arns, let region, let endpoint) = settings.provider {
            do throws(ShipError) {
                let aws = try AWSQuery(region: region, endpoint: endpoint, what: "traffic: aws_target_group")
                let lines = try await TargetGroups(aws: aws, arns: arns).apply(direction, instance: server,
                                                                               timeout: direction == .out ? settings.drainTimeout : settings.readyTimeout)
                for line in lines { reporter.report(Event(host: host.description, .hostStep(step: "\(step): \(line)"))) }
                return
            } catch {
                throw HostError(host: host.description, step: step, message: error.message, unreachable: false, hint: error.hint)
            }
        }
        let action = action(direction, host: host, server: server)
        var clients: [(Site, AgentClient)] = []
        for site in settings.sites {
            switch await client(for: site) {
            case .success(let client): clients.append((site, client))
            case .failure(let error):
                throw HostError(host: host.description, step: step, message: "balancer \(site): \(error.message)",
                                unreachable: false, hint: error.hint)
            }
        }
        let results = await withTaskGroup(of: (Int, Result<AgentResult, HostError>).self) { group in
            for (index, (_, client)) in clients.enumerated() {
                group.addTask {
                    var request = client.request(.traffic)
                    request.traffic = action
                    do throws(HostError) {
                        return (index, .success(try await client.call(request)))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            var results: [Result<AgentResult, HostError>?] = Array(repeating: nil, count: clients.count)
            for await (index, result) in group { results[index] = result }
            return results
        }
        var problems: [String] = []
        var hint: String?
        for ((site, _), result) in zip(clients, results) {
            let prefix = settings.sites.count > 1 || site != .local ? "\(site): " : ""
            switch result {
            case .success(let answer) where answer.ok:
                reporter.report(Event(host: host.description, .hostStep(step: "\(step): \(prefix)\(answer.message ?? "done")")))
            case .success(let answer):
                problems.append(prefix + (answer.message ?? "failed"))
                hint = hint ?? answer.hint
            case .failure(let error):
                problems.append(prefix + error.message)
                hint = hint ?? error.hint
            case nil:
                problems.append(prefix + "no answer")
            }
        }
        guard problems.isEmpty else {
            throw HostError(host: host.description, step: step, message: problems.joined(separator: "; "), unreachable: false, hint: hint)
        }
    }

    private func action(_ direction: TrafficAction.Direction, host: Host, server: String) -> TrafficAction {
        switch settings.provider {
        case .awsTargetGroup:
            preconditionFailure("target groups are driven from the controller")
        case .haproxy(let socket, let backend):
            return TrafficAction(direction: direction, haproxy: .init(socket: socket, backend: backend, server: server),
                                 timeout: direction == .out ? settings.drainTimeout : settings.readyTimeout)
        case .command(let drain, let undrain):
            return TrafficAction(direction: direction, command: direction == .out ? drain : undrain,
                                 environment: ["SHIP_TRAFFIC": direction == .out ? "drain" : "undrain", "SHIP_SERVER": server,
                                               "SHIP_HOST": host.description, "SHIP_APP": app, "SHIP_ENV": environment.name],
                                 timeout: settings.commandTimeout)
        }
    }

    /// The balancer site's agent client, its agent installed once per run.
    private func client(for site: Site) async -> Result<AgentClient, HostError> {
        if let task = clients[site.description] { return await task.value }
        let environment = environment, agents = agents, makeTransport = makeTransport
        let task = Task { () -> Result<AgentClient, HostError> in
            do throws(HostError) {
                return .success(try await AgentClient.ready(on: site, environment: environment, agents: agents, makeTransport: makeTransport))
            } catch {
                return .failure(error)
            }
        }
        clients[site.description] = task
        return await task.value
    }
}

extension AgentClient {
    /// An agent client on a site (a host outside the deploy pool, or `local`), with this ship's
    /// agent installed there: for backups and balancers.
    static func ready(on site: Site, environment: Environment, agents: AgentCatalog,
                      makeTransport: @Sendable (Host) -> any Transport) async throws(HostError) -> AgentClient {
        switch site {
        case .local:
            return AgentClient(transport: LocalTransport(), deployTo: environment.deployTo, agentPath: agents.primary.path)
        case .host(let named):
            // A pool host keeps its port and name as the environment gives them.
            let host = environment.hosts.first { $0.description == named.description || $0.name == named.name } ?? named
            let client = AgentClient(transport: makeTransport(host), deployTo: environment.deployTo)
            try await client.ensureAgent(agents)
            return client
        }
    }
}

/// ELBv2 target groups: an instance deregistered and waited for until `unused` (its connections
/// drained by the group's deregistration delay), registered and waited for until `healthy`.
struct TargetGroups: Sendable {
    let aws: AWSQuery
    let arns: [String]

    /// Seconds between two looks at a target's health.
    static let interval: UInt64 = 2

    /// What happened, a line per target group.
    func apply(_ direction: TrafficAction.Direction, instance: String, timeout: Int) async throws(ShipError) -> [String] {
        let target = [("Targets.member.1.Id", instance)]
        let started = Date()
        for arn in arns {
            _ = try await aws.call(.elbv2, direction == .out ? "DeregisterTargets" : "RegisterTargets", [("TargetGroupArn", arn)] + target)
        }
        var lines: [String] = []
        for arn in arns {
            let wanted = direction == .out ? "unused" : "healthy"
            var state = try await health(arn, instance)
            while state.state != wanted && Date().timeIntervalSince(started) < Double(timeout) {
                try? await Task.sleep(nanoseconds: Self.interval * 1_000_000_000)
                state = try await health(arn, instance)
            }
            let waited = String(format: "%.1f s", Date().timeIntervalSince(started))
            let group = Self.name(arn)
            guard state.state == wanted else {
                if direction == .out {
                    lines.append("target group \(group): \(instance) deregistered; still \(state.state) after \(timeout) s (drain_timeout), going on")
                    continue
                }
                throw ShipError("target group \(group): \(instance) is \(state.state)\(state.reason.map { " (\($0))" } ?? "") "
                                + "\(timeout) s after it was registered (ready_timeout): the balancer's health check does not pass")
            }
            lines.append("target group \(group): \(instance) \(direction == .out ? "deregistered" : "registered"), \(wanted) after \(waited)")
        }
        return lines
    }

    /// The target's state in the group (`unused` when it is not registered).
    func health(_ arn: String, _ instance: String) async throws(ShipError) -> (state: String, reason: String?) {
        let answer = try await aws.call(.elbv2, "DescribeTargetHealth", [("TargetGroupArn", arn), ("Targets.member.1.Id", instance)])
        let descriptions = answer.all("DescribeTargetHealthResult/TargetHealthDescriptions/member")
        guard let description = descriptions.first(where: { $0.value("Target/Id") == instance }) else { return ("unused", nil) }
        return (description.value("TargetHealth/State") ?? "unknown", description.value("TargetHealth/Reason"))
    }

    /// `shop` of `arn:aws:elasticloadbalancing:…:targetgroup/shop/3ace…`.
    static func name(_ arn: String) -> String {
        let parts = arn.split(separator: "/")
        return parts.count >= 2 ? String(parts[parts.count - 2]) : arn
    }
}
