import Foundation

/// `ship check --hosts`: reach every host of an environment, as a deployment's preflight would.
public enum HostCheck {
    public struct Outcome: Sendable {
        public var host: String
        /// What was found, or why the host cannot be reached.
        public var result: Result<String, HostError>
    }

    public static func run(config: ShipConfig, environment: Environment, agents: AgentCatalog?,
                           makeTransport: @escaping @Sendable (Host) -> any Transport) async -> [Outcome] {
        await withTaskGroup(of: (Int, Outcome).self) { group in
            for (index, host) in environment.hosts.enumerated() {
                group.addTask {
                    let client = AgentClient(transport: makeTransport(host), deployTo: environment.deployTo)
                    do throws(HostError) {
                        if let agents {
                            // The agent installed (as a deployment's preflight would) and run.
                            let probe = try await client.ensureAgent(agents)
                            let version = try await client.agentVersion()
                            return (index, Outcome(host: host.description, result: .success("reachable, \(probe.platform), \(version)")))
                        }
                        let probe = await client.transport.run(ShellLine(RemoteCommand(["true"])), input: .none) { _ in }
                        try client.failIfUnreachable(probe, step: "connect")
                        return (index, Outcome(host: host.description, result: .success("reachable")))
                    } catch {
                        return (index, Outcome(host: host.description, result: .failure(error)))
                    }
                }
            }
            var outcomes: [(Int, Outcome)] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }
}
