import ArgumentParser
import Foundation
import Shipper

struct HookCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hook",
        abstract: "git push deploys: install a post-receive hook, or run it.",
        subcommands: [InstallHook.self, PostReceive.self]
    )
}

struct InstallHook: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Install a post-receive hook in a (bare) repository: pushes of an environment's deploy_on_push branch deploy it."
    )

    @Argument(help: "The repository (bare, or a work tree's .git).")
    var gitDir: String

    func run() async throws {
        // The running executable itself (/proc/self/exe), never argv[0] read against the
        // working directory: a hook must call the ship that installed it, wherever it lives.
        let ship = ExecutablePath.current()
        guard access(ship, X_OK) == 0 else {
            throw ShipError("\(ship) is not executable by this user, so the hook could not run it",
                            hint: "install ship where every user pushing can run it (scripts/install.sh PREFIX)")
        }
        print(try PushDeploy.install(gitDirectory: ConfigLoader.absolute(gitDir, in: FileManager.default.currentDirectoryPath), shipPath: ship))
    }
}

struct PostReceive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "post-receive",
        abstract: "What the hook runs: reads `old new ref` lines on stdin and deploys pushed branches."
    )

    @Option(name: .customLong("git-dir"), help: "The repository (default: $GIT_DIR, else the current directory).")
    var gitDir: String?

    func run() async throws {
        let directory = gitDir ?? ProcessInfo.processInfo.environment["GIT_DIR"] ?? FileManager.default.currentDirectoryPath
        let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        let agents = try AgentCatalog.locate()
        let code = await PushDeploy.run(gitDirectory: ConfigLoader.absolute(directory, in: FileManager.default.currentDirectoryPath),
                                        input: input, agents: agents, reporter: PlainReporter(),
                                        say: { FileHandle.standardOutput.writeQuietly(Data(($0 + "\n").utf8)) },
                                        makeConnections: { environment throws(ShipError) in try SSHConnections(settings: environment.ssh) })
        if code != 0 { throw ExitCode(code) }
    }
}
