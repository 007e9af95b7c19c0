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
        await AgentClient.onEachHost(of: environment, makeTransport: makeTransport) { client throws(HostError) -> String in
            if let agents {
                // The agent installed (as a deployment's preflight would) and run.
                let probe = try await client.ensureAgent(agents)
                let version = try await client.agentVersion()
                return "reachable, \(probe.platform), \(version)"
            }
            let probe = await client.transport.run(ShellLine(RemoteCommand(["true"])), input: .none) { _ in }
            try client.failIfUnreachable(probe, step: "connect")
            return "reachable"
        }.map { Outcome(host: $0.host, result: $0.result) }
    }
}
