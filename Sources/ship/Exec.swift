import ArgumentParser
import Foundation
import Shipper

struct Exec: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command in current on an environment's hosts.",
        discussion: """
            The command runs in <deploy_to>/current on each chosen host, with the environment \
            hooks get (env:, SHIP_APP, SHIP_ENV, SHIP_HOST, SHIP_RELEASE, SHIP_RELEASE_PATH, \
            SHIP_REVISION, …), on all hosts at once unless --batch says otherwise. Each host's \
            output is printed as it comes, prefixed with the host; the exit code is 1 when the \
            command failed on any host. One argument after -- is a shell line; several are \
            words, each quoted.

            No lock is taken unless --lock: then the environment's deploy lock is held while \
            the command runs, so no deployment switches a release under it.

            Examples:
              ship exec prod -- drush cr
              ship exec prod --role web -- 'wp cache flush && wp rewrite flush'
              ship exec prod --once --role worker --lock -- php artisan migrate:status
            """
    )

    @Argument(help: "The environment (default: default_environment, or the only one).")
    var environment: String?

    @Option(help: ArgumentHelp("Only these hosts, as ship.yml names them (comma-separated).", valueName: "H,..."))
    var hosts: String?

    @Option(help: ArgumentHelp("Only the hosts with this role.", valueName: "ROLE"))
    var role: String?

    @Flag(help: "Run it on one host only (of --role, if given): the first that answers and has a current release.")
    var once = false

    @Flag(help: "Hold the environment's deploy lock while the command runs.")
    var lock = false

    @Option(name: .customLong("lock-wait"), help: ArgumentHelp("With --lock: wait up to SECONDS for a held lock instead of exiting 4.", valueName: "SECONDS"))
    var lockWait: Double?

    @Option(help: ArgumentHelp(#"Hosts at a time: N, N%, or a list such as 1,50%; stops after a batch with a failure (default: all at once)."#,
                               valueName: "SPEC"))
    var batch: String?

    @Option(help: ArgumentHelp("Run it as this user (through the sudoers line of docs/installing.md when ship connects as another).", valueName: "USER"))
    var runas: String?

    @Option(help: ArgumentHelp("Seconds before the command is stopped on a host (default 3600).", valueName: "SECONDS"))
    var timeout: Int = 3600

    @OptionGroup var output: OutputOptions
    @OptionGroup var options: ConfigOptions

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The command, after --.", valueName: "CMD"))
    var command: [String] = []

    func validate() throws {
        guard !command.isEmpty else { throw ValidationError("give the command after --, e.g. ship exec prod -- drush cr") }
        guard timeout > 0 else { throw ValidationError("--timeout must be at least 1 second") }
        if lockWait != nil && !lock { throw ValidationError("--lock-wait goes with --lock") }
    }

    func run() async throws {
        var exec = ExecRequest(arguments: command)
        exec.hosts = hosts.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
        exec.role = role
        exec.once = once
        exec.lock = lock
        exec.batch = try batch.map { text throws(ShipError) in try ConfigLoader.batchSpec(commandLine: text) }
        exec.runas = runas
        exec.timeout = timeout
        // Every line of output matters here: plain host-prefixed lines on a terminal too.
        try await EnvironmentRun.run(environment, request: DeployRequest(lockWait: lockWait), options: options,
                                     output: output, reporter: output.json ? JSONLinesReporter() : PlainReporter()) { deployment, _ in
            await deployment.exec(exec)
        }
    }
}
