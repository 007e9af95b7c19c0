import ArgumentParser
import Foundation
import Shipper

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bring the hosts that lack the environment's current release onto it.",
        discussion: """
            For a host added to the pool or started by an autoscaler: the newest release that is \
            current and good on some host is deployed, without migrate, to every host whose \
            current release is another revision (or none); hosts that have it are not touched. \
            With nothing to do it changes nothing and exits 0, so cron or a new instance's \
            start-up can run it as often as it likes.
            """
    )

    @Argument(help: "The environment (default: default_environment, or the only one).")
    var environment: String?

    @Option(name: .customLong("lock-wait"), help: ArgumentHelp("Wait up to SECONDS for a held lock instead of exiting 4.", valueName: "SECONDS"))
    var lockWait: Double?

    @OptionGroup var output: OutputOptions
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        try await EnvironmentRun.run(environment, request: DeployRequest(lockWait: lockWait), options: options, output: output) { deployment, _ in
            await deployment.sync()
        }
    }
}
