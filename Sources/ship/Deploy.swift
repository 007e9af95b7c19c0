import ArgumentParser
import Foundation
import Hooks
import Shipper

/// `--json` and the choice of reporter, shared by commands that stream events.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON object per line on stdout.")
    var json = false

    /// JSON lines with --json; a live view on a terminal; plain lines for a pipe or `CI=true`.
    func reporter() -> any Reporter {
        if json { return JSONLinesReporter() }
        let ci = ProcessInfo.processInfo.environment["CI"].map { ["true", "1", "yes"].contains($0.lowercased()) } ?? false
        let dumb = ProcessInfo.processInfo.environment["TERM"] == "dumb"
        if isatty(STDOUT_FILENO) == 1 && !ci && !dumb { return TerminalReporter() }
        return PlainReporter()
    }
}

struct Deploy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Deploy a revision to an environment's hosts.",
        discussion: """
            Packages the revision, checks every host (reachable, agent installed, shared files \
            present), takes the environment's lock, then runs each host through stop, install, \
            migrate (once), switch, start and validate.
            """
    )

    @Argument(help: "The environment (default: default_environment, or the only one).")
    var environment: String?

    @Option(help: "Branch, tag or commit to deploy (default: the environment's revision, else HEAD).")
    var revision: String?

    @Option(name: .customLong("lock-wait"), help: ArgumentHelp("Wait up to SECONDS for a held lock instead of exiting 4.", valueName: "SECONDS"))
    var lockWait: Double?

    @Flag(name: .customLong("ignore-stop-failures"), help: "Carry on when the replaced release's stop hooks fail.")
    var ignoreStopFailures = false

    @Option(help: ArgumentHelp(#"Batch sizes overriding ship.yml's: N, N%, or a list such as 1,50%"#, valueName: "SPEC"))
    var batch: String?

    @Option(name: .customLong("file-exists-behavior"),
            help: ArgumentHelp("For a CodeDeploy appspec's copied files: DISALLOW, OVERWRITE or RETAIN, over the appspec's file_exists_behavior.",
                               valueName: "BEHAVIOR"))
    var fileExistsBehavior: String?

    @Flag(name: .customLong("dry-run"), help: "Print the plan (batches, hooks, what each host is sent, what pruning removes) and change nothing.")
    var dryRun = false

    @OptionGroup var output: OutputOptions
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        if let fileExistsBehavior, !["DISALLOW", "OVERWRITE", "RETAIN"].contains(fileExistsBehavior) {
            throw ShipError.usage("--file-exists-behavior expects DISALLOW, OVERWRITE or RETAIN, found \(fileExistsBehavior)",
                                  hint: ["DISALLOW", "OVERWRITE", "RETAIN"].contains(fileExistsBehavior.uppercased())
                                      ? "write it in capitals: \(fileExistsBehavior.uppercased())" : nil)
        }
        let batchSpec = try batch.map { text throws(ShipError) in try ConfigLoader.batchSpec(commandLine: text) }
        var request = DeployRequest(revision: revision, ignoreStopFailures: ignoreStopFailures, lockWait: lockWait, batch: batchSpec)
        request.fileExistsBehavior = fileExistsBehavior
        try await EnvironmentRun.run(environment, request: request, options: options, output: output,
                                     reporter: dryRun && !output.json ? PlainReporter() : nil) { deployment, _ in
            dryRun ? await deployment.dryRun() : await deployment.run()
        }
    }
}

/// What `deploy`, `rollback` and `sync` share: the environment's hosts reached, signals handled,
/// webhooks told (and waited for), the hint printed and the exit code thrown.
enum EnvironmentRun {
    static func run(_ environment: String?, request: DeployRequest, options: ConfigOptions, output: OutputOptions,
                    reporter: (any Reporter)? = nil, _ body: (Deployment, ShipConfig) async -> DeploymentResult) async throws {
        if let lockWait = request.lockWait, lockWait < 0 { throw ShipError.usage("--lock-wait must be >= 0 seconds") }
        let (config, env, agents, connections) = try await options.hostSession(environment: environment)
        // A secret that cannot be had stops the command here, before any host (exit 5).
        let secrets = try Secrets.resolve(env, directory: config.directory)
        let interruption = Interruption()
        let signals = SignalHandlers.install(interruption, environment: env.name)
        defer { _ = signals }
        let notifier = Notifier(config: config, environment: env, reporter: reporter ?? output.reporter())
        var request = request
        request.environment = env.name
        // Outermost, so that webhooks get masked text too.
        let masked = MaskingReporter(notifier, mask: SecretMask(values: secrets.values))
        var deployment = Deployment(config: config, environment: env, request: request, agents: agents, reporter: masked,
                                    interruption: interruption, makeTransport: { connections.transport(for: $0) })
        deployment.secrets = secrets
        let result = await body(deployment, config)
        await connections.closeAll()
        await notifier.flush()
        result.printHint()
        if let code = result.exitCode { throw ExitCode(code.rawValue) }
    }
}

extension DeploymentResult {
    /// The hint of a failure, on stderr as `ship`'s errors give theirs.
    func printHint() {
        guard let hint else { return }
        FileHandle.standardError.writeQuietly(Data(("hint: " + hint.replacingOccurrences(of: "\n", with: "\n      ") + "\n").utf8))
    }
}

/// SIGINT and SIGTERM: the first stops gracefully (no new host step, locks released, exit 130);
/// the second exits at once, saying how to clear a lock left behind.
enum SignalHandlers {
    static func install(_ interruption: Interruption, environment: String) -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if interruption.signal() == 1 {
                    FileHandle.standardError.writeQuietly(Data("\nship: interrupted; finishing the steps in flight and releasing the lock (again to quit now)\n".utf8))
                } else {
                    FileHandle.standardError.writeQuietly(Data("ship: quitting; if a lock is left behind: ship unlock \(environment)\n".utf8))
                    Foundation.exit(ShipError.ExitCode.interrupted.rawValue)
                }
            }
            source.resume()
            return source
        }
    }
}
