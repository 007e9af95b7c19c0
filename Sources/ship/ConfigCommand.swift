import ArgumentParser
import Foundation
import Shipper

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show an environment's configuration as ship resolves it.",
        discussion: """
            Prints what ship will use for the environment: the top level's deploy_to, ssh and \
            keep_releases under the environment's own, each host's user, port, roles and env \
            after its own overrides, and every section of the environment with its defaults \
            filled in. Secrets are shown by name with where each value would come from, never \
            a value (secrets_command is not run). Nothing is contacted.

            Examples:
              ship config prod
              ship config prod --json | jq '.hosts[].host'
            """
    )

    @Argument(help: "The environment (default: default_environment, or the only one).")
    var environment: String?

    @Flag(help: "Print one JSON object.")
    var json = false

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config = try options.load()
        let resolved = ResolvedConfig.describe(config, try config.environment(named: environment))
        if json {
            let data = try JSONSerialization.data(withJSONObject: resolved.json, options: [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(resolved.yaml, terminator: "")
        }
    }
}
