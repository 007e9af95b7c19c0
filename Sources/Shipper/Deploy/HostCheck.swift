import Foundation

/// `ship check --hosts`: reach every host of an environment, as a deployment's preflight would.
public enum HostCheck {
    public struct Outcome: Sendable {
        public var host: String
        /// What was found, or why the host cannot be reached.
        public var result: Result<String, HostError>
    }

    public static func run(config: ShipConfig, environment: Environment, agent: AgentBinary?,
                           makeTransport: @escaping @Sendable (Host) -> any Transport) async -> [Outcome] {
        await withTaskGroup(of: (Int, Outcome).self) { group in
            for (index, host) in environment.hosts.enumerated() {
                group.addTask {
                    let client = AgentClient(transport: makeTransport(host), deployTo: config.deployTo)
                    do throws(HostError) {
                        if let agent {
                            let current = try await client.hasAgent(agent)
                            return (index, Outcome(host: host.description,
                                                   result: .success(current ? "reachable, agent up to date" : "reachable, agent will be installed on deploy")))
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
