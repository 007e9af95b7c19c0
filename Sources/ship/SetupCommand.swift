import ArgumentParser
import Foundation
import Shipper

struct SetupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup",
        abstract: "Prepare an environment's hosts for a first deploy; run again, it changes nothing.",
        discussion: """
            On every host: ship's agent installed, the deploy_to tree made (releases/, shared/, \
            .ship/), each shared directory of ship.yml made and, for the web user, given its \
            group with mode 2775 (setgid: what PHP writes there stays writable by both), and \
            the files under --shared-from DIR uploaded to deploy_to/shared at the same relative \
            paths (a file with a default mode such as 0644 gets 0600; a mode you set is kept). \
            A file already there that differs is left as it is unless --overwrite. Then it \
            checks that the deploy user can write where deployments write.

            Every change is reported; a host that needed none says so. Exit 5 when a host \
            cannot be reached, cannot be written, or still lacks a shared file of ship.yml.

            The web user is --web-user, else the one runas user of the appspec.yml beside \
            ship.yml, if there is exactly one.

            Examples:
              ship setup prod --shared-from ./deploy/prod-shared
              ship setup staging --web-user www-data
            """
    )

    @Argument(help: "The environment (default: default_environment, or the only one).")
    var environment: String?

    @Option(name: .customLong("shared-from"), help: ArgumentHelp("Upload the files under DIR to deploy_to/shared.", valueName: "DIR"))
    var sharedFrom: String?

    @Option(name: .customLong("web-user"), help: ArgumentHelp("The user whose group gets the shared directories.", valueName: "USER"))
    var webUser: String?

    @Flag(help: "Replace shared files on the hosts that differ from those under --shared-from.")
    var overwrite = false

    @OptionGroup var output: OutputOptions
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let (config, env, agents, connections) = try await options.hostSession(environment: environment)
        var request = HostSetup.Request(sharedFrom: sharedFrom, webUser: webUser)
        request.overwrite = overwrite
        if request.webUser == nil, let appspec = try? ConfigLoader.loadAppspec(besides: config) {
            let users = Set(appspec.hooks.values.flatMap { $0 }.compactMap(\.runas)).subtracting(["root"])
            if users.count == 1 { request.webUser = users.first }
        }
        let uploads = try sharedFrom.map { directory throws(ShipError) in try HostSetup.uploads(from: directory) } ?? []
        let outcomes = await HostSetup.run(config: config, environment: env, agents: agents, request: request, uploads: uploads) {
            connections.transport(for: $0)
        }
        await connections.closeAll()
        var problems: [String] = []
        var hints: [String] = []
        for outcome in outcomes {
            var object: [String: Any] = ["event": "host_setup", "time": Event.timestamp(Date()), "host": outcome.host]
            switch outcome.result {
            case .failure(let error):
                problems.append(error.description)
                if let hint = error.hint { hints.append(hint) }
                object["status"] = "failed"
                object["message"] = error.message
                if !output.json { print("\(outcome.host): FAILED: \(error.message)") }
            case .success(let result):
                let changes = result.report ?? []
                object["changed"] = changes
                object["warnings"] = result.warnings ?? []
                object["missing"] = result.missing ?? []
                var failed = false
                if !result.ok {
                    problems.append("\(outcome.host): \(result.message ?? "failed")")
                    if let hint = result.hint { hints.append(hint) }
                    failed = true
                }
                if let missing = result.missing, !missing.isEmpty {
                    problems.append("\(outcome.host): shared file\(missing.count == 1 ? "" : "s") missing: \(missing.joined(separator: ", "))")
                    hints.append("put \(missing.count == 1 ? "it" : "them") under a directory at the same paths and run `ship setup \(env.name) --shared-from DIR`")
                    failed = true
                }
                object["status"] = failed ? "failed" : (changes.isEmpty ? "unchanged" : "changed")
                if !output.json {
                    if changes.isEmpty { print("\(outcome.host): already set up: nothing changed") }
                    for change in changes { print("\(outcome.host): \(change)") }
                    for warning in result.warnings ?? [] { print("\(outcome.host): warning: \(warning)") }
                    if !result.ok { print("\(outcome.host): FAILED: \(result.message ?? "")") }
                }
            }
            if output.json { printJSON(object) }
        }
        if !problems.isEmpty {
            var unique: [String] = []
            for hint in hints where !unique.contains(hint) { unique.append(hint) }
            throw ShipError("setup is not complete:\n  " + problems.joined(separator: "\n  "),
                            hint: unique.isEmpty ? nil : unique.joined(separator: "\n"), exitCode: .preflight)
        }
    }
}
