import ArgumentParser
import Foundation
import Shipper

@main
struct Ship: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ship",
        abstract: "Deploy web applications to a pool of Linux servers over SSH.",
        discussion: """
            ship packages a Git revision, sends it to every host, runs the lifecycle hooks of its \
            appspec.yml (stop, install, migrate, start, validate) in rolling batches, and rolls back \
            automatically when a host fails.

            Exit codes: 0 success · 1 failed (rolled back as configured) · 2 usage or configuration \
            error · 3 failed and a rollback failed too · 4 environment locked · 5 preflight failed · \
            130 interrupted.

            `ship --version` prints ship's version and the agent it installs on hosts (fully \
            static: hosts need no Swift).
            """,
        subcommands: [Init.self, SetupCommand.self, Check.self, PackageCommand.self, Deploy.self, Rollback.self, Sync.self, PublishAgent.self, Exec.self, SSHCommand.self, Logs.self, Status.self, ConfigCommand.self, Releases.self, History.self, Unlock.self, BackupCommand.self, RestoreCommand.self, HookCommand.self]
    )

    /// Runs the command line and exits with the contract's exit codes: usage errors are 2, not
    /// ArgumentParser's 64, and a `ShipError` is rendered once with its hint.
    static func main() async {
        if CommandLine.arguments.dropFirst().first == "--version" {
            print(await VersionReport.text())
            Foundation.exit(0)
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as ShipError {
            ErrorRenderer.render(error)
            Foundation.exit(error.exitCode.rawValue)
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            FileHandle.standardError.writeQuietly(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(ShipError.ExitCode.usage.rawValue)
        }
    }
}

/// Options every command that reads ship.yml takes.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Path to ship.yml (default: ./ship.yml or the nearest parent's).", valueName: "FILE"))
    var config: String?

    func load() throws -> ShipConfig {
        try ConfigLoader.load(explicitPath: config)
    }

    /// What a command that talks to an environment's hosts needs: the configuration, the
    /// environment, the agent to install, and the run's ssh connections (close them at the end).
    /// The configuration, the environment (its inventory's hosts found), the agents and ssh.
    func hostSession(environment name: String?) async throws -> (config: ShipConfig, environment: Environment, agents: AgentCatalog,
                                                                 connections: SSHConnections) {
        let config = try load()
        let environment = try await Inventory.resolve(try config.environment(named: name))
        let agents = try AgentCatalog.locate()
        return (config, environment, agents, try SSHConnections(settings: environment.ssh))
    }
}

enum ErrorRenderer {
    static func render(_ error: ShipError) {
        var text = "error: \(error.description)\n"
        if let hint = error.hint {
            text += "hint: " + hint.replacingOccurrences(of: "\n", with: "\n      ") + "\n"
        }
        FileHandle.standardError.writeQuietly(Data(text.utf8))
    }
}
