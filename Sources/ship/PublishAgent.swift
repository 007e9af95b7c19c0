import ArgumentParser
import Foundation
import Shipper

struct PublishAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish-agent",
        abstract: "Put this ship's host agent in the environment's artifact store, for instances that install themselves (ship-agent pull)."
    )

    @Argument(help: "The environment whose artifacts: store gets it (default: default_environment, or the only one).")
    var environment: String?

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config = try options.load()
        let env = try config.environment(named: environment)
        let published = try AgentPublisher.publish(config: config, environment: env, agents: try AgentCatalog.locate())
        for agent in published {
            print("ship-agent \(agent.version) for Linux \(agent.machine) (SHA-256 \(agent.sha256)):")
            for location in agent.locations { print("  \(location)  (and \(location).sha256)") }
        }
        print("a new instance fetches it, then runs: ship-agent pull --store \(storeText(env)) --app \(config.app) --env \(env.name) "
              + "(docs/autoscaling.md)")
    }

    private func storeText(_ env: Environment) -> String {
        guard let artifacts = env.artifacts else { return "" }
        return "s3://" + artifacts.bucket + (artifacts.prefix.isEmpty ? "" : "/" + artifacts.prefix)
    }
}
