import Foundation
import Hooks

/// `ship logs`: the hook output of a deployment (by default the environment's latest) as the
/// hosts logged it, host by host and event by event in lifecycle order; with `follow`, the
/// output of a running deployment as it comes, until it finished on every host.
public enum HookLogs {
    public struct Request: Sendable {
        public var deployment: String?
        public var hosts: [String]?
        public var event: String?
        public var follow = false

        public init(deployment: String? = nil) {
            self.deployment = deployment
        }
    }

    public struct Line: Sendable {
        public var host: String
        public var event: String
        public var text: String
    }

    /// The event names a log file can have: ship's, CodeDeploy's mapped onto them, and `exec`.
    public static func eventName(_ given: String) throws(ShipError) -> String {
        if let event = LifecycleEvent(rawValue: given) { return event.rawValue }
        if let event = AppspecDecoder.codeDeployEvents[given] { return event.rawValue }
        if given == "exec" { return given }
        throw ShipError.usage("unknown event \(given)",
                              hint: "events: " + (LifecycleEvent.order.map(\.rawValue) + ["exec"]).joined(separator: ", ")
                                  + " (or CodeDeploy's names, such as AfterInstall)")
    }

    /// Returns the deployment shown; `onLine` gets each line as it is read.
    public static func read(config: ShipConfig, environment: Environment, agents: AgentCatalog, request: Request,
                            interruption: Interruption, makeTransport: @escaping @Sendable (Host) -> any Transport,
                            onNote: @escaping @Sendable (String) -> Void,
                            onLine: @escaping @Sendable (Line) -> Void) async throws(ShipError) -> String {
        var hosts = environment.hosts
        if let names = request.hosts {
            if let unknown = names.first(where: { name in !hosts.contains { $0.description == name || $0.name == name } }) {
                throw ShipError.usage("\(unknown) is not a host of \(environment.name)", hint: "its hosts: " + hosts.map(\.description).joined(separator: ", "))
            }
            hosts = hosts.filter { names.contains($0.description) || names.contains($0.name) }
        }
        let clients = hosts.map { AgentClient(transport: makeTransport($0), deployTo: environment.deployTo) }
        for client in clients {
            do throws(HostError) {
                _ = try await client.ensureAgent(agents)
            } catch {
                throw ShipError("cannot read the logs: \(error)", hint: error.hint, exitCode: .preflight)
            }
        }
        let deployment: String
        if let given = request.deployment {
            deployment = given
        } else {
            deployment = try await latest(clients, environment: environment, onNote: onNote)
        }
        var offsets: [String: [String: Int64]] = [:]
        var finished: Set<String> = []
        var found = false
        while true {
            for client in clients where !finished.contains(client.hostName) {
                var agentRequest = client.request(.logs)
                agentRequest.logDeployment = deployment
                agentRequest.logEvent = request.event
                agentRequest.logOffsets = offsets[client.hostName]
                let host = client.hostName
                let result: AgentResult
                do throws(HostError) {
                    result = try await client.require(agentRequest) { event in
                        guard event.kind == .output else { return }
                        onLine(Line(host: host, event: event.hook ?? "", text: event.line ?? ""))
                    }
                } catch {
                    throw ShipError("cannot read the logs: \(error)", hint: error.hint, exitCode: .preflight)
                }
                offsets[host] = result.logOffsets
                if result.found == true { found = true }
                if result.finished == true || !request.follow { finished.insert(host) }
            }
            if finished.count == clients.count || interruption.requested { break }
            try? await Task.sleep(for: .seconds(1)) // the hosts' logs grow on their own: nothing to await from here
        }
        if !found {
            throw ShipError("no hook output of \(deployment) on \(hosts.count == 1 ? hosts[0].description : "these hosts")"
                            + (request.event.map { " for \($0)" } ?? ""),
                            hint: "its hooks printed nothing, or its logs were pruned; `ship history` lists deployments", exitCode: .failed)
        }
        return deployment
    }

    /// The environment's latest deployment, rollback or sync, from the hosts' journals.
    static func latest(_ clients: [AgentClient], environment: Environment, onNote: @Sendable (String) -> Void) async throws(ShipError) -> String {
        var newest: JournalEntry?
        for client in clients {
            var request = client.request(.state)
            request.journalLimit = 500
            guard let state = try? await client.require(request) else { continue }
            for entry in state.journal ?? [] where entry.environment == nil || entry.environment == environment.name {
                if entry.time > (newest?.time ?? "") { newest = entry }
            }
        }
        guard let newest else {
            throw ShipError("no deployment of \(environment.name) in the hosts' journals", hint: "deploy first: ship deploy \(environment.name)",
                            exitCode: .failed)
        }
        onNote("\(newest.kind) \(newest.deploymentId)" + (newest.revision.map { " of \($0.prefix(12))" } ?? "")
               + (newest.user.map { " by \($0)" } ?? ""))
        return newest.deploymentId
    }
}
