import ArgumentParser
import Foundation
import Shipper

struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the hook output of a deployment, per host, from the hosts' logs.",
        discussion: """
            Without DEPLOYMENT, the environment's latest deployment, rollback or sync (as the \
            hosts' journals record it; `ship history` lists the ids). Each host's output comes \
            in the order its events ran, each line prefixed with the host and the event. An \
            id of `ship exec` (x…) shows that command's output. Secrets were masked before \
            the lines were written, so they are masked here too.

            With --follow, the output of a running deployment is shown as it is written, until \
            the deployment has finished on every host (Ctrl-C stops following).

            Examples:
              ship logs prod
              ship logs prod d1a2b3c4 --host web2 --event migrate
              ship logs prod --follow
            """
    )

    @Argument(help: "The environment (default: default_environment, or the only one).")
    var environment: String?

    @Argument(help: ArgumentHelp("The deployment id (default: the latest).", valueName: "DEPLOYMENT"))
    var deployment: String?

    @Option(help: ArgumentHelp("Only this host (or hosts, comma-separated).", valueName: "HOST"))
    var host: String?

    @Option(help: ArgumentHelp("Only this event (install, migrate, …, or CodeDeploy's AfterInstall, …).", valueName: "EVENT"))
    var event: String?

    @Flag(help: "Keep showing new output until the deployment has finished on every host.")
    var follow = false

    @OptionGroup var output: OutputOptions
    @OptionGroup var options: ConfigOptions

    func validate() throws {
        if let deployment, deployment.range(of: "^[A-Za-z0-9-]+$", options: .regularExpression) == nil {
            throw ValidationError("\(deployment) is not a deployment id (such as d1a2b3c4); `ship history` lists them")
        }
    }

    func run() async throws {
        var request = HookLogs.Request(deployment: deployment)
        request.hosts = host.map { $0.split(separator: ",").map(String.init) }
        request.event = try event.map { given throws(ShipError) in try HookLogs.eventName(given) }
        request.follow = follow
        let (config, env, agents, connections) = try await options.hostSession(environment: environment)
        let interruption = Interruption()
        let signals = SignalHandlers.install(interruption, environment: env.name)
        defer { _ = signals }
        let json = output.json
        let lock = NSLock()
        @Sendable func emit(_ text: String) {
            lock.withLock { FileHandle.standardOutput.writeQuietly(Data((text + "\n").utf8)) }
        }
        do {
            _ = try await HookLogs.read(config: config, environment: env, agents: agents, request: request, interruption: interruption,
                                        makeTransport: { connections.transport(for: $0) },
                                        onNote: { note in if !json { emit("== \(note)") } },
                                        onLine: { line in
                                            if json {
                                                let object: [String: Any] = ["event": "log_line", "host": line.host, "hook": line.event, "line": line.text]
                                                if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) {
                                                    emit(String(decoding: data, as: UTF8.self))
                                                }
                                            } else {
                                                emit("\(line.host) \(line.event) | \(line.text)")
                                            }
                                        })
        } catch {
            await connections.closeAll()
            throw error
        }
        await connections.closeAll()
    }
}
