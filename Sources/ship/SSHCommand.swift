import ArgumentParser
import Foundation
import Shipper

struct SSHCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssh",
        abstract: "Open a shell in current on a host, with ship's ssh settings.",
        discussion: """
            Connects with the same ssh settings ship deploys with (ship.yml's ssh:, your ssh \
            config, agent and ProxyJump bastions), with a terminal, and starts your login shell \
            in <deploy_to>/current. SHIP_APP, SHIP_ENV, SHIP_HOST, SHIP_DEPLOY_TO and the \
            environment's env: are set (secrets are not: they never go on a command line). \
            After --, a command runs there instead of a shell (one argument is a shell line, \
            several are words); ship exits with its status.

            Examples:
              ship ssh prod              # the first host
              ship ssh prod web2
              ship ssh prod web2 -- drush status
              ship ssh web2              # a host of the default environment
            """
    )

    @Argument(help: "The environment (default: default_environment, or the only one).")
    var environment: String?

    @Argument(help: ArgumentHelp("The host, as ship.yml names it (default: the environment's first).", valueName: "HOST"))
    var host: String?

    @OptionGroup var options: ConfigOptions

    @Argument(parsing: .postTerminator, help: ArgumentHelp("A command to run instead of a shell, after --.", valueName: "CMD"))
    var command: [String] = []

    func run() async throws {
        let config = try options.load()
        // `ship ssh web2`: a host of the default environment, when no environment has that name.
        var environment = self.environment, host = self.host
        if host == nil, let name = environment, !config.environments.contains(where: { $0.name == name }),
           let fallback = try? config.environment(named: nil), fallback.hosts.contains(where: { $0.description == name || $0.name == name }) {
            host = name
            environment = nil
        }
        let env = try await Inventory.resolve(try config.environment(named: environment))
        let target: Shipper.Host
        if let host {
            guard let found = env.hosts.first(where: { $0.description == host || $0.name == host }) else {
                throw ShipError.usage("\(host) is not a host of \(env.name)", hint: "its hosts: " + env.hosts.map(\.description).joined(separator: ", "))
            }
            target = found
        } else {
            guard let first = env.hosts.first else { throw ShipError.usage("\(env.name) has no hosts") }
            target = first
        }
        var variables = env.variables(for: target)
        variables += [("SHIP_APP", config.app), ("SHIP_ENV", env.name), ("SHIP_HOST", target.description), ("SHIP_DEPLOY_TO", env.deployTo)]
        let current = env.deployTo + "/current"
        let remote: RemoteCommand
        if command.isEmpty {
            remote = RemoteCommand(["sh", "-c", #"cd "$1" || exit 1; exec "${SHELL:-/bin/sh}" -l"#, "sh", current], environment: variables)
        } else {
            remote = RemoteCommand(["sh", "-c", #"cd "$1" || exit 1; exec /bin/sh -c "$2""#, "sh", current, ExecRequest(arguments: command).line],
                                   environment: variables)
        }
        let arguments = OpenSSHTransport.interactive(host: target, settings: env.ssh, line: ShellLine(remote))
        let argv = arguments.map { strdup($0) } + [nil]
        execv(arguments[0], argv)
        throw ShipError("cannot start \(arguments[0]): \(String(cString: strerror(errno)))", exitCode: .preflight)
    }
}
